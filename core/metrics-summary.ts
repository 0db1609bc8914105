/**
 * The per-group summary of a run's metrics (RunResult.metrics) from the points its instances recorded.
 * Pure, so the daemon that writes it and a test that checks it compute the same thing.
 */
import type { MetricType } from './contract/metrics.ts';
import type { MetricsSummary, MetricSummary } from './run.ts';

/** One recorded observation of one instance, as the API's `?raw=true` lists it. */
export interface MetricPoint {
  group: string;
  instance: number;
  name: string;
  type: MetricType;
  value: number;
  unit?: string;
  /** ISO 8601. */
  ts: string;
}

/**
 * The `p`th percentile (0 < p ≤ 100) of ascending `sorted` values by nearest rank: the smallest value with
 * at least p % of the values at or below it. No interpolation, so it is always a value someone recorded.
 */
export function nearestRank(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new RangeError('nearestRank needs at least one value');
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1] as number;
}

/**
 * Per group and metric: count, min, p50, p90, p99, max, mean. A counter contributes each instance's final
 * total (its last point); gauges, histograms and points every value. A metric keeps the type and unit of its
 * first point in the group; points of another type under the same name are left out.
 */
export function summarizeMetrics(points: Iterable<MetricPoint>): MetricsSummary {
  interface Collected {
    type: MetricType;
    unit?: string;
    values: number[];
    lastTotal: Map<number, number>;
  }
  const groups = new Map<string, Map<string, Collected>>();
  for (const point of points) {
    let metrics = groups.get(point.group);
    if (!metrics) groups.set(point.group, (metrics = new Map()));
    let collected = metrics.get(point.name);
    if (!collected) {
      collected = { type: point.type, values: [], lastTotal: new Map() };
      if (point.unit !== undefined) collected.unit = point.unit;
      metrics.set(point.name, collected);
    }
    if (collected.type !== point.type) continue;
    if (point.type === 'counter') collected.lastTotal.set(point.instance, point.value);
    else collected.values.push(point.value);
  }
  const summary: MetricsSummary = {};
  for (const [group, metrics] of [...groups].sort(([a], [b]) => a.localeCompare(b))) {
    const byName: Record<string, MetricSummary> = {};
    for (const [name, collected] of [...metrics].sort(([a], [b]) => a.localeCompare(b))) {
      const values = collected.type === 'counter' ? [...collected.lastTotal.values()] : collected.values;
      if (values.length === 0) continue;
      byName[name] = summarize(collected.type, collected.unit, values);
    }
    summary[group] = byName;
  }
  return summary;
}

function summarize(type: MetricType, unit: string | undefined, values: number[]): MetricSummary {
  const sorted = Float64Array.from(values).sort();
  const list = Array.from(sorted);
  let sum = 0;
  for (const value of list) sum += value;
  return {
    type,
    ...(unit === undefined ? {} : { unit }),
    count: list.length,
    min: list[0] as number,
    p50: nearestRank(list, 50),
    p90: nearestRank(list, 90),
    p99: nearestRank(list, 99),
    max: list[list.length - 1] as number,
    mean: sum / list.length,
  };
}

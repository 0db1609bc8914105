/**
 * The lines of `metrics.out`, which our SDK writes in each instance's outputs directory and the daemon
 * summarises when a run ends. One JSON object per line, in the shape of the original Go SDK's `results.out`
 * records (`{"ts":<ns>,"type":…,"name":…,"measures":{…}}`), so tooling that reads those reads these; `unit`
 * is ours, and readers that do not know it skip it. Dependency-free, because plans bundle it.
 */

export const metricTypes = ['counter', 'gauge', 'histogram', 'point'] as const;
export type MetricType = (typeof metricTypes)[number];

/** The file, in the instance's outputs directory. */
export const metricsFileName = 'metrics.out';

/** One recorded observation, as a reader sees it. */
export interface MetricRecord {
  /** Unix time in nanoseconds (a number: microseconds survive in a double). */
  ts: number;
  type: MetricType;
  name: string;
  /**
   * A counter's running total after this increment (`measures.count`); a gauge's new value, a histogram's
   * recorded value or a point's value (`measures.value`).
   */
  value: number;
  unit?: string;
}

/** One line without its newline. `ts` is a bigint so that every nanosecond digit is kept. */
export function encodeMetricLine(record: {
  ts: bigint;
  type: MetricType;
  name: string;
  value: number;
  unit?: string;
}): string {
  const measure = record.type === 'counter' ? 'count' : 'value';
  const unit = record.unit === undefined ? '' : `,"unit":${JSON.stringify(record.unit)}`;
  return `{"ts":${record.ts},"type":"${record.type}","name":${JSON.stringify(record.name)},"measures":{"${measure}":${JSON.stringify(record.value)}}${unit}}`;
}

/**
 * One line of `metrics.out` (or of the original's `results.out`, for its point, counter and gauge records);
 * undefined for anything else: a torn last line, a record type we do not summarise (`ewma`, `meter`,
 * `timer`, the original's histogram snapshots), a value that is not a finite number. Never throws.
 */
export function parseMetricLine(line: string): MetricRecord | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const body = parsed as Record<string, unknown>;
  const type = body.type;
  if (typeof type !== 'string' || !(metricTypes as readonly string[]).includes(type)) return undefined;
  if (typeof body.name !== 'string' || body.name === '' || typeof body.ts !== 'number') return undefined;
  const measures = body.measures;
  if (typeof measures !== 'object' || measures === null) return undefined;
  const value = (measures as Record<string, unknown>)[type === 'counter' ? 'count' : 'value'];
  if (typeof value !== 'number' || !Number.isFinite(value)) return undefined;
  const record: MetricRecord = { ts: body.ts, type: type as MetricType, name: body.name, value };
  if (typeof body.unit === 'string' && body.unit !== '') record.unit = body.unit;
  return record;
}

/**
 * A run's metrics from its outputs: every `<run dir>/<group>/<index>/metrics.out` the instances wrote,
 * read a line at a time, as points (the API's `?raw=true`) or summarised (RunResult.metrics).
 */
import { createReadStream } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { metricsFileName, parseMetricLine } from '../core/contract/metrics.ts';
import { summarizeMetrics, type MetricPoint } from '../core/metrics-summary.ts';
import type { MetricsSummary } from '../core/run.ts';

/** More points than this in one run are left out, so a plan recording without end cannot exhaust memory. */
export const defaultMaxMetricPoints = 2_000_000;

export interface RunMetricPoints {
  points: MetricPoint[];
  /** Points left out past `maxPoints`. */
  dropped: number;
}

/**
 * The points of every instance under `runDir`, group by group, instance by instance, each file in the order
 * it was written. A missing run directory has none. Files are read only when they are regular files: an
 * instance may have left a link there, and the daemon never reads through one.
 */
export async function readRunMetricPoints(
  runDir: string,
  maxPoints: number = defaultMaxMetricPoints,
): Promise<RunMetricPoints> {
  const result: RunMetricPoints = { points: [], dropped: 0 };
  for (const group of await directories(runDir)) {
    const groupDir = path.join(runDir, group);
    const instances = (await directories(groupDir)).filter((name) => /^\d+$/.test(name));
    for (const instance of instances.sort((a, b) => Number(a) - Number(b))) {
      const file = path.join(groupDir, instance, metricsFileName);
      const info = await lstat(file).catch(() => undefined);
      if (!info?.isFile()) continue;
      const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
      for await (const line of lines) {
        const record = parseMetricLine(line);
        if (!record) continue;
        if (result.points.length >= maxPoints) {
          result.dropped++;
          continue;
        }
        const point: MetricPoint = {
          group,
          instance: Number(instance),
          name: record.name,
          type: record.type,
          value: record.value,
          // ts is a double: a nanosecond count loses its last digits, so round rather than cut to the millisecond.
          ts: new Date(Math.round(record.ts / 1e6)).toISOString(),
        };
        if (record.unit !== undefined) point.unit = record.unit;
        result.points.push(point);
      }
    }
  }
  return result;
}

/** The run's summary per group and metric; undefined when no instance recorded a metric. */
export async function summarizeRunMetrics(
  runDir: string,
  maxPoints: number = defaultMaxMetricPoints,
): Promise<{ summary: MetricsSummary | undefined; dropped: number }> {
  const { points, dropped } = await readRunMetricPoints(runDir, maxPoints);
  return { summary: points.length === 0 ? undefined : summarizeMetrics(points), dropped };
}

async function directories(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return [];
    throw error;
  });
  return entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
}

/**
 * The API's shapes as the pages read them: taken from api/schemas.ts (type-only imports, so nothing of the
 * daemon ends up in the bundle), plus what issue 11's contract adds (instance phases, run metrics) for
 * daemons that have it; every one of those is optional, so older results show what they have.
 */
import type { LogLine, RunView, TaskList, TaskSummaryView, TaskView } from '../../api/schemas.ts';

export type { LogLine, RunView, TaskList, TaskSummaryView, TaskView };

export interface Phase {
  name: string;
  at: string;
}

export type InstanceView = NonNullable<RunView['result']>['instances'][number] & { phases?: Phase[] };

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'point';

export interface MetricStats {
  type: MetricType;
  unit?: string;
  count: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Per group, per metric name. */
export type MetricsSummary = Record<string, Record<string, MetricStats>>;

export interface MetricPoint {
  group: string;
  instance: number;
  name: string;
  type: MetricType;
  value: number;
  unit?: string;
  ts: string;
}

export interface RunMetrics {
  run_id: string;
  task_id: string;
  groups: MetricsSummary;
  points?: MetricPoint[];
}

/**
 * The API's shapes as the pages read them, taken from api/schemas.ts (type-only imports, so nothing of the
 * daemon ends up in the bundle). Instance phases and run metrics are optional there: older results show
 * what they have.
 */
import type {
  LogLine,
  MetricPointView,
  RunMetrics,
  RunView,
  TaskList,
  TaskSummaryView,
  TaskView,
} from '../../api/schemas.ts';

export type { LogLine, RunMetrics, RunView, TaskList, TaskSummaryView, TaskView };

export type InstanceView = NonNullable<RunView['result']>['instances'][number];
export type Phase = NonNullable<InstanceView['phases']>[number];
/** Per group, per metric name. */
export type MetricStats = RunMetrics['groups'][string][string];
export type MetricPoint = MetricPointView;

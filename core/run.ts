import type { MetricType } from './contract/metrics.ts';

/**
 * A run as the daemon carries it from submission to its result: the resolved groups a runner starts,
 * and how every instance and the run as a whole ended. Plain data, shared by every layer.
 */

/**
 * `[groups.build] dependencies`: a package the plan's build takes at another version (`version`) or from
 * another source (`target`: anything npm accepts as a version, like a tarball or `npm:other@1.2.3`), as the
 * original's Go builders did for Go modules.
 */
export interface BuildDependency {
  module: string;
  version?: string;
  target?: string;
}

/** One group of one run, with everything a builder and a runner need and nothing left to default. */
export interface ResolvedGroup {
  /** The group id instances see as TEST_GROUP_ID; safe to use as a directory name. */
  id: string;
  instances: number;
  builder: string;
  /** Manifest builder config < global.build_config < group build_config (shallow merge, `enabled` dropped). */
  buildConfig: Record<string, unknown>;
  resources: { memoryBytes?: number; cpus?: number };
  /** After precedence: run-group > run > group > global > manifest default. */
  testParams: Record<string, string>;
  /** Package overrides for the build; part of what makes two builds the same. */
  dependencies: BuildDependency[];
  /** A prebuilt artifact (`run.artifact`, `--use-build`): the group is not built, it starts from this. */
  artifact?: string;
}

export interface ResolvedRun {
  /** The composition's name for the run: its `[[runs]]` id, or `default` when it declares none. */
  id: string;
  /** The manifest name with "/" replaced by "-" (TEST_PLAN). */
  plan: string;
  testCase: string;
  /** The global builder; groups may override it (see ResolvedGroup.builder). */
  builder: string;
  runner: string;
  totalInstances: number;
  /** Manifest runner config < global.run_config (shallow merge, `enabled` dropped). */
  runConfig: Record<string, unknown>;
  /** From run_config.timeout; 10 minutes when absent. */
  timeoutMs: number;
  disableMetrics: boolean;
  groups: ResolvedGroup[];
}

/**
 * What a composition asks for: one or more runs of one test case of one plan, one after another. Runs
 * share the composition's groups, so a group's build serves every run that uses it.
 */
export interface ResolvedTask {
  plan: string;
  testCase: string;
  runner: string;
  /** The global builder; groups may override it. */
  builder: string;
  runs: ResolvedRun[];
}

/** How one instance ended (CONTRACT §4, plus `timeout` and `canceled`, which the runner decides). */
export const instanceOutcomes = ['success', 'failure', 'crash', 'timeout', 'no_outcome', 'canceled'] as const;
export type InstanceOutcome = (typeof instanceOutcomes)[number];

export interface InstanceResult {
  group: string;
  index: number;
  outcome: InstanceOutcome;
  reason: string;
  exitCode: number | null;
  signal: string | null;
  /** What the daemon did to its output, when it did something (truncated it at the quota). */
  notes?: string[];
  /**
   * Timestamped marks in the order they happened: `created`, `started`, `network-initialized`,
   * `stage-start:<stage>` / `stage-end:<stage>`, `ended`. A mark the runner never saw is absent.
   */
  phases?: InstancePhase[];
}

/** One mark of an instance's life; `at` is ISO 8601. */
export interface InstancePhase {
  name: string;
  at: string;
}

/**
 * One metric of one group over every instance: a counter by each instance's final total, anything else by
 * every recorded value. Percentiles by nearest rank on the sorted values.
 */
export interface MetricSummary {
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

/** Group id → metric name → its summary. */
export type MetricsSummary = Record<string, Record<string, MetricSummary>>;

/** Per group: how many instances, how many succeeded, and how many ended each way. */
export interface GroupSummary {
  total: number;
  ok: number;
  outcomes: Partial<Record<InstanceOutcome, number>>;
}

/** How a run ended: `error` when the build or the infrastructure broke, else decided from its instances. */
export const runOutcomes = ['success', 'failure', 'error', 'canceled'] as const;
export type RunOutcome = (typeof runOutcomes)[number];

export interface RunResult {
  outcome: RunOutcome;
  reason: string;
  groups: Record<string, GroupSummary>;
  instances: InstanceResult[];
  /** What the instances recorded in `metrics.out`, summarised when the run ended; absent when none did. */
  metrics?: MetricsSummary;
}

/**
 * What a task's report says, whatever its format: for each run its outcome, per group how many instances
 * succeeded, and for each instance that did not, why and the last lines it wrote. Built by the daemon from
 * the task record and the runs' outputs; formatted as JUnit XML, CSV, Markdown or JSON.
 */
import type { GroupSummary, InstanceOutcome, RunOutcome } from '../../core/run.ts';

export interface ReportInstance {
  group: string;
  index: number;
  outcome: InstanceOutcome;
  reason: string;
  /** The last lines of its `run.out` and `run.err`, oldest first. */
  tail: string[];
}

export interface RunReport {
  runId: string;
  /** The composition's name for the run: `default`, or its `[[runs]]` id. */
  name: string;
  /** Undefined while the run has not ended. */
  outcome: RunOutcome | undefined;
  error?: string;
  startedAt?: string;
  endedAt?: string;
  /** Every group of the run, those that never started included (then `total` is what was asked). */
  groups: (GroupSummary & { id: string })[];
  /** The instances that did not succeed. */
  failed: ReportInstance[];
}

export interface TaskReport {
  taskId: string;
  plan: string;
  testCase: string;
  runner: string;
  outcome: RunOutcome | undefined;
  error?: string;
  createdAt: string;
  endedAt?: string;
  runs: RunReport[];
}

/** Seconds between two ISO times, 0 when either is missing (a run that never started took no time). */
export function secondsBetween(start: string | undefined, end: string | undefined): number {
  if (start === undefined || end === undefined) return 0;
  const seconds = (Date.parse(end) - Date.parse(start)) / 1_000;
  return Number.isFinite(seconds) && seconds > 0 ? Math.round(seconds * 1_000) / 1_000 : 0;
}

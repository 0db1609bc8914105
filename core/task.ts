/** A task on the daemon's record: what was asked, where it is now, and how it ended. */
import type { ResolvedRun, RunOutcome, RunResult } from './run.ts';

export const taskStates = ['queued', 'building', 'running', 'complete', 'canceled'] as const;
export type TaskState = (typeof taskStates)[number];

const terminalStates: readonly TaskState[] = ['complete', 'canceled'];
export const isTerminal = (state: TaskState): boolean => terminalStates.includes(state);

/** Timestamps are ISO 8601. */
export interface TaskRecord {
  id: string;
  type: 'run';
  runId: string;
  plan: string;
  testCase: string;
  builder: string;
  runner: string;
  instances: number;
  createdBy: string;
  createdAt: string;
  state: TaskState;
  states: { state: TaskState; at: string }[];
  outcome?: RunOutcome;
  error?: string;
  result?: RunResult;
  cancelRequested: boolean;
  daemonId?: string;
  /** The composition as submitted, after parsing (a JSON document). */
  composition: Readonly<Record<string, unknown>>;
  resolved: ResolvedRun;
  planDir: string;
  outputsDir: string;
}

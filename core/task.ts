/** A task on the daemon's record: what was asked, where it is now, and how it ended. */
import type { ProblemDetail } from './errors.ts';
import type { ResolvedTask, RunOutcome, RunResult } from './run.ts';
import type { RunProgress } from './run-progress.ts';

export const taskStates = ['queued', 'building', 'running', 'complete', 'canceled'] as const;
export type TaskState = (typeof taskStates)[number];

const terminalStates: readonly TaskState[] = ['complete', 'canceled'];
export const isTerminal = (state: TaskState): boolean => terminalStates.includes(state);

/** `run` builds what its runs need, then runs them; `build` only builds, and lists what it built. */
export const taskTypes = ['run', 'build'] as const;
export type TaskType = (typeof taskTypes)[number];

/** A run waits (`pending`) until the runs before it have ended; `complete` covers success, failure and error. */
export const runStates = ['pending', 'running', 'complete', 'canceled'] as const;
export type RunState = (typeof runStates)[number];

export const isRunEnded = (state: RunState): boolean => state === 'complete' || state === 'canceled';

/** One run of a task: the composition's `default` run, or one of its `[[runs]]`. Timestamps are ISO 8601. */
export interface RunRecord {
  /** The task id when the task has a single run named `default`, else `<task id>-<name>`. */
  id: string;
  /** The composition's name for it: its `[[runs]]` id, or `default`. */
  name: string;
  /** `<outputs root>/<runner>/<plan>/<run id>`. */
  outputsDir: string;
  /** How many instances it starts. */
  instances: number;
  state: RunState;
  outcome?: RunOutcome;
  /** Why it did not succeed: the failing instances, the error, or what kept it from running. */
  error?: string;
  result?: RunResult;
  startedAt?: string;
  endedAt?: string;
}

/** An artifact a task built (or was given) for one of its groups. */
export interface GroupArtifact {
  /** The group id as its run names it (a run-group id when the composition has `[[runs]]`). */
  group: string;
  builder: string;
  /** The artifact's id: `sha256:…` for an image, `bundle:<hash>` for a bundle. */
  artifact: string;
}

/** Where a task comes from, for CI: recorded as given (`--metadata-repo`, …), shown, and used by `--supersede`. */
export interface TaskMetadata {
  repo?: string;
  branch?: string;
  commit?: string;
}

/** Timestamps are ISO 8601. */
export interface TaskRecord {
  id: string;
  type: TaskType;
  /** The first run's id (the task id for a single `default` run, and for a build task). */
  runId: string;
  plan: string;
  testCase: string;
  builder: string;
  runner: string;
  /** Instances over all its runs; 0 for a build task. */
  instances: number;
  createdBy: string;
  createdAt: string;
  state: TaskState;
  states: { state: TaskState; at: string }[];
  /** The worst of its runs' outcomes (error > canceled > failure > success); for a build task, the build's. */
  outcome?: RunOutcome;
  error?: string;
  /** The first run's result; every run's is in `runs`. */
  result?: RunResult;
  cancelRequested: boolean;
  daemonId?: string;
  /** The composition as submitted, after parsing (a JSON document). */
  composition: Readonly<Record<string, unknown>>;
  /** What the composition resolved to; `resolved.runs[i]` is the run named `runs[i].name`. */
  resolved: ResolvedTask;
  /** In the order they run; empty for a build task. */
  runs: RunRecord[];
  /** The latest progress of each run that has started (`RunProgress.run` names it), in run order. */
  progress?: RunProgress[];
  /** Accepted at submit, but worth a word: keys without effect here, values that do not fit their type. */
  warnings: ProblemDetail[];
  /** What the builds produced (or were given), per group; filled in as builds finish. */
  artifacts: GroupArtifact[];
  metadata: TaskMetadata;
  /** Older queued tasks of the same repo, branch, plan and case this one canceled when it was submitted. */
  supersedes: string[];
  planDir: string;
  /** The first run's outputs directory; `''` for a build task. */
  outputsDir: string;
}

/** What a listing shows of a task: a few plain fields, read without decoding its composition or runs. */
export type TaskSummary = Pick<
  TaskRecord,
  | 'id'
  | 'type'
  | 'plan'
  | 'testCase'
  | 'builder'
  | 'runner'
  | 'instances'
  | 'createdBy'
  | 'createdAt'
  | 'state'
  | 'outcome'
  | 'error'
  | 'cancelRequested'
  | 'metadata'
> & { endedAt?: string };

/** One page of a listing, newest first; `next` continues after its last task, absent on the last page. */
export interface TaskSummaryPage {
  tasks: TaskSummary[];
  next?: string;
}

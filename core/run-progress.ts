import type { InstanceOutcome } from './run.ts';

/**
 * How far a run has got while it runs, for someone waiting on it: its groups' instances by phase and the
 * sync service's states. The daemon keeps the latest one per run on the task record and appends it to the
 * task's log when it changes.
 */
export interface RunProgress {
  /** The run's id. */
  run: string;
  groups: GroupProgress[];
  /** The sync service's states, those with waiting barriers first; empty before it answers. */
  states: SyncStateProgress[];
  /** When it was taken (ISO 8601). */
  at: string;
}

export interface GroupProgress {
  group: string;
  /** Instances the group has. */
  instances: number;
  /** Instances that started (ran their plan): the running ones and the ended ones that ran. */
  started: number;
  /** Started and not ended. */
  running: number;
  /** Ended instances by outcome; an outcome no instance had is left out. */
  ended: Partial<Record<InstanceOutcome, number>>;
}

/** One sync service state: `count` signalled of the `target` its largest barrier waits for. */
export interface SyncStateProgress {
  name: string;
  count: number;
  /** The largest target a barrier asked of it; 0 when no barrier did. */
  target: number;
  /** Barriers waiting on it now. */
  waiting: number;
}

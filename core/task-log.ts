import type { InstanceOutcome, RunOutcome } from './run.ts';
import type { RunProgress } from './run-progress.ts';
import type { TaskState } from './task.ts';

/**
 * What builders and runners may write to a task's live log. The daemon backs it with Redis Streams
 * (`log-bus.ts`); builders and runners never see Redis.
 */
export interface TaskLog {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** One line an instance wrote on stdout or stderr. */
  output(group: string, instance: number, stream: 'stdout' | 'stderr', line: string): void;
  /** An instance ended, with its outcome and the reason for it. */
  instanceEnd(group: string, instance: number, outcome: InstanceOutcome, reason: string): void;
  /**
   * An instance reached a phase the runner or its output marked (`created`, `started`,
   * `network-initialized`, a stage): counted for the run's progress, not written as a line of its own.
   */
  instancePhase?(group: string, instance: number, phase: string): void;
  /**
   * Whether the log can take more now: undefined when it can, else a promise that resolves once it has
   * caught up. Producers that can wait (an instance's output pipe) pause until then, so a slow store
   * slows the instance down instead of filling the daemon's memory.
   */
  backpressure?(): Promise<void> | undefined;
}

/** One line of a task's log, as stored and as served (NDJSON). The last line of a finished task is `end`. */
export type LogEntry =
  | { kind: 'log'; ts: string; level: 'info' | 'warn' | 'error'; msg: string }
  | { kind: 'output'; ts: string; group: string; instance: number; stream: 'stdout' | 'stderr'; line: string }
  | {
      kind: 'instance_end';
      ts: string;
      group: string;
      instance: number;
      outcome: InstanceOutcome;
      reason: string;
    }
  | { kind: 'state'; ts: string; state: TaskState }
  /** The run's progress, appended when it changes (at most about once a second). */
  | ({ kind: 'progress'; ts: string } & Omit<RunProgress, 'at'>)
  | { kind: 'end'; ts: string; state: TaskState; outcome?: RunOutcome; error?: string };

/** A log line with its offset in the log: reading after that offset resumes with the next line. */
export type LogEntryWithOffset = LogEntry & { offset: string };

/** The offset meaning "from the beginning". Offsets are `<ms>-<seq>`; reading after `0` returns all. */
export const logStart = '0';

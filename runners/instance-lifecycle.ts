/**
 * What every runner does around its instances, written once: stop them when the run times out or is
 * canceled (whichever comes first, once), then turn how each one ended into its outcome, its reason and
 * its log line.
 */
import type { InstanceEvent } from '../core/contract/events.ts';
import { decideInstanceOutcome, type InstanceDecision } from '../core/outcome.ts';
import type { InstancePhase, InstanceResult } from '../core/run.ts';
import type { TaskLog } from '../core/task-log.ts';

/** Why instances were stopped before they ended by themselves. */
export type StopReason = 'timeout' | 'canceled';

/**
 * Calls `stop` once: when `timeoutMs` has passed or when `signal` aborts (at once if it already has).
 * A runner keeps one per run (local:docker) or per instance (local:exec), and disposes of it when what it
 * guards has ended.
 */
export class StopTrigger {
  private stopped: StopReason | undefined;
  private readonly timer: NodeJS.Timeout;
  private readonly signal: AbortSignal;
  private readonly onAbort: () => void;
  private readonly stop: (reason: StopReason) => void;

  constructor(options: { timeoutMs: number; signal: AbortSignal; stop: (reason: StopReason) => void }) {
    this.stop = options.stop;
    this.signal = options.signal;
    this.timer = setTimeout(() => this.fire('timeout'), options.timeoutMs);
    this.onAbort = () => this.fire('canceled');
    this.signal.addEventListener('abort', this.onAbort, { once: true });
    if (this.signal.aborted) this.onAbort();
  }

  /** Why `stop` was called, or `undefined` while it has not been. */
  get reason(): StopReason | undefined {
    return this.stopped;
  }

  /** Stops watching; `reason` stays as it was. Safe to call more than once. */
  dispose(): void {
    clearTimeout(this.timer);
    this.signal.removeEventListener('abort', this.onAbort);
  }

  private fire(reason: StopReason): void {
    if (this.stopped) return;
    this.stopped = reason;
    this.stop(reason);
  }
}

/** How an instance's process or container ended, as far as the runner saw it. */
export type InstanceEnding =
  /** It ran and ended (by itself or because it was stopped). */
  | { kind: 'exited'; exitCode: number | null; signal: string | null; oomKilled?: boolean }
  /** It could not be started at all (`reason` says why): the plan never got to run. */
  | { kind: 'failed-to-start'; reason: string }
  /** It was never started because the run was stopped first. */
  | { kind: 'never-started' }
  /**
   * Its end was never seen: what ran it went away (a cluster node died, `reason` names it). A crash,
   * whatever it recorded before: nobody saw it end.
   */
  | { kind: 'lost'; reason: string };

export interface InstanceEnd {
  group: string;
  index: number;
  /** The terminal event the instance recorded, if any (from `InstanceOutput.terminal`). */
  terminal: InstanceEvent | undefined;
  ending: InstanceEnding;
  /** Why the runner stopped it, if it did. */
  stopped: StopReason | undefined;
  /**
   * The runner ended it for a failure of the plan that the runner saw itself (the network controller
   * refused its network configuration): its outcome is `failure` with this reason, however it exited.
   */
  failure?: string;
  /** The run's timeout, named in the reason of an instance stopped by it. */
  timeoutMs: number;
  log: TaskLog;
  /** The phases marked so far (`InstanceOutput.phases`); `ended` is added now. */
  phases?: readonly InstancePhase[];
  /** When the runner saw it end; default now. */
  endedAt?: Date;
}

/** Decides the instance's outcome, logs its end, and returns its result. */
export function concludeInstance(end: InstanceEnd): InstanceResult {
  const decided = decide(end);
  const reason =
    end.stopped === 'timeout' ? `${decided.reason} (run timeout ${end.timeoutMs} ms)` : decided.reason;
  end.log.instanceEnd(end.group, end.index, decided.outcome, reason);
  const exited = end.ending.kind === 'exited' ? end.ending : undefined;
  return {
    group: end.group,
    index: end.index,
    outcome: decided.outcome,
    reason,
    exitCode: exited?.exitCode ?? null,
    signal: exited?.signal ?? null,
    phases: [...(end.phases ?? []), { name: 'ended', at: (end.endedAt ?? new Date()).toISOString() }],
  };
}

function decide({ ending, terminal, stopped, failure }: InstanceEnd): InstanceDecision {
  if (failure !== undefined) return { outcome: 'failure', reason: failure };
  switch (ending.kind) {
    case 'exited':
      return decideInstanceOutcome(terminal, {
        exitCode: ending.exitCode,
        signal: ending.signal,
        oomKilled: ending.oomKilled ?? false,
        timedOut: stopped === 'timeout',
        canceled: stopped === 'canceled',
      });
    case 'failed-to-start':
    case 'lost':
      return { outcome: 'crash', reason: ending.reason };
    case 'never-started':
      return stopped === 'timeout'
        ? { outcome: 'timeout', reason: 'never started: the run was timed out first' }
        : { outcome: 'canceled', reason: 'never started: the run was canceled first' };
  }
}

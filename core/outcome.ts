/**
 * How an instance and a run ended (CONTRACT §4): pure rules shared by every runner, each with a reason.
 */
import type { InstanceEvent } from './contract/events.ts';
import type { GroupSummary, InstanceOutcome, RunOutcome } from './run.ts';

/** How the instance's process (or container) ended, and whether we stopped it. */
export interface InstanceExit {
  exitCode: number | null;
  signal: string | null;
  /** Killed for using more memory than its limit (docker reports it). */
  oomKilled?: boolean;
  /** Still running at the run timeout, so we killed it. */
  timedOut: boolean;
  /** Stopped because someone canceled the run. */
  canceled: boolean;
}

/** An instance's outcome and why, in words a person can act on. */
export interface InstanceDecision {
  outcome: InstanceOutcome;
  reason: string;
}

const terminalRank: Partial<Record<InstanceEvent['kind'], number>> = { success: 1, failure: 2, crash: 3 };

/**
 * The terminal event to keep when `next` arrives: the worst of the two (crash > failure > success),
 * the earlier one on a tie. Non-terminal events leave `current` as it is.
 */
export function pickTerminalEvent(
  current: InstanceEvent | undefined,
  next: InstanceEvent,
): InstanceEvent | undefined {
  const nextRank = terminalRank[next.kind];
  if (nextRank === undefined) return current;
  if (current === undefined) return next;
  return nextRank > (terminalRank[current.kind] ?? 0) ? next : current;
}

/** Decides one instance's outcome from its terminal event (success, failure or crash) and how it exited. */
export function decideInstanceOutcome(
  terminal: InstanceEvent | undefined,
  exit: InstanceExit,
): InstanceDecision {
  const recorded = describeRecorded(terminal);
  if (exit.canceled) {
    return {
      outcome: 'canceled',
      reason: `stopped because the run was canceled${recorded ? ` (it had recorded ${recorded})` : ''}`,
    };
  }
  if (exit.timedOut) {
    // Even a recorded success does not count: the instance had not exited, so its work was not done.
    return {
      outcome: 'timeout',
      reason: recorded
        ? `recorded ${recorded} but was still running at the run timeout; killed`
        : 'still running at the run timeout without recording an outcome; killed',
    };
  }
  if (exit.oomKilled) return { outcome: 'crash', reason: 'killed: out of memory' };
  const ending = describeExit(exit);
  switch (terminal?.kind) {
    case 'success':
      return exit.exitCode === 0 && exit.signal === null
        ? { outcome: 'success', reason: 'recorded success and exited with code 0' }
        : { outcome: 'crash', reason: `${ending} after recording success` };
    case 'failure':
      return {
        outcome: 'failure',
        reason: terminal.error || `recorded failure without an error message (${ending})`,
      };
    case 'crash':
      return {
        outcome: 'crash',
        reason: terminal.error || `recorded a crash without an error message (${ending})`,
      };
    default:
      return exit.exitCode === 0 && exit.signal === null
        ? { outcome: 'no_outcome', reason: 'exited 0 without recording an outcome' }
        : { outcome: 'crash', reason: `${ending} without recording an outcome` };
  }
}

function describeRecorded(terminal: InstanceEvent | undefined): string | undefined {
  switch (terminal?.kind) {
    case 'success':
      return 'success';
    case 'failure':
      return `failure: ${terminal.error}`;
    case 'crash':
      return `crash: ${terminal.error}`;
    default:
      return undefined;
  }
}

function describeExit(exit: InstanceExit): string {
  if (exit.signal !== null) return `killed by signal ${exit.signal}`;
  if (exit.exitCode !== null) return `exited with code ${exit.exitCode}`;
  return 'ended without an exit code or signal';
}

/** A run's outcome, why, and its per-group counts. */
export interface RunDecision {
  outcome: 'success' | 'failure' | 'canceled';
  reason: string;
  groups: Record<string, GroupSummary>;
}

// The order outcomes are listed in summaries: worst news first.
const listedOrder: readonly InstanceOutcome[] = ['failure', 'crash', 'timeout', 'no_outcome', 'canceled'];

/**
 * A run succeeds only when it had instances and every one succeeded; it is canceled when any instance
 * was; otherwise it failed.
 */
export function decideRunOutcome(
  instances: readonly { group: string; outcome: InstanceOutcome }[],
): RunDecision {
  const groups: Record<string, GroupSummary> = {};
  const totals: Partial<Record<InstanceOutcome, number>> = {};
  for (const instance of instances) {
    const group = (groups[instance.group] ??= { total: 0, ok: 0, outcomes: {} });
    group.total += 1;
    if (instance.outcome === 'success') group.ok += 1;
    group.outcomes[instance.outcome] = (group.outcomes[instance.outcome] ?? 0) + 1;
    totals[instance.outcome] = (totals[instance.outcome] ?? 0) + 1;
  }
  const total = instances.length;
  const succeeded = totals.success ?? 0;
  if (total === 0) return { outcome: 'failure', reason: 'no instances ran', groups };
  if (totals.canceled) {
    return {
      outcome: 'canceled',
      reason: `the run was canceled: ${totals.canceled} of ${total} instances were stopped`,
      groups,
    };
  }
  if (succeeded === total) {
    return { outcome: 'success', reason: `all ${total} instance${total === 1 ? '' : 's'} succeeded`, groups };
  }
  return {
    outcome: 'failure',
    reason: `${total - succeeded} of ${total} instances did not succeed (${listOutcomes(totals)})`,
    groups,
  };
}

/** One line per group: `single: 10/10 ok`, or `single: 7/10 ok (2 failure, 1 crash)`. */
export function formatGroupSummary(groups: Readonly<Record<string, GroupSummary>>): string[] {
  return Object.entries(groups).map(([id, group]) => {
    const line = `${id}: ${group.ok}/${group.total} ok`;
    return group.ok === group.total ? line : `${line} (${listOutcomes(group.outcomes)})`;
  });
}

function listOutcomes(counts: Partial<Record<InstanceOutcome, number>>): string {
  return listedOrder
    .filter((outcome) => (counts[outcome] ?? 0) > 0)
    .map((outcome) => `${counts[outcome]} ${outcome === 'no_outcome' ? 'no outcome' : outcome}`)
    .join(', ');
}

// Worst news first: a broken build or daemon says more than a cancel, a cancel more than a failing plan.
const runOutcomeRank: Record<RunOutcome, number> = { success: 0, failure: 1, canceled: 2, error: 3 };

/** The worst of several runs' outcomes (error > canceled > failure > success); `success` for none. */
export function worstOutcome(outcomes: readonly RunOutcome[]): RunOutcome {
  return outcomes.reduce<RunOutcome>(
    (worst, outcome) => (runOutcomeRank[outcome] > runOutcomeRank[worst] ? outcome : worst),
    'success',
  );
}

/** A task's outcome and error from its runs', in order: the worst outcome, and the first run that had it. */
export function decideTaskOutcome(runs: readonly { name: string; outcome?: RunOutcome; error?: string }[]): {
  outcome: RunOutcome;
  error?: string;
} {
  const outcome = worstOutcome(runs.map((run) => run.outcome ?? 'canceled'));
  if (outcome === 'success') return { outcome };
  const culprit = runs.find((run) => (run.outcome ?? 'canceled') === outcome);
  const error = culprit?.error ?? outcome;
  // A single run speaks for the task as it did before tasks held several runs.
  return { outcome, error: runs.length === 1 ? error : `run ${culprit?.name ?? '?'}: ${error}` };
}

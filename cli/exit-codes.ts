/**
 * What `testground` exits with; CI pipelines gate on these. Every command that shows a task (`run --wait`,
 * `status`, `logs -f`) exits by the task's outcome, so a script gets the same answer whichever it used.
 */
export const exitCodes = {
  success: 0,
  /** The run's plan failed (an instance failed, crashed, timed out or recorded nothing). */
  failure: 1,
  /** The request was refused (bad composition, plan or argument), by the CLI or the daemon. */
  rejected: 2,
  /** The task ended as `error`: its build failed (the plan does not compile) or the infrastructure did. */
  error: 3,
  /** Someone canceled the task. */
  canceled: 4,
  /** The daemon could not be reached, or answered as something that is not a Testground daemon. */
  unreachable: 5,
  /**
   * `status` or `logs` (without -f) showed a task that has not ended yet (queued, building or running): not a
   * success yet, and not a failure, so a script can tell "ask again later" from both.
   */
  running: 6,
  /** The user pressed Ctrl-C: the CLI stopped following; the task goes on unless a second Ctrl-C canceled it. */
  interrupted: 130,
} as const;

/** The table docs/cli.md shows (generated, so it cannot drift from the codes). */
export const exitCodeMeanings: Record<keyof typeof exitCodes, string> = {
  success: 'success: the command did what it was asked; a followed task (run --wait, status, logs) succeeded',
  failure:
    "the task's plan failed: an instance failed, crashed, timed out or recorded nothing; or a check (healthcheck) failed",
  rejected: 'the request was refused: a bad flag, composition, plan or argument, by the CLI or the daemon',
  error: 'the task ended in error: its build failed (the plan does not compile) or the infrastructure did',
  canceled: 'the task was canceled',
  unreachable: 'the daemon could not be reached, or what answered is not a Testground daemon',
  running: 'status or logs (without -f) showed a task that has not ended yet: ask again later',
  interrupted:
    'Ctrl-C: the CLI stopped following; the task goes on unless a second Ctrl-C within 2 s canceled it (then 4)',
};

export function exitCodeForOutcome(outcome: string | null | undefined): number {
  switch (outcome) {
    case 'success':
      return exitCodes.success;
    case 'failure':
      return exitCodes.failure;
    case 'canceled':
      return exitCodes.canceled;
    default:
      return exitCodes.error;
  }
}

/** A task shown by `status` or `logs`: its outcome's code once it has ended, `running` before. */
export function exitCodeForTask(task: { state: string; outcome: string | null }): number {
  if (task.state !== 'complete' && task.state !== 'canceled') return exitCodes.running;
  return exitCodeForOutcome(task.outcome);
}

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
  /** The user pressed Ctrl-C: the CLI stopped following; the task goes on unless a second Ctrl-C canceled it. */
  interrupted: 130,
} as const;

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

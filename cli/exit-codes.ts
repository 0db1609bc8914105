/** What `testground` exits with; CI pipelines gate on these. */
export const exitCodes = {
  success: 0,
  /** The run's plan failed (an instance failed, crashed, timed out or recorded nothing). */
  failure: 1,
  /** The daemon refused the request (bad composition, plan or argument). */
  rejected: 2,
  /** The daemon is unreachable, or the task ended as `error` (build or infrastructure). */
  error: 3,
  /** Someone canceled the task. */
  canceled: 4,
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

import { isRunEnded, type RunRecord } from '../core/task.ts';

/** Every run not ended yet, ended as `canceled` with `reason`; ended runs keep their outcome. */
export function cancelRuns(runs: readonly RunRecord[], reason: string, at: Date): RunRecord[] {
  return runs.map((run) =>
    isRunEnded(run.state)
      ? run
      : { ...run, state: 'canceled', outcome: 'canceled', error: reason, endedAt: at.toISOString() },
  );
}

/**
 * An error (a build, the infrastructure, the daemon) ends the task: the first run not ended carries it as its
 * `error` outcome, and the runs after it end `canceled`, saying why they did not run.
 */
export function failRuns(runs: readonly RunRecord[], message: string, at: Date): RunRecord[] {
  const failing = runs.find((run) => !isRunEnded(run.state));
  if (failing === undefined) return [...runs];
  const failed = runs.map((run) =>
    run === failing
      ? {
          ...run,
          state: 'complete' as const,
          outcome: 'error' as const,
          error: message,
          endedAt: at.toISOString(),
        }
      : run,
  );
  return cancelRuns(failed, notRunAfterError(failing.name, message), at);
}

/** Why a run did not run: an earlier run ended in error. */
export function notRunAfterError(runName: string, message: string): string {
  return `not run: run ${runName} ended in error (${message})`;
}

import type { RunProgressView } from '../api/schemas.ts';

/** A run's progress as the daemon sends it, in the task record or as a `progress` log line. */
export type ProgressSnapshot = Omit<RunProgressView, 'at'>;

/**
 * What a waiting user reads of a run: a line per group (started, running, ended by outcome) and a line per
 * state that barriers wait on (how many signalled of how many the barrier needs, and how many wait).
 * `runName` is given when the task has several runs, so each line says whose it is.
 */
export function formatProgress(progress: ProgressSnapshot, runName?: string): string[] {
  const prefix = runName === undefined ? '' : `${runName}/`;
  const lines = progress.groups.map((group) => {
    const ended = Object.entries(group.ended)
      .filter(([, count]) => count !== undefined && count > 0)
      .map(([outcome, count]) => `${count} ${outcome}`);
    const endedText = ended.length === 0 ? '' : `, ended: ${ended.join(', ')}`;
    return `${prefix}${group.group}: ${group.started} of ${group.instances} started, ${group.running} running${endedText}`;
  });
  for (const state of progress.states) {
    if (state.waiting === 0) continue;
    lines.push(
      `${runName === undefined ? '' : `${runName}: `}waiting on barrier "${state.name}" (${state.count} of ${state.target}): ${state.waiting} instance${state.waiting === 1 ? '' : 's'} waiting`,
    );
  }
  return lines;
}

/** The same in one line, for a log that is not a terminal (a CI job's) and for `logs` without `-f`. */
export function formatProgressLine(progress: ProgressSnapshot, runName?: string): string {
  return formatProgress(progress, runName).join('; ');
}

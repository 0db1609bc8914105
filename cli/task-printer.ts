import { formatGroupSummary } from '../core/outcome.ts';
import type { RunView, TaskView } from '../api/schemas.ts';

export interface Output {
  out: (text: string) => void;
  err: (text: string) => void;
}

/**
 * A task of one `default` run (a composition without [[runs]]) reads as that run, as it did before tasks
 * held several runs; otherwise each run is shown under its name.
 */
export function isSingleRun(task: TaskView): boolean {
  return task.runs.length === 1 && task.runs[0]!.id === task.id;
}

/** How the task ended: each run's per-group summary under its name, then the task's outcome. */
export function printOutcome(task: TaskView, output: Output, options: { followed?: boolean } = {}): void {
  // Following, the log showed a long error in full already; here its first line says which one it was.
  const describeEnd = (state: string, outcome: string | null, error: string | null): string =>
    describeEndOf(state, outcome, options.followed ? briefError(error) : error);
  if (task.type === 'build') {
    printArtifacts(task, output);
    output.out(`build ${task.id}: ${describeEnd(task.state, task.outcome, task.error)}`);
    return;
  }
  if (isSingleRun(task)) {
    if (task.result) for (const line of formatGroupSummary(task.result.groups)) output.out(line);
    output.out(`run ${task.run_id}: ${describeEnd(task.state, task.outcome, task.error)}`);
    return;
  }
  for (const run of task.runs) printRun(run, output);
  output.out(`task ${task.id}: ${describeEnd(task.state, task.outcome, task.error)}`);
}

/**
 * One run: its state and outcome, then its groups (and, with `failures`, every instance that did not succeed;
 * with `every`, every instance).
 */
export function printRun(
  run: RunView,
  output: Output,
  options: { failures?: boolean; every?: boolean } = {},
): void {
  output.out(`run ${run.name} (${run.id}): ${describeEndOf(run.state, run.outcome, run.error)}`);
  if (!run.result) return;
  for (const line of formatGroupSummary(run.result.groups)) output.out(`  ${line}`);
  if (!options.failures) return;
  const shown = options.every
    ? run.result.instances
    : run.result.instances.filter((item) => item.outcome !== 'success');
  for (const instance of shown) {
    output.out(`    ${instance.group}[${instance.index}]: ${instance.outcome} (${instance.reason})`);
  }
}

export function printArtifacts(task: TaskView, output: Output): void {
  for (const entry of task.artifacts) {
    output.out(`group ${entry.group}: ${entry.artifact} (${entry.builder})`);
  }
}

/**
 * A multi-line error (a build's list of compiler errors) as its first line and `…`, for places that repeat
 * an error shown in full elsewhere; a one-line error as it is.
 */
export function briefError(error: string | null): string | null {
  if (error === null) return null;
  const newline = error.indexOf('\n');
  return newline === -1 ? error : `${error.slice(0, newline)} …`;
}

/** `complete, outcome failure (1 of 2 instances did not succeed)`, or `running` while it goes on. */
function describeEndOf(state: string, outcome: string | null, error: string | null): string {
  if (outcome === null && state !== 'complete' && state !== 'canceled') return state;
  return `${state}, outcome ${outcome ?? 'none'}${error ? ` (${error})` : ''}`;
}

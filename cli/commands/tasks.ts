import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ReportFormat, TaskList, TaskView } from '../../api/schemas.ts';
import type { ApiClient } from '../api-client.ts';
import { exitCodeForTask, exitCodes } from '../exit-codes.ts';
import { followTask } from '../follow-task.ts';
import { printJson } from '../json-output.ts';
import { formatProgress } from '../progress-view.ts';
import { formatLogLine } from '../log-printer.ts';
import { isSingleRun, printArtifacts, printOutcome, printRun, type Output } from '../task-printer.ts';

/**
 * `testground status -t <id>`: the task, its runs and their failures; with `extended`, also its composition,
 * metadata and every instance. Exits by the task's outcome as `run --wait` does, `running` until it ends.
 */
export async function status(
  client: ApiClient,
  options: { task: string; extended?: boolean; json?: boolean },
  output: Output,
): Promise<number> {
  const task = await client.getTask(options.task);
  if (options.json) {
    printJson(task, output);
    return exitCodeForTask(task);
  }
  const what = task.type === 'build' ? 'build' : `${task.instances} instances`;
  output.out(
    `task ${task.id} (${task.plan}/${task.case}, ${what}, ${task.builder} → ${task.runner}, by ${task.created_by})`,
  );
  for (const entry of task.states) output.out(`  ${entry.at}  ${entry.state}`);
  for (const warning of task.warnings) output.out(`  warning: ${warning.path}: ${warning.message}`);
  if (options.extended) printExtended(task, output);
  printRunningProgress(task, output);
  if (task.type === 'build') {
    printOutcome(task, output);
    return exitCodeForTask(task);
  }
  if (isSingleRun(task)) {
    const shown = options.extended
      ? (task.result?.instances ?? [])
      : (task.result?.instances.filter((item) => item.outcome !== 'success') ?? []);
    for (const instance of shown) {
      output.out(`  ${instance.group}[${instance.index}]: ${instance.outcome} (${instance.reason})`);
    }
    printOutcome(task, output);
    return exitCodeForTask(task);
  }
  for (const run of task.runs) printRun(run, output, { failures: true, every: Boolean(options.extended) });
  if (task.artifacts.length > 0) printArtifacts(task, output);
  output.out(
    `task ${task.id}: ${task.state}${task.outcome ? `, outcome ${task.outcome}` : ''}${task.error ? ` (${task.error})` : ''}`,
  );
  return exitCodeForTask(task);
}

/** Where a running task's runs are (instances by phase, barriers waited on), as `run --wait` shows it. */
function printRunningProgress(task: TaskView, output: Output): void {
  if (task.state !== 'running') return;
  const several = task.runs.length > 1;
  for (const progress of task.progress) {
    const name = several ? task.runs.find((run) => run.id === progress.run)?.name : undefined;
    for (const line of formatProgress(progress, name)) output.out(`  ${line}`);
  }
}

/** What the original's `status --extended` added: the input (composition, metadata) and the artifacts. */
function printExtended(task: TaskView, output: Output): void {
  const metadata = Object.entries(task.metadata).map(([key, value]) => `${key}=${value}`);
  output.out(`  metadata: ${metadata.length > 0 ? metadata.join(', ') : 'none'}`);
  if (task.supersedes.length > 0) output.out(`  superseded: ${task.supersedes.join(', ')}`);
  if (task.cancel_requested) output.out('  cancel requested');
  output.out('  composition:');
  for (const line of JSON.stringify(task.composition, null, 2).split('\n')) output.out(`    ${line}`);
  if (task.type === 'run' && task.artifacts.length > 0) printArtifacts(task, output);
}

/**
 * `testground logs -t <id> [-f]`: the log so far (following, until the task ends); exits by the task's
 * outcome, or `running` when it has not ended (only without -f).
 */
export async function logs(
  client: ApiClient,
  options: { task: string; follow?: boolean; json?: boolean },
  output: Output,
): Promise<number> {
  // Following with progress and Ctrl-C is for a person; --json gives a script the API's lines as they come.
  if (options.follow && !options.json) return exitCodeForTask(await followTask(client, options.task, output));
  await client.readLogs(
    options.task,
    (line) => output.out(options.json ? JSON.stringify(line) : formatLogLine(line)),
    { follow: Boolean(options.follow) },
  );
  return exitCodeForTask(await client.getTask(options.task));
}

/** `testground collect <id>`: one run's outputs by its run id, or every run's by the task id. */
export async function collect(
  client: ApiClient,
  id: string,
  file: string | undefined,
  output: Output,
): Promise<number> {
  const target = path.resolve(file ?? `${id}.tgz`);
  await client.downloadOutputs(id, target);
  output.out(`outputs: ${target}`);
  return 0;
}

/** Largest page the daemon serves. */
const maxPage = 1000;

/**
 * `testground tasks`: summaries, newest first, fetched a page at a time until `limit`; when more remain,
 * says (on stderr, so the table stays clean for scripts) how to go on.
 */
export async function listTasks(
  client: ApiClient,
  filter: { state?: string; plan?: string; limit?: number; cursor?: string; json?: boolean },
  output: Output,
): Promise<number> {
  const limit = filter.limit ?? 50;
  if (filter.json) {
    printJson(await collectTasks(client, filter, limit), output);
    return exitCodes.success;
  }
  output.out(
    ['ID'.padEnd(16), 'PLAN/CASE'.padEnd(28), 'STATE'.padEnd(10), 'OUTCOME'.padEnd(9), 'CREATED'].join(' '),
  );
  let cursor = filter.cursor;
  for (let shown = 0; shown < limit;) {
    const page = await client.listTasks({
      ...(filter.state ? { state: filter.state } : {}),
      ...(filter.plan ? { plan: filter.plan } : {}),
      limit: Math.min(limit - shown, maxPage),
      ...(cursor ? { cursor } : {}),
    });
    for (const task of page.tasks) {
      output.out(
        [
          task.id.padEnd(16),
          `${task.plan}/${task.case}`.padEnd(28),
          task.state.padEnd(10),
          (task.outcome ?? '-').padEnd(9),
          task.created_at,
        ].join(' '),
      );
    }
    shown += page.tasks.length;
    cursor = page.next_cursor ?? undefined;
    if (cursor === undefined) return 0;
  }
  if (cursor !== undefined) output.err(`more tasks: testground tasks --cursor ${cursor}`);
  return 0;
}

/** Up to `limit` summaries, as one listing of the API's shape: `next_cursor` continues after the last. */
async function collectTasks(
  client: ApiClient,
  filter: { state?: string; plan?: string; cursor?: string },
  limit: number,
): Promise<TaskList> {
  const tasks: TaskList['tasks'] = [];
  let cursor = filter.cursor;
  while (tasks.length < limit) {
    const page = await client.listTasks({
      ...(filter.state ? { state: filter.state } : {}),
      ...(filter.plan ? { plan: filter.plan } : {}),
      limit: Math.min(limit - tasks.length, maxPage),
      ...(cursor ? { cursor } : {}),
    });
    tasks.push(...page.tasks);
    cursor = page.next_cursor ?? undefined;
    if (cursor === undefined) break;
  }
  return { tasks, next_cursor: cursor ?? null };
}

export async function cancel(client: ApiClient, taskId: string, output: Output): Promise<number> {
  const task = await client.cancel(taskId);
  output.out(
    `task ${task.id}: ${task.cancel_requested ? 'cancel requested' : 'canceled'}, now ${task.state}`,
  );
  return 0;
}

/** `testground report -t <id>`: the task's report as the daemon renders it, printed or written to a file. */
export async function report(
  client: ApiClient,
  options: { task: string; format: ReportFormat; output?: string },
  output: Output,
): Promise<number> {
  const body = await client.report(options.task, options.format);
  if (options.output === undefined) {
    output.out(body.trimEnd());
  } else {
    await writeFile(path.resolve(options.output), body);
    output.out(`${options.format} report of task ${options.task}: ${path.resolve(options.output)}`);
  }
  return exitCodes.success;
}

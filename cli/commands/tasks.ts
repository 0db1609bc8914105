import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ReportFormat } from '../../api/schemas.ts';
import type { ApiClient } from '../api-client.ts';
import { exitCodeForOutcome, exitCodes } from '../exit-codes.ts';
import { followTask } from '../follow-task.ts';
import { formatLogLine } from '../log-printer.ts';
import { isSingleRun, printArtifacts, printOutcome, printRun, type Output } from '../task-printer.ts';

export async function status(client: ApiClient, taskId: string, output: Output): Promise<number> {
  const task = await client.getTask(taskId);
  const what = task.type === 'build' ? 'build' : `${task.instances} instances`;
  output.out(
    `task ${task.id} (${task.plan}/${task.case}, ${what}, ${task.builder} → ${task.runner}, by ${task.created_by})`,
  );
  for (const entry of task.states) output.out(`  ${entry.at}  ${entry.state}`);
  for (const warning of task.warnings) output.out(`  warning: ${warning.path}: ${warning.message}`);
  if (task.type === 'build') {
    printOutcome(task, output);
    return 0;
  }
  if (isSingleRun(task)) {
    for (const instance of task.result?.instances.filter((item) => item.outcome !== 'success') ?? []) {
      output.out(`  ${instance.group}[${instance.index}]: ${instance.outcome} (${instance.reason})`);
    }
    printOutcome(task, output);
    return 0;
  }
  for (const run of task.runs) printRun(run, output, { failures: true });
  if (task.artifacts.length > 0) printArtifacts(task, output);
  output.out(
    `task ${task.id}: ${task.state}${task.outcome ? `, outcome ${task.outcome}` : ''}${task.error ? ` (${task.error})` : ''}`,
  );
  return 0;
}

export async function logs(
  client: ApiClient,
  taskId: string,
  follow: boolean,
  output: Output,
): Promise<number> {
  if (follow) return exitCodeForOutcome((await followTask(client, taskId, output)).outcome);
  await client.readLogs(taskId, (line) => output.out(formatLogLine(line)), { follow });
  return 0;
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
  filter: { state?: string; plan?: string; limit?: number; cursor?: string },
  output: Output,
): Promise<number> {
  const limit = filter.limit ?? 50;
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

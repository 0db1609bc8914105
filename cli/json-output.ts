import type { Submitted, TaskView } from '../api/schemas.ts';
import type { ApiClient } from './api-client.ts';
import type { WaitOptions } from './commands/run.ts';
import { collectOutputs, writeReports } from './task-outputs.ts';
import { exitCodeForOutcome, exitCodes } from './exit-codes.ts';
import type { Output } from './task-printer.ts';

/**
 * `--json`: one document, as the API answers it (or, for commands of the CLI alone, as cli/json-views.ts
 * declares it), indented so a person can read it too; scripts parse it whole.
 */
export function printJson(value: unknown, output: Output): void {
  output.out(JSON.stringify(value, null, 2));
}

/**
 * `run --json`: the submission as the API answered it; when the task is followed (--wait and the flags that
 * imply it), the ended task instead, with the exit code of its outcome. The log is read, not printed, so
 * stdout stays one document; what --collect, --junit and --result-file write is said on stderr.
 */
export async function printSubmissionJson(
  client: ApiClient,
  submitted: Submitted,
  options: WaitOptions,
  output: Output,
): Promise<number> {
  if (!(options.wait || options.collect || options.junit || options.resultFile)) {
    printJson(submitted, output);
    return exitCodes.success;
  }
  const task = await followQuietly(client, submitted.task_id);
  const toStderr: Output = { out: output.err, err: output.err };
  await writeReports(client, task, options, toStderr);
  await collectOutputs(client, task, options, toStderr);
  printJson(task, output);
  return exitCodeForOutcome(task.outcome);
}

/** Waits for the task's end by reading its log to the `end` line; returns the ended task. */
export async function followQuietly(client: ApiClient, taskId: string): Promise<TaskView> {
  await client.readLogs(taskId, () => {}, { follow: true });
  return client.getTask(taskId);
}

import assert from 'node:assert/strict';
import { taskViewSchema, type TaskView } from '../../api/schemas.ts';
import { runCli, waitFor, type CliResult } from './processes.ts';

/** A task as the API answers it; parsed with the API's own schema, so a test fails on a malformed answer. */
export type TaskJson = TaskView;

export async function taskOf(url: string, id: string): Promise<TaskJson> {
  const response = await fetch(`${url}/api/v1/tasks/${id}`);
  if (!response.ok) throw new ApiStatusError(response.status, await response.text());
  return taskViewSchema.parse(await response.json());
}

/** The API answered with an error status; `status` 503 means Redis is away for now. */
export class ApiStatusError extends Error {
  readonly status: number;
  constructor(status: number, body: string) {
    super(`the API answered ${status}: ${body.slice(0, 500)}`);
    this.status = status;
  }
}

/** The task id `testground run` printed. */
export function taskIdOf(stdout: string): string {
  const id = /\(task (\w+)\)/.exec(stdout)?.[1];
  assert.ok(id, `the CLI printed a task id: ${stdout}`);
  return id;
}

/** Waits until the task is in `state` and returns it. */
export function waitForState(url: string, id: string, state: string, timeoutMs = 60_000): Promise<TaskJson> {
  return waitFor(
    `task ${id} to be ${state}`,
    async () => {
      // 503: Redis is away (an outage test); the daemon answers at once instead of waiting, so ask again.
      const task = await taskOf(url, id).catch((error: unknown) => {
        if (error instanceof ApiStatusError && error.status === 503) return undefined;
        throw error;
      });
      return task?.state === state ? task : undefined;
    },
    timeoutMs,
  );
}

/** `testground --endpoint <url> run single --plan <plan> --testcase <testCase> …args` through the real CLI. */
export function runSingle(
  url: string,
  plan: string,
  testCase: string,
  args: string[],
  onStdout?: (text: string) => void,
): Promise<CliResult> {
  return runCli(
    ['--endpoint', url, 'run', 'single', '--plan', plan, '--testcase', testCase, ...args],
    onStdout ? { onStdout } : {},
  );
}

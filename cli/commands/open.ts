import { spawn } from 'node:child_process';
import { access } from 'node:fs/promises';
import path from 'node:path';
import type { ApiClient } from '../api-client.ts';
import type { Output } from '../task-printer.ts';

/** Finds `command` on PATH, as a shell would; undefined when there is none (a headless server). */
export async function onPath(
  command: string,
  pathVariable = process.env.PATH ?? '',
): Promise<string | undefined> {
  for (const dir of pathVariable.split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, command);
    try {
      await access(candidate, 1);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/**
 * `testground open <task>`: prints the task's dashboard page, and opens it with xdg-open where there is
 * one. The task is looked up first, so a mistyped id fails here rather than on an empty page.
 */
export async function openTask(
  client: ApiClient,
  taskId: string,
  output: Output,
  opener: string | undefined,
): Promise<number> {
  const task = await client.getTask(taskId);
  const url = client.dashboardUrl(task.id);
  output.out(url);
  if (opener) {
    // Detached: the browser outlives the command, and a failing opener does not fail it (the URL is printed).
    const child = spawn(opener, [url], { detached: true, stdio: 'ignore' });
    child.on('error', (error) => output.err(`could not open a browser with ${opener}: ${error.message}`));
    child.unref();
  }
  return 0;
}

import type { ApiClient } from '../api-client.ts';
import { exitCodes } from '../exit-codes.ts';
import { printJson } from '../json-output.ts';
import type { Output } from './run.ts';

/** Prints each check and what `--fix` did; exits non-zero while something is still unhealthy. */
export async function healthcheck(
  client: ApiClient,
  options: { runner: string; fix?: boolean; json?: boolean },
  output: Output,
): Promise<number> {
  const { runner } = options;
  const fix = Boolean(options.fix);
  const report = await client.healthcheck(runner, fix);
  if (options.json) {
    printJson(report, output);
    return report.ok ? exitCodes.success : exitCodes.failure;
  }
  for (const check of report.checks) {
    output.out(`${check.ok ? 'ok  ' : 'FAIL'} ${check.name}: ${check.message}`);
    if (check.fix) output.out(`     fixed: ${check.fix}`);
  }
  output.out(
    `${runner}: ${report.ok ? 'healthy' : `unhealthy${fix ? '' : ' (run again with --fix to repair what can be repaired)'}`}`,
  );
  return report.ok ? exitCodes.success : exitCodes.failure;
}

export async function terminate(client: ApiClient, runner: string, output: Output): Promise<number> {
  const result = await client.terminate(runner);
  output.out(
    `${runner}: canceled ${result.canceled.length} task(s)${result.canceled.length ? ` (${result.canceled.join(', ')})` : ''}`,
  );
  for (const failure of result.failed)
    output.err(`${runner}: could not cancel ${failure.task}: ${failure.reason}`);
  const removed = Object.entries(result.removed).map(([what, count]) => `${count} ${what}`);
  output.out(`${runner}: removed ${removed.length ? removed.join(', ') : 'nothing'}`);
  // Daemons before `not_removed` existed do not send it.
  const notRemoved = result.not_removed ?? [];
  for (const item of notRemoved)
    output.err(`${runner}: could not remove ${item.kind} ${item.name}: ${item.reason}`);
  return result.failed.length === 0 && notRemoved.length === 0 ? exitCodes.success : exitCodes.error;
}

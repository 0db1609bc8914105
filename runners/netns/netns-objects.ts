/**
 * Finding and removing the kernel objects of local:exec's namespace runs, whatever process created them:
 * namespaces, veths and bridges by their names (netns-layout.ts), the processes still inside the
 * namespaces, and the firewall rule that lets the run's bridged traffic through. Used at the end of a
 * run, by a restarted daemon for the runs its predecessor left (`cleanupInterrupted`), and for leftovers.
 */
import { readdir, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import { runHostCommand, runIpBatch } from '../host-command.ts';
import { netnsDir, parseBridgeAlias, shortIdOfLink, shortIdOfNetns } from './netns-layout.ts';
import { findOnPath } from './netns-support.ts';

/** Everything of one short id found on the host. */
export interface NetnsRunObjects {
  shortId: string;
  /** From the data bridge's alias; undefined when the bridge is gone or not ours. */
  owner?: { daemonId: string; runId: string };
  namespaces: string[];
  /** Bridges and the host ends of veths. */
  links: string[];
  /** Whether a FORWARD rule of the run is in the host's firewall. */
  firewallRule: boolean;
}

interface IpLink {
  ifname: string;
  ifalias?: string;
  linkinfo?: { info_kind?: string };
}

/** The comment that marks the FORWARD rule of the bridge `tg<short>`. */
export function firewallComment(shortId: string): string {
  return `testground tg${shortId}`;
}

/** The rule that accepts traffic between the ports of a run's data bridge (see run-network.ts). */
export function firewallRule(shortId: string): string[] {
  const bridge = `tg${shortId}`;
  return [
    'FORWARD',
    '-i',
    bridge,
    '-o',
    bridge,
    '-m',
    'comment',
    '--comment',
    firewallComment(shortId),
    '-j',
    'ACCEPT',
  ];
}

/** Every short id with objects on this host, and what each has. */
export async function listNetnsRuns(): Promise<Map<string, NetnsRunObjects>> {
  const runs = new Map<string, NetnsRunObjects>();
  const entry = (shortId: string): NetnsRunObjects => {
    let found = runs.get(shortId);
    if (!found) {
      found = { shortId, namespaces: [], links: [], firewallRule: false };
      runs.set(shortId, found);
    }
    return found;
  };
  for (const name of await readdir(netnsDir).catch(() => [])) {
    const shortId = shortIdOfNetns(name);
    if (shortId) entry(shortId).namespaces.push(name);
  }
  if (await findOnPath('ip', process.env.PATH ?? '')) {
    const links = JSON.parse((await runHostCommand('ip', ['-j', 'link', 'show'])) || '[]') as IpLink[];
    for (const link of links) {
      const shortId = shortIdOfLink(link.ifname);
      if (!shortId) continue;
      const found = entry(shortId);
      found.links.push(link.ifname);
      if (link.ifname === `tg${shortId}` && link.ifalias) {
        const owner = parseBridgeAlias(link.ifalias);
        if (owner) found.owner = owner;
      }
    }
  }
  for (const shortId of await firewallRuleIds()) entry(shortId).firewallRule = true;
  return runs;
}

/** The short ids of our FORWARD rules in the host's firewall. */
async function firewallRuleIds(): Promise<string[]> {
  if (!(await findOnPath('iptables', process.env.PATH ?? ''))) return [];
  const rules = await runHostCommand('iptables', ['-w', '-S', 'FORWARD']).catch(() => '');
  return [...rules.matchAll(/--comment "?testground tg([0-9a-f]{7})"?/g)].map((match) => match[1]!);
}

/**
 * Removes every object of `shortId`: first the processes still inside its namespaces (an instance's own
 * children outlive it there), then veths, namespaces and bridges, then its firewall rule. Each step runs
 * whatever the previous one left; errors are collected and thrown together at the end.
 */
export async function removeNetnsRun(objects: NetnsRunObjects): Promise<void> {
  const failures: string[] = [];
  try {
    await killProcessesIn(objects.namespaces);
  } catch (error) {
    failures.push(`stopping the processes in its namespaces: ${(error as Error).message}`);
  }
  const bridges = new Set([`tg${objects.shortId}`, `tg${objects.shortId}c`]);
  const lines = [
    // Deleting one end of a veth deletes both; a namespace's own veths would only go once the kernel
    // has finished destroying the namespace, asynchronously.
    ...objects.links.filter((link) => !bridges.has(link)).map((link) => `link del dev ${link}`),
    ...objects.namespaces.map((name) => `netns del ${name}`),
    ...objects.links.filter((link) => bridges.has(link)).map((link) => `link del dev ${link}`),
  ];
  try {
    await runIpBatch(lines, { force: true });
  } catch (error) {
    failures.push((error as Error).message);
  }
  if (objects.firewallRule) {
    // Delete until none is left: a rule added twice (a retried setup) must not survive its run.
    for (let attempt = 0; attempt < 10; attempt += 1) {
      const removed = await runHostCommand('iptables', ['-w', '-D', ...firewallRule(objects.shortId)]).then(
        () => true,
        () => false,
      );
      if (!removed) break;
    }
  }
  if (failures.length > 0) {
    throw new Error(`could not remove all of tg${objects.shortId}: ${failures.join('; ')}`);
  }
}

/** SIGKILLs every process whose network namespace is one of `namespaces` (what `ip netns pids` finds). */
async function killProcessesIn(namespaces: readonly string[]): Promise<number> {
  if (namespaces.length === 0) return 0;
  const inodes = new Set<string>();
  for (const name of namespaces) {
    const info = await stat(path.join(netnsDir, name)).catch(() => undefined);
    if (info) inodes.add(`net:[${info.ino}]`);
  }
  let killed = 0;
  for (const pid of (await readdir('/proc')).filter((name) => /^\d+$/.test(name))) {
    const link = await readlink(`/proc/${pid}/ns/net`).catch(() => '');
    if (!inodes.has(link)) continue;
    try {
      process.kill(Number(pid), 'SIGKILL');
      killed += 1;
    } catch {
      // Already gone.
    }
  }
  return killed;
}

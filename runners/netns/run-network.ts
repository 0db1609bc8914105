/**
 * One run's namespaces on the host: a data bridge and a control bridge, and per instance a network
 * namespace with a veth on each.
 *
 * - The data network (`data0`, the run's `TEST_SUBNET`) is what plans use and the shaper shapes: instances
 *   reach each other there, and the host at the bridge's address (their default route).
 * - The control network (`ctl0`) carries the sync service, which listens on the control bridge's address.
 *   Its bridge ports are isolated from each other, so instances reach the host there and nothing else:
 *   no instance can talk to another around the data network's shaping. Shaping, filters, `deny_all`,
 *   `enable = false` and re-addressing all act on `data0` (and keep the control subnet reachable,
 *   `keepReachable`), so the sync service stays reachable whatever a plan does to its network.
 *
 * A run's addresses come from a /19 of `10.160.0.0/11` (netns-layout.ts). Adding the route of the data
 * subnet claims it: the kernel refuses a second route to the same prefix (EEXIST), so two runs, of
 * this daemon or another, can never take the same block; blocks overlapping any route the host already
 * has are not tried.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { RunnerError } from '../../core/errors.ts';
import type { NetworkTarget } from '../network/network-shaper.ts';
import { HostCommandError, runHostCommand, runIpBatch } from '../host-command.ts';
import {
  bridgeAlias,
  cidrsOverlap,
  controlInterface,
  dataInterface,
  netnsBlockCandidates,
  netnsLayout,
  netnsPrefixLength,
  netnsShortId,
  type NetnsInstanceLayout,
  type NetnsLayout,
} from './netns-layout.ts';
import { firewallRule, listNetnsRuns, removeNetnsRun } from './netns-objects.ts';
import { findOnPath } from './netns-support.ts';

export interface RunNetworkOptions {
  runId: string;
  daemonId: string;
  instanceCount: number;
  /** Where the per-namespace command files are written (the run's temp directory). */
  scratchDir: string;
}

const bridgeNetfilterSwitch = '/proc/sys/net/bridge/bridge-nf-call-iptables';

export class RunNetwork {
  readonly layout: NetnsLayout;

  private constructor(layout: NetnsLayout) {
    this.layout = layout;
  }

  /**
   * Creates the run's bridges, claims its addresses and creates every instance's namespace. On failure
   * whatever was created is removed before the error is thrown.
   */
  static async create(options: RunNetworkOptions): Promise<RunNetwork> {
    const shortId = netnsShortId(options.runId);
    const dataBridge = `tg${shortId}`;
    const controlBridge = `tg${shortId}c`;
    const existing = (await listNetnsRuns()).get(shortId);
    if (existing) {
      // Not ours to remove: a run with the same short id, or leftovers of an earlier run with this id.
      throw new RunnerError(
        `the network objects of tg${shortId} (${[...existing.links, ...existing.namespaces].join(', ') || 'a firewall rule'}) ` +
          `already exist: another run on this host has the same short id, or an earlier run with this id left them; ` +
          `"testground terminate --runner local:exec" removes leftovers`,
      );
    }
    try {
      await runIpBatch([
        `link add ${dataBridge} type bridge`,
        `link add ${controlBridge} type bridge`,
        `link set dev ${dataBridge} alias "${bridgeAlias(options.daemonId, options.runId)}"`,
        `link set dev ${dataBridge} up`,
        `link set dev ${controlBridge} up`,
      ]);
      const block = await claimBlock(options.runId, dataBridge, controlBridge, options.instanceCount);
      const network = new RunNetwork(netnsLayout(options.runId, options.instanceCount, block));
      await network.configure(options.scratchDir);
      return network;
    } catch (error) {
      await removeRunNetwork(options.runId).catch(() => undefined);
      if (error instanceof RunnerError) throw error;
      throw new RunnerError(
        `local:exec could not set up the run's network namespaces: ${(error as Error).message}`,
        [],
        { cause: error },
      );
    }
  }

  /**
   * How the network controller and the shaper reach instance `index`. The sync service listens on the host
   * (the control bridge's address): only its port stays reachable under `deny_all`, not the host.
   */
  target(instance: NetnsInstanceLayout, label: string, syncPort: number): NetworkTarget {
    const { controlGateway, dataGateway, dataSubnet } = this.layout;
    return {
      label,
      namespace: { kind: 'named', name: instance.netns },
      dataInterface,
      dataSubnet,
      keepReachable: [{ subnet: `${controlGateway}/32`, tcpPort: syncPort }],
      hostAddresses: [dataGateway, controlGateway],
    };
  }

  /** Removes the run's namespaces, veths, bridges and firewall rule, and the processes left inside. */
  remove(): Promise<void> {
    return removeRunNetwork(this.layout.runId);
  }

  private async configure(scratchDir: string): Promise<void> {
    const { layout } = this;
    await runIpBatch([
      `addr add ${layout.dataGateway}/${netnsPrefixLength} dev ${layout.dataBridge} noprefixroute`,
      `addr add ${layout.controlGateway}/${netnsPrefixLength} dev ${layout.controlBridge} noprefixroute`,
    ]);
    await allowBridgedTraffic(layout.shortId);
    // Inside a namespace `ip` can only be run by `ip netns exec`, one process per command line: one
    // batch file per namespace keeps that to one process per instance, all forked by the batch below.
    const dir = path.join(scratchDir, 'netns');
    await mkdir(dir, { recursive: true });
    const lines: string[] = [];
    for (const instance of layout.instances) {
      const file = path.join(dir, `${instance.netns}.ip`);
      await writeFile(
        file,
        [
          'link set dev lo up',
          `addr add ${instance.dataAddress}/${netnsPrefixLength} dev ${dataInterface}`,
          `link set dev ${dataInterface} up`,
          `addr add ${instance.controlAddress}/${netnsPrefixLength} dev ${controlInterface}`,
          `link set dev ${controlInterface} up`,
          `route add default via ${layout.dataGateway} dev ${dataInterface}`,
          '',
        ].join('\n'),
      );
      lines.push(
        `netns add ${instance.netns}`,
        `link add ${instance.dataVeth} type veth peer name ${dataInterface} netns ${instance.netns}`,
        `link add ${instance.controlVeth} type veth peer name ${controlInterface} netns ${instance.netns}`,
        `link set dev ${instance.dataVeth} master ${layout.dataBridge} up`,
        `link set dev ${instance.controlVeth} master ${layout.controlBridge} up`,
        `link set dev ${instance.controlVeth} type bridge_slave isolated on`,
        `netns exec ${instance.netns} ip -batch ${file}`,
      );
    }
    await runIpBatch(lines);
  }
}

/** Removes whatever of `runId`'s network is on the host; nothing when there is none. */
export async function removeRunNetwork(runId: string): Promise<void> {
  const objects = (await listNetnsRuns()).get(netnsShortId(runId));
  if (objects) await removeNetnsRun(objects);
}

/**
 * Claims the first free block: its data subnet's route on the data bridge, its control subnet's on the
 * control bridge. Blocks overlapping a route the host has are skipped; a route another run added in
 * the meantime is refused by the kernel, and the next block is tried.
 */
async function claimBlock(
  runId: string,
  dataBridge: string,
  controlBridge: string,
  instanceCount: number,
): Promise<string> {
  const routes = JSON.parse(
    (await runHostCommand('ip', ['-j', '-4', 'route', 'show', 'table', 'all'])) || '[]',
  ) as { dst: string }[];
  const taken = routes.map((route) => route.dst).filter((dst) => dst !== 'default' && dst !== '0.0.0.0/0');
  let tried = 0;
  for (const block of netnsBlockCandidates(runId)) {
    if (taken.some((dst) => cidrsOverlap(dst, block))) continue;
    tried += 1;
    const layout = netnsLayout(runId, instanceCount, block);
    if (!(await addRoute(layout.dataSubnet, dataBridge))) continue;
    if (await addRoute(layout.controlSubnet, controlBridge)) return block;
    await runHostCommand('ip', ['route', 'del', layout.dataSubnet, 'dev', dataBridge]);
  }
  throw new RunnerError(
    `no free /19 for the run's network in 10.160.0.0/11 (${tried} tried, the others overlap the host's routes); ` +
      `end other runs using run_config.network = "netns", or remove leftovers with "testground terminate --runner local:exec"`,
  );
}

/** Adds the route; false when the kernel already has one to that prefix. */
async function addRoute(subnet: string, bridge: string): Promise<boolean> {
  try {
    await runHostCommand('ip', ['route', 'add', subnet, 'dev', bridge]);
    return true;
  } catch (error) {
    if (error instanceof HostCommandError && /File exists/.test(error.stderr)) return false;
    throw error;
  }
}

/**
 * With `br_netfilter` loaded (Docker loads it) frames between a bridge's ports pass the host's iptables
 * FORWARD chain, whose policy Docker sets to DROP: instances could not reach each other. One rule,
 * marked with the run's short id, accepts the data bridge's own traffic. The control bridge needs none:
 * its ports are isolated and talk to the host only.
 */
async function allowBridgedTraffic(shortId: string): Promise<void> {
  const bridgedTrafficFiltered =
    (await readFile(bridgeNetfilterSwitch, 'utf8').catch(() => '0')).trim() === '1';
  if (!(await findOnPath('iptables', process.env.PATH ?? ''))) {
    if (!bridgedTrafficFiltered) return;
    throw new RunnerError(
      `bridged traffic passes the host's firewall here (${bridgeNetfilterSwitch} is 1) and the iptables command is missing, ` +
        'so instances could not reach each other; install iptables, or unload br_netfilter',
    );
  }
  await runHostCommand('iptables', ['-w', '-A', ...firewallRule(shortId)]);
}

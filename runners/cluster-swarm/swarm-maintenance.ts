/**
 * cluster:swarm's housekeeping through the manager: removing a run's services and networks (its
 * containers then go on every node), finding what ended runs and dead daemons left, and the healthcheck
 * (the manager, every node with its availability and resources, the registry).
 */
import { daemonLabel, labelFilter, runIdLabel } from '../../docker/labels.ts';
import type { SwarmClient } from '../../docker/swarm-client.ts';
import { removeNetworkThoroughly } from '../network-removal.ts';
import type { HealthcheckCheck, NotRemoved } from '../runner.ts';

/** How hard a run's overlay network is tried: nodes remove the containers on it in their own time. */
const networkRemoval = { attempts: 8, delayMs: 500 };

type MaintainedSwarm = Pick<
  SwarmClient,
  | 'listServices'
  | 'removeService'
  | 'listNetworks'
  | 'removeNetwork'
  | 'networkEndpoints'
  | 'disconnectNetwork'
  | 'listNodes'
  | 'swarmMembership'
  | 'endpoint'
>;

/** Removes every service, then every network, of `runId`, whichever daemon created them. */
export async function removeSwarmRun(
  swarm: MaintainedSwarm,
  runId: string,
  onNotRemoved?: (item: NotRemoved) => void,
): Promise<{ services: number; networks: number }> {
  const filter = labelFilter({ [runIdLabel]: runId });
  return removeObjects(
    swarm,
    await swarm.listServices(filter),
    await swarm.listNetworks(filter),
    onNotRemoved,
  );
}

interface SwarmLeftovers {
  services: { id: string; name: string }[];
  networks: { id: string; name: string }[];
}

/** This daemon's services and networks of runs not in `activeRunIds`. */
async function findSwarmLeftovers(
  swarm: MaintainedSwarm,
  daemonId: string,
  activeRunIds: ReadonlySet<string>,
): Promise<SwarmLeftovers> {
  const filter = labelFilter({ [daemonLabel]: daemonId, [runIdLabel]: true });
  const stale = (labels: Readonly<Record<string, string>>): boolean =>
    !activeRunIds.has(labels[runIdLabel] ?? '');
  const [services, networks] = await Promise.all([swarm.listServices(filter), swarm.listNetworks(filter)]);
  return {
    services: services.filter((service) => stale(service.labels)),
    networks: networks.filter((network) => stale(network.labels)),
  };
}

/** This daemon's services and networks of runs not in `activeRunIds`, removed. */
export async function removeSwarmLeftovers(
  swarm: MaintainedSwarm,
  daemonId: string,
  activeRunIds: ReadonlySet<string>,
  onNotRemoved?: (item: NotRemoved) => void,
): Promise<{ services: number; networks: number }> {
  const leftovers = await findSwarmLeftovers(swarm, daemonId, activeRunIds);
  return removeObjects(swarm, leftovers.services, leftovers.networks, onNotRemoved);
}

async function removeObjects(
  swarm: MaintainedSwarm,
  services: readonly { id: string; name: string }[],
  networks: readonly { id: string; name: string }[],
  onNotRemoved: ((item: NotRemoved) => void) | undefined,
): Promise<{ services: number; networks: number }> {
  const failures: NotRemoved[] = [];
  const settled = await Promise.allSettled(services.map((service) => swarm.removeService(service.id)));
  settled.forEach((result, index) => {
    if (result.status === 'rejected') {
      failures.push({ kind: 'service', name: services[index]?.name ?? '', reason: String(result.reason) });
    }
  });
  // A network goes once the nodes removed the containers on it, which follows the services' removal.
  const removedNetworks = await Promise.allSettled(
    networks.map((network) => removeNetworkThoroughly(swarm, network.id, networkRemoval)),
  );
  removedNetworks.forEach((result, index) => {
    if (result.status === 'rejected') {
      failures.push({ kind: 'network', name: networks[index]?.name ?? '', reason: String(result.reason) });
    }
  });
  if (failures.length > 0) {
    if (onNotRemoved) failures.forEach(onNotRemoved);
    else {
      throw new Error(
        `cluster:swarm could not remove: ${failures.map((failure) => `${failure.kind} ${failure.name} (${failure.reason})`).join('; ')}`,
      );
    }
  }
  return {
    services: settled.filter((result) => result.status === 'fulfilled').length,
    networks: removedNetworks.filter((result) => result.status === 'fulfilled').length,
  };
}

export interface SwarmHealthcheckOptions {
  swarm: MaintainedSwarm | undefined;
  registry: { address: string; ping(): Promise<void> } | undefined;
  daemonId: string;
  activeRunIds: ReadonlySet<string>;
  /** Remove the leftovers found. */
  fix: boolean;
}

/** The manager, each node, this daemon's leftovers on the swarm, and the registry. */
export async function swarmHealthchecks({
  swarm,
  registry,
  daemonId,
  activeRunIds,
  fix,
}: SwarmHealthcheckOptions): Promise<HealthcheckCheck[]> {
  if (swarm === undefined) {
    return [
      {
        name: 'cluster:swarm manager',
        ok: true,
        message:
          'not configured: set TESTGROUND_SWARM_MANAGER (or run_config.manager) to a swarm manager engine, e.g. unix:///var/run/docker.sock or tcp://10.0.0.1:2375',
      },
    ];
  }
  const checks: HealthcheckCheck[] = [];
  try {
    const membership = await swarm.swarmMembership();
    const ok = membership.state === 'active' && membership.isManager;
    checks.push({
      name: 'cluster:swarm manager',
      ok,
      message: ok
        ? `${swarm.endpoint} is a manager of an active swarm (node ${membership.nodeId})`
        : `${swarm.endpoint} is not a swarm manager (swarm state ${membership.state}, manager ${membership.isManager}); point TESTGROUND_SWARM_MANAGER at a manager node's engine`,
    });
    if (ok) {
      for (const node of await swarm.listNodes()) {
        const usable = node.state === 'ready' && node.availability === 'active';
        checks.push({
          name: `cluster:swarm node ${node.hostname}`,
          ok: usable,
          message: `${node.role}${node.leader ? ' (leader)' : ''} at ${node.address}: ${node.state}, ${node.availability}${node.message ? ` (${node.message})` : ''}; ${node.nanoCpus / 1e9} CPUs, ${Math.round(node.memoryBytes / 2 ** 20)} MiB`,
        });
      }
      checks.push(await checkLeftovers(swarm, daemonId, activeRunIds, fix));
    }
  } catch (error) {
    checks.push({ name: 'cluster:swarm manager', ok: false, message: (error as Error).message });
  }
  if (registry === undefined) {
    checks.push({
      name: 'cluster:swarm registry',
      ok: false,
      message: 'not configured: set TESTGROUND_REGISTRY to the registry (host:port) every node pulls from',
    });
  } else {
    try {
      await registry.ping();
      checks.push({ name: 'cluster:swarm registry', ok: true, message: `${registry.address} answers` });
    } catch (error) {
      checks.push({ name: 'cluster:swarm registry', ok: false, message: (error as Error).message });
    }
  }
  return checks;
}

async function checkLeftovers(
  swarm: MaintainedSwarm,
  daemonId: string,
  activeRunIds: ReadonlySet<string>,
  fix: boolean,
): Promise<HealthcheckCheck> {
  const leftovers = await findSwarmLeftovers(swarm, daemonId, activeRunIds);
  const names = [...leftovers.services, ...leftovers.networks].map((object) => object.name);
  const check: HealthcheckCheck = {
    name: 'cluster:swarm leftovers',
    ok: names.length === 0,
    message:
      names.length === 0
        ? 'no services or networks left by ended runs'
        : `left by ended runs: ${names.join(', ')}`,
  };
  if (names.length > 0 && fix) {
    const removed = await removeObjects(swarm, leftovers.services, leftovers.networks, undefined);
    check.fix = `removed ${removed.services} services and ${removed.networks} networks`;
  }
  return check;
}

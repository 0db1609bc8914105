/**
 * local:docker's housekeeping, apart from its runs: finding and removing what ended runs, crashed daemons
 * and interrupted runtime checks left behind (by label, whatever process created it), and the
 * healthcheck.
 */
import { concurrencyLimit } from '../../core/concurrency-limit.ts';
import type { ContainerEngine, ContainerSummary, NetworkInfo } from '../../docker/container-engine.ts';
import { daemonLabel, labelFilter, roleLabel, runIdLabel } from '../../docker/labels.ts';
import {
  defaultBaseImage,
  runtimeCheckTimeoutMs,
  type RuntimeImageProvider,
} from '../../builders/runtime-image.ts';
import type { HealthcheckCheck, NotRemoved } from '../runner.ts';
import { removeNetworkThoroughly, type NetworkRemovalOptions } from '../network-removal.ts';

export interface LocalDockerMaintenanceOptions {
  engine: ContainerEngine;
  runtime: Pick<RuntimeImageProvider, 'ensure' | 'hostRuntimeTag'>;
  daemonId: string;
  /**
   * A runtime check container older than this is a leftover (its daemon died during the check); a
   * younger one may be a check in progress. Default twice the check's own timeout.
   */
  runtimeCheckMaxAgeMs?: number;
  /** The clock the age is measured by. */
  now?: () => number;
  /** How hard a network with stale endpoints is tried; {@link removeNetworkThoroughly}'s defaults. */
  networkRemoval?: NetworkRemovalOptions;
}

export interface Leftovers {
  containers: ContainerSummary[];
  networks: NetworkInfo[];
}

export class LocalDockerMaintenance {
  private readonly options: LocalDockerMaintenanceOptions;

  constructor(options: LocalDockerMaintenanceOptions) {
    this.options = options;
  }

  /** Removes every container and network of `runId`, whichever daemon created them. */
  async removeRun(runId: string): Promise<{ containers: number; networks: number }> {
    const filter = labelFilter({ [runIdLabel]: runId });
    const { engine } = this.options;
    return this.remove({
      containers: await engine.listContainers(filter, { all: true }),
      networks: await engine.listNetworks(filter),
    });
  }

  /**
   * This daemon's containers and networks of runs not in `activeRunIds` (whatever their role, so objects
   * labelled before a role was renamed are found too), and its runtime check containers that outlived
   * any check.
   */
  async findLeftovers(activeRunIds: ReadonlySet<string>): Promise<Leftovers> {
    const { engine, daemonId } = this.options;
    const ofRuns = labelFilter({ [daemonLabel]: daemonId, [runIdLabel]: true });
    const stale = (labels: Readonly<Record<string, string>>): boolean =>
      !activeRunIds.has(labels[runIdLabel] ?? '');
    const maxAgeMs = this.options.runtimeCheckMaxAgeMs ?? 2 * runtimeCheckTimeoutMs;
    const now = (this.options.now ?? Date.now)();
    const [runContainers, checks, networks] = await Promise.all([
      engine.listContainers(ofRuns, { all: true }),
      engine.listContainers(labelFilter({ [daemonLabel]: daemonId, [roleLabel]: 'runtime-check' }), {
        all: true,
      }),
      engine.listNetworks(ofRuns),
    ]);
    return {
      containers: [
        ...runContainers.filter((container) => stale(container.labels)),
        ...checks.filter((check) => now - check.createdAt.getTime() >= maxAgeMs),
      ],
      networks: networks.filter((network) => stale(network.labels)),
    };
  }

  /** Removes what {@link findLeftovers} finds; returns how many of each it removed. */
  async removeLeftovers(
    activeRunIds: ReadonlySet<string>,
    onNotRemoved?: (item: NotRemoved) => void,
  ): Promise<{ containers: number; networks: number }> {
    return this.remove(await this.findLeftovers(activeRunIds), onNotRemoved);
  }

  async healthcheck(options: {
    fix: boolean;
    activeRunIds: ReadonlySet<string>;
  }): Promise<HealthcheckCheck[]> {
    const { engine } = this.options;
    try {
      const info = await engine.info();
      const checks: HealthcheckCheck[] = [
        {
          name: 'engine',
          ok: true,
          message: `Docker ${info.serverVersion} at ${engine.endpoint} (cgroup ${info.cgroupVersion})`,
        },
      ];
      checks.push(await this.checkRuntimeImage(options.fix));
      checks.push(await this.checkLeftovers(options));
      return checks;
    } catch (error) {
      return [{ name: 'engine', ok: false, message: (error as Error).message }];
    }
  }

  private async checkRuntimeImage(fix: boolean): Promise<HealthcheckCheck> {
    const { engine, runtime } = this.options;
    const candidates = [defaultBaseImage, await runtime.hostRuntimeTag()];
    for (const ref of candidates) {
      if (await engine.imageExists(ref))
        return { name: 'runtime image', ok: true, message: `${ref} is present` };
    }
    const check: HealthcheckCheck = {
      name: 'runtime image',
      ok: false,
      message: `neither ${candidates.join(' nor ')} is present`,
    };
    if (fix) {
      const image = await runtime.ensure({ log: () => undefined });
      check.fix = `built ${image.ref}`;
    }
    return check;
  }

  private async checkLeftovers(options: {
    fix: boolean;
    activeRunIds: ReadonlySet<string>;
  }): Promise<HealthcheckCheck> {
    const leftovers = await this.findLeftovers(options.activeRunIds);
    const names = [...leftovers.containers, ...leftovers.networks].map((object) => object.name);
    const check: HealthcheckCheck = {
      name: 'leftovers',
      ok: names.length === 0,
      message:
        names.length === 0
          ? 'no containers or networks left by ended runs'
          : `left by ended runs: ${names.join(', ')}`,
    };
    if (names.length > 0 && options.fix) {
      const removed = await this.remove(leftovers);
      check.fix = `removed ${removed.containers} containers and ${removed.networks} networks`;
    }
    return check;
  }

  /**
   * Containers first: a network cannot be removed while containers are attached to it. Every object is
   * tried, whatever failed before it; what could not be removed goes to `onNotRemoved`, or is thrown
   * together at the end without it.
   */
  private async remove(
    leftovers: Leftovers,
    onNotRemoved?: (item: NotRemoved) => void,
  ): Promise<{ containers: number; networks: number }> {
    const { engine } = this.options;
    const limit = concurrencyLimit(16);
    const notRemoved: NotRemoved[] = [];
    const reasonOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));
    const removedContainers = await Promise.all(
      leftovers.containers.map((container) =>
        limit(async () => {
          try {
            await engine.removeContainer(container.id, { force: true });
            return 1;
          } catch (error) {
            notRemoved.push({ kind: 'container', name: container.name, reason: reasonOf(error) });
            return 0;
          }
        }),
      ),
    );
    let networks = 0;
    for (const network of leftovers.networks) {
      try {
        await removeNetworkThoroughly(engine, network.id, this.options.networkRemoval);
        networks += 1;
      } catch (error) {
        notRemoved.push({ kind: 'network', name: network.name, reason: reasonOf(error) });
      }
    }
    if (onNotRemoved) for (const item of notRemoved) onNotRemoved(item);
    else if (notRemoved.length > 0)
      throw new Error(
        `could not remove ${notRemoved.map((item) => `${item.kind} ${item.name} (${item.reason})`).join('; ')}`,
      );
    return { containers: removedContainers.reduce((sum: number, n) => sum + n, 0), networks };
  }
}

import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { DockerEngine, Labels } from '../../docker/docker-engine.ts';
import { SubnetInUseError } from '../../docker/docker-engine.ts';
import {
  daemonLabel,
  groupLabel,
  instanceLabel,
  labelFilter,
  planLabel,
  roleLabel,
  runIdLabel,
} from '../../docker/labels.ts';
import { defaultBaseImage, type RuntimeImageProvider } from '../../builders/runtime-image.ts';
import { connectSyncClient, type SyncClient } from '../../sdk/sync-client.ts';
import { concurrencyLimit } from '../../core/concurrency-limit.ts';
import { instanceEnv } from '../instance-env.ts';
import { InstanceOutput } from '../instance-output.ts';
import { decideInstanceOutcome } from '../../core/outcome.ts';
import type { HealthcheckCheck, RunInput, RunOutput, Runner } from '../runner.ts';
import { defaultSubnetPool, gatewayOf, subnetCandidates, type SubnetPool } from './subnet-pool.ts';
import type { SyncServiceBundle } from '../sync-service-bundle.ts';
import { SyncSidecarImage, syncServicePort } from '../sync-sidecar-image.ts';
import type { ResolvedGroup, InstanceResult } from '../../core/run.ts';

/** The name instances reach the sync service by, on the run's network (CONTRACT §2, §3). */
export const syncServiceAlias = 'testground-sync-service';
/** Signalled once per instance when its network is ready; `waitNetworkInitialized` waits for it. */
const networkInitializedState = 'network-initialized';
const sidecarStartTimeoutMs = 30_000;

export interface LocalDockerRunnerOptions {
  engine: DockerEngine;
  runtime: RuntimeImageProvider;
  syncService: SyncServiceBundle;
  daemonId: string;
  logger: Logger;
  subnetPool?: SubnetPool;
  /** Containers created and started at the same time; the engine slows down past a few dozen. */
  startParallelism?: number;
}

interface RunObjects {
  networkName: string;
  subnet: string;
  containers: Set<string>;
}

interface Stop {
  reason: 'timeout' | 'canceled';
}

/**
 * `local:docker`: per run, a private network with a subnet of its own, the sync service in a sidecar
 * container on it (published on 127.0.0.1 for the daemon), and one container per instance. The daemon
 * plays the network sidecar's part: it signals `network-initialized` for each instance once the
 * instance's container is up on the network.
 */
export class LocalDockerRunner implements Runner {
  readonly id = 'local:docker';
  private readonly options: LocalDockerRunnerOptions;
  private readonly sidecarImage: SyncSidecarImage;

  constructor(options: LocalDockerRunnerOptions) {
    this.options = options;
    this.sidecarImage = new SyncSidecarImage(options.engine, options.syncService);
  }

  async run(input: RunInput): Promise<RunOutput> {
    const { engine } = this.options;
    const logger = this.options.logger.child({ runId: input.runId });
    const runtime = await this.options.runtime.ensure({
      log: (line) => input.log.info(line),
      signal: input.signal,
    });
    const sidecarImage = await this.sidecarImage.ensure(runtime, (line) => input.log.info(line));
    const labels: Labels = {
      [runIdLabel]: input.runId,
      [daemonLabel]: this.options.daemonId,
      [planLabel]: input.run.plan,
    };
    const objects: RunObjects = { networkName: `tg-${input.runId}`, subnet: '', containers: new Set() };
    let syncClient: SyncClient | undefined;
    try {
      objects.subnet = await this.createNetwork(objects.networkName, input.runId, labels);
      input.log.info(`local:docker: network ${objects.networkName} with subnet ${objects.subnet}`);
      const sidecarId = await engine.createContainer({
        name: `tg-${input.runId}-sync`,
        image: sidecarImage,
        env: { SYNC_SERVICE_PORT: String(syncServicePort), LOG_LEVEL: 'warn' },
        labels: { ...labels, [roleLabel]: 'sidecar' },
        network: { name: objects.networkName, aliases: [syncServiceAlias] },
        portBindings: [{ containerPort: syncServicePort, hostIp: '127.0.0.1' }],
      });
      objects.containers.add(sidecarId);
      // Through the engine's port proxy, a connection made before the service listens can hang rather
      // than be refused: wait for the service to say it listens before connecting.
      const listening = await this.waitForListening(sidecarId, input.signal);
      await engine.startContainer(sidecarId);
      await listening.ready;
      const published = (await engine.inspectContainer(sidecarId)).hostPorts.find(
        (port) => port.containerPort === syncServicePort,
      );
      if (!published)
        throw new Error(`the sync service sidecar has no published port for ${syncServicePort}`);
      syncClient = await connectSyncClient({
        host: '127.0.0.1',
        port: published.hostPort,
        runId: input.runId,
        plan: input.run.plan,
        testCase: input.run.testCase,
        signal: input.signal,
      });
      input.log.info(
        `local:docker: sync service sidecar ready (${syncServiceAlias}:${syncServicePort}, published on 127.0.0.1:${published.hostPort})`,
      );
      return { instances: await this.runInstances(input, objects, labels, syncClient) };
    } finally {
      await syncClient?.close().catch(() => undefined);
      if (keepContainers(input.run.runConfig)) {
        input.log.info(
          `local:docker: keeping the containers and network ${objects.networkName} (run_config.keep_containers)`,
        );
      } else {
        await this.removeObjects(objects).catch((error: Error) => {
          logger.error({ err: error }, "could not remove the run's containers");
          input.log.warn(
            `local:docker: cleanup failed: ${error.message}; "testground terminate --runner local:docker" removes leftovers`,
          );
        });
      }
    }
  }

  private async runInstances(
    input: RunInput,
    objects: RunObjects,
    labels: Labels,
    syncClient: SyncClient,
  ): Promise<InstanceResult[]> {
    const { engine } = this.options;
    let stop: Stop | undefined;
    const stopAll = (reason: Stop['reason']): void => {
      if (stop) return;
      stop = { reason };
      for (const id of objects.containers) engine.killContainer(id, 'SIGKILL').catch(() => undefined);
    };
    const timer = setTimeout(() => stopAll('timeout'), input.run.timeoutMs);
    const onAbort = (): void => stopAll('canceled');
    input.signal.addEventListener('abort', onAbort, { once: true });
    if (input.signal.aborted) onAbort();

    const limit = concurrencyLimit(this.options.startParallelism ?? 16);
    const instances = input.run.groups.flatMap((group) =>
      Array.from({ length: group.instances }, (_, index) => ({ group, index })),
    );
    try {
      const settled = await Promise.allSettled(
        instances.map(({ group, index }) =>
          this.runInstance({ input, objects, labels, syncClient, group, index, limit, stopped: () => stop }),
        ),
      );
      const failed = settled.find((result): result is PromiseRejectedResult => result.status === 'rejected');
      // An instance that could not even be created is the infrastructure's fault, not the plan's.
      if (failed) throw failed.reason;
      return settled.map((result) => (result as PromiseFulfilledResult<InstanceResult>).value);
    } finally {
      clearTimeout(timer);
      input.signal.removeEventListener('abort', onAbort);
    }
  }

  private async runInstance(context: {
    input: RunInput;
    objects: RunObjects;
    labels: Labels;
    syncClient: SyncClient;
    group: ResolvedGroup;
    index: number;
    limit: ReturnType<typeof concurrencyLimit>;
    stopped: () => Stop | undefined;
  }): Promise<InstanceResult> {
    const { input, objects, group, index } = context;
    const { engine } = this.options;
    const artifact = input.artifacts.get(group.id);
    if (artifact?.kind !== 'image') {
      throw new Error(
        `local:docker needs an image for group ${group.id}, got ${artifact?.kind ?? 'nothing'}; use the docker:node or docker:generic builder`,
      );
    }
    const outputsPath = path.join(input.outputsDir, group.id, String(index));
    const tempPath = path.join(input.tempDir, 'instances', group.id, String(index));
    const scratchDir = path.join(input.tempDir, 'capture', group.id, String(index));
    await Promise.all([outputsPath, tempPath, scratchDir].map((dir) => mkdir(dir, { recursive: true })));
    const output = new InstanceOutput({
      group: group.id,
      index,
      log: input.log,
      dir: outputsPath,
      scratchDir,
    });

    const started = await context.limit(async () => {
      if (context.stopped()) return undefined;
      const id = await engine.createContainer({
        name: `tg-${input.runId}-${group.id}-${index}`,
        image: artifact.imageId,
        env: instanceEnv({
          runId: input.runId,
          run: input.run,
          group,
          outputsPath: '/outputs',
          tempPath: '/temp',
          sidecar: true,
          subnet: objects.subnet,
          syncServiceHost: syncServiceAlias,
          syncServicePort,
          startTime: input.startTime,
        }),
        labels: {
          ...context.labels,
          [roleLabel]: 'instance',
          [groupLabel]: group.id,
          [instanceLabel]: String(index),
        },
        network: { name: objects.networkName },
        mounts: [
          { source: outputsPath, target: '/outputs' },
          { source: tempPath, target: '/temp' },
        ],
        ...(group.resources.memoryBytes ? { memoryBytes: group.resources.memoryBytes } : {}),
        ...(group.resources.cpus ? { nanoCpus: Math.round(group.resources.cpus * 1e9) } : {}),
      });
      objects.containers.add(id);
      const logs = await engine.attachLogs(id, {
        onStdout: (chunk) => output.write('stdout', chunk),
        onStderr: (chunk) => output.write('stderr', chunk),
      });
      // An attachment to a container that never starts never ends by itself.
      if (context.stopped()) {
        logs.close();
        return { id, logs, running: false };
      }
      try {
        await engine.startContainer(id);
      } catch (error) {
        logs.close();
        throw error;
      }
      return { id, logs, running: true };
    });

    let exit = { exitCode: null as number | null, oomKilled: false };
    if (started?.running) {
      // The container is attached to the run's network from its start: its network is ready.
      await context.syncClient.signalEntry(networkInitializedState).catch((error: Error) => {
        input.log.warn(
          `local:docker: could not signal ${networkInitializedState} for ${group.id}[${index}]: ${error.message}`,
        );
      });
      exit = await engine.waitContainer(started.id);
      await started.logs.ended.catch(() => undefined);
    }
    await output.finish();
    const stop = context.stopped();
    const decided = started?.running
      ? decideInstanceOutcome(output.terminal, {
          exitCode: exit.exitCode,
          signal: null,
          oomKilled: exit.oomKilled,
          timedOut: stop?.reason === 'timeout',
          canceled: stop?.reason === 'canceled',
        })
      : {
          outcome: stop?.reason === 'timeout' ? ('timeout' as const) : ('canceled' as const),
          reason: `never started: the run was ${stop?.reason === 'timeout' ? 'timed out' : 'canceled'} first`,
        };
    const reason =
      stop?.reason === 'timeout'
        ? `${decided.reason} (run timeout ${input.run.timeoutMs} ms)`
        : decided.reason;
    input.log.instanceEnd(group.id, index, decided.outcome, reason);
    return {
      group: group.id,
      index,
      outcome: decided.outcome,
      reason,
      exitCode: exit.exitCode,
      signal: null,
    };
  }

  /** Resolves once the sidecar prints that it listens; attach before the start, so the line is not missed. */
  // Returns a wrapper: an async function cannot hand back a bare promise without its caller awaiting it.
  private async waitForListening(sidecarId: string, signal: AbortSignal): Promise<{ ready: Promise<void> }> {
    let output = '';
    let heard: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (heard = resolve));
    const logs = await this.options.engine.attachLogs(sidecarId, {
      onStdout: (chunk) => {
        output += chunk.toString();
        if (output.includes('sync service listening')) heard();
      },
      onStderr: (chunk) => (output += chunk.toString()),
    });
    const waited = (async () => {
      const timeout = new Promise<'timeout'>((resolve) =>
        setTimeout(() => resolve('timeout'), sidecarStartTimeoutMs).unref(),
      );
      const ended = logs.ended.then(() => 'ended' as const);
      const aborted = new Promise<'aborted'>((resolve) =>
        signal.addEventListener('abort', () => resolve('aborted'), { once: true }),
      );
      const outcome = await Promise.race([ready.then(() => 'ready' as const), timeout, ended, aborted]);
      if (outcome === 'ready' || outcome === 'aborted') return;
      logs.close();
      throw new Error(
        outcome === 'timeout'
          ? `the sync service sidecar did not listen within ${sidecarStartTimeoutMs} ms; its output: ${output.trim() || '(none)'}`
          : `the sync service sidecar exited before it listened; its output: ${output.trim() || '(none)'}`,
      );
    })();
    return { ready: waited };
  }

  /** Creates the run's network on the first free subnet of the pool; the engine arbitrates collisions. */
  private async createNetwork(name: string, runId: string, labels: Labels): Promise<string> {
    const pool = this.options.subnetPool ?? defaultSubnetPool;
    for (const subnet of subnetCandidates(pool, runId)) {
      try {
        await this.options.engine.createNetwork({ name, subnet, gateway: gatewayOf(subnet), labels });
        return subnet;
      } catch (error) {
        if (!(error instanceof SubnetInUseError)) throw error;
      }
    }
    throw new Error(
      `no free /${pool.subnetPrefix} subnet left in ${pool.cidr}; remove leftovers with "testground terminate --runner local:docker"`,
    );
  }

  private async removeObjects(objects: RunObjects): Promise<void> {
    const limit = concurrencyLimit(16);
    await Promise.all(
      [...objects.containers].map((id) =>
        limit(() => this.options.engine.removeContainer(id, { force: true })),
      ),
    );
    await this.options.engine.removeNetwork(objects.networkName);
  }

  async cleanupInterrupted(runId: string): Promise<void> {
    await this.removeRuns(labelFilter({ [runIdLabel]: runId }), () => true);
  }

  /**
   * Removes this daemon's containers and networks whose run is not in `activeRunIds`: what crashed
   * daemons and failed cleanups left behind. Returns what it removed.
   */
  async removeLeftovers(activeRunIds: ReadonlySet<string>): Promise<Record<string, number>> {
    return this.removeRuns(
      labelFilter({ [daemonLabel]: this.options.daemonId, [runIdLabel]: true }),
      (runId) => !activeRunIds.has(runId),
    );
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
      const leftovers = await this.listLeftovers(options.activeRunIds);
      const count = leftovers.containers.length + leftovers.networks.length;
      const leftoverCheck: HealthcheckCheck = {
        name: 'leftovers',
        ok: count === 0,
        message:
          count === 0
            ? 'no containers or networks left by ended runs'
            : `left by ended runs: ${[...leftovers.containers, ...leftovers.networks].join(', ')}`,
      };
      if (count > 0 && options.fix) {
        const removed = await this.removeLeftovers(options.activeRunIds);
        leftoverCheck.fix = `removed ${removed.containers} containers and ${removed.networks} networks`;
      }
      checks.push(leftoverCheck);
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

  /** This daemon's containers and networks of runs not in `activeRunIds`, without removing them. */
  async listLeftovers(
    activeRunIds: ReadonlySet<string>,
  ): Promise<{ containers: string[]; networks: string[] }> {
    const filter = labelFilter({ [daemonLabel]: this.options.daemonId, [runIdLabel]: true });
    const stale = (objectLabels: Labels): boolean => !activeRunIds.has(objectLabels[runIdLabel] ?? '');
    const containers = (await this.options.engine.listContainers(filter, { all: true })).filter((c) =>
      stale(c.labels),
    );
    const networks = (await this.options.engine.listNetworks(filter)).filter((n) => stale(n.labels));
    return { containers: containers.map((c) => c.name), networks: networks.map((n) => n.name) };
  }

  private async removeRuns(
    filter: readonly string[],
    shouldRemove: (runId: string) => boolean,
  ): Promise<{ containers: number; networks: number }> {
    const { engine } = this.options;
    const containers = (await engine.listContainers(filter, { all: true })).filter((c) =>
      shouldRemove(c.labels[runIdLabel] ?? ''),
    );
    const limit = concurrencyLimit(16);
    await Promise.all(
      containers.map((container) => limit(() => engine.removeContainer(container.id, { force: true }))),
    );
    const networks = (await engine.listNetworks(filter)).filter((n) =>
      shouldRemove(n.labels[runIdLabel] ?? ''),
    );
    for (const network of networks) await engine.removeNetwork(network.id);
    return { containers: containers.length, networks: networks.length };
  }
}

function keepContainers(runConfig: Record<string, unknown>): boolean {
  const value = runConfig.keep_containers;
  return value === true || value === 'true';
}

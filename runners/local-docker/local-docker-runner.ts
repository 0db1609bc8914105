import { mkdir } from 'node:fs/promises';
import { RunnerError } from '../../core/errors.ts';
import path from 'node:path';
import type { Logger } from 'pino';
import { strictTable } from '../../plan/problems.ts';
import { concurrencyLimit } from '../../core/concurrency-limit.ts';
import type { ResolvedGroup, InstanceResult } from '../../core/run.ts';
import type { ContainerEngine } from '../../docker/container-engine.ts';
import { SubnetInUseError } from '../../docker/engine-errors.ts';
import { createLabels } from '../../docker/labels.ts';
import type { RuntimeImageProvider } from '../../builders/runtime-image.ts';
import { instanceEnv } from '../instance-env.ts';
import { StopTrigger, type InstanceEnding, type StopReason } from '../instance-lifecycle.ts';
import { InstanceOutput } from '../instance-output.ts';
import { concludeCapturedInstance } from '../instance-conclusion.ts';
import { booleanFlagSchema, isFlagSet, runTimeoutSchema } from '../run-config.ts';
import type { HealthcheckCheck, NotRemoved, RunInput, RunOutput, Runner } from '../runner.ts';
import type { SyncServiceBundle } from '../sync-service-bundle.ts';
import { SyncServiceContainer } from '../sync-service-container.ts';
import { SyncServiceImage } from '../sync-service-image.ts';
import { NetworkController } from '../network/network-controller.ts';
import { RunRefusals } from '../network/run-refusals.ts';
import type { NetworkShaper, NetworkTarget } from '../network/network-shaper.ts';
import { findDataInterface } from './data-interface.ts';
import { clampToHost } from './host-resource-clamp.ts';
import { assignHostnames } from './instance-hostnames.ts';
import { LocalDockerMaintenance } from './local-docker-maintenance.ts';
import { removeNetworkThoroughly } from '../network-removal.ts';
import {
  defaultControlSubnetPool,
  defaultSubnetPool,
  gatewayOf,
  subnetCandidates,
  type SubnetPool,
} from './subnet-pool.ts';
import type { Role } from '../../docker/labels.ts';

/** The `run_config` keys local:docker understands. */
export const localDockerConfigSchema = strictTable({
  timeout: runTimeoutSchema.optional(),
  keep_containers: booleanFlagSchema
    .optional()
    .describe(
      "Keep the run's containers and network after it ends, to inspect them; remove them later with `testground terminate --runner local:docker`. Default false",
    ),
});

export interface LocalDockerRunnerOptions {
  engine: ContainerEngine;
  /** Bytes of each instance's stdout and stderr kept on disk (runners/instance-output.ts has the default). */
  outputQuotaBytes?: number;
  runtime: Pick<RuntimeImageProvider, 'ensure' | 'hostRuntimeTag'>;
  syncService: Pick<SyncServiceBundle, 'path'>;
  daemonId: string;
  logger: Logger;
  /**
   * Applies the network configurations plans publish (through the run's {@link NetworkController}).
   * Absent: every configuration is refused, saying this daemon cannot shape traffic.
   */
  networkShaper?: NetworkShaper;
  /** Where data networks (TEST_SUBNET) come from; default {@link defaultSubnetPool}. */
  subnetPool?: SubnetPool;
  /** Where control networks (the sync service's) come from; default {@link defaultControlSubnetPool}. */
  controlSubnetPool?: SubnetPool;
  /** Containers created and started at the same time; the engine slows down past a few dozen. */
  startParallelism?: number;
  /** How long the sync service container gets to say it listens; default 30 000 ms. */
  syncServiceStartTimeoutMs?: number;
}

interface RunObjects {
  /** The data network: TEST_SUBNET, the one plans shape. */
  networkName: string;
  subnet: string;
  /** The control network: the sync service, and each instance's way to it. */
  controlNetworkName: string;
  controlSubnet: string;
  /**
   * The sync service's address on the control network: all of it an instance keeps whatever its network
   * configuration (not the whole control subnet, whose gateway is the host: deny_all would not hold).
   */
  syncAddress: string;
  /** Known once the engine created it; the run's stop spares it (the stopping instances still use it). */
  syncContainerId: string | undefined;
  containers: Set<string>;
  /** Each group's resources as the host can give them. */
  resources: Map<string, ResolvedGroup['resources']>;
}

/**
 * `local:docker`: per run, two networks with subnets of their own: the data network (TEST_SUBNET, the one
 * plans shape) and the control network (the sync service, published on 127.0.0.1 for the daemon). Each
 * instance is a container on both, with a hostname of its own; the sync service is on the control network
 * only, so shaping or cutting the data network never cuts an instance off from it. The daemon plays the
 * network sidecar's part: it signals `network-initialized` for each instance once its container is up,
 * and its {@link NetworkController} applies the configurations instances publish.
 */
export class LocalDockerRunner implements Runner {
  readonly accepts = 'image';
  readonly id = 'local:docker';
  readonly configSchema = localDockerConfigSchema;
  private readonly options: LocalDockerRunnerOptions;
  private readonly syncServiceImage: SyncServiceImage;
  private readonly maintenance: LocalDockerMaintenance;

  constructor(options: LocalDockerRunnerOptions) {
    this.options = options;
    this.syncServiceImage = new SyncServiceImage(options.engine, options.syncService, options.daemonId);
    this.maintenance = new LocalDockerMaintenance(options);
  }

  async run(input: RunInput): Promise<RunOutput> {
    const { engine } = this.options;
    const logger = this.options.logger.child({ runId: input.runId });
    const runtime = await this.options.runtime.ensure({
      log: (line) => input.log.info(line),
      signal: input.signal,
    });
    const syncImage = await this.syncServiceImage.ensure(runtime, (line) =>
      input.log.info(`local:docker: ${line}`),
    );
    const objects: RunObjects = {
      networkName: `tg-${input.runId}`,
      subnet: '',
      controlNetworkName: `tg-${input.runId}-control`,
      controlSubnet: '',
      syncAddress: '',
      syncContainerId: undefined,
      containers: new Set(),
      resources: new Map(),
    };
    let syncReady: Promise<SyncServiceContainer> | undefined;
    try {
      // The engine creates the two networks, and answers the host's resources, independently.
      const [subnet, controlSubnet, info] = await settleAll([
        this.createNetwork(objects.networkName, 'network', input),
        this.createNetwork(objects.controlNetworkName, 'control-network', input),
        engine.info(),
      ]);
      objects.subnet = subnet;
      objects.controlSubnet = controlSubnet;
      objects.resources = clampToHost(input.run.groups, info, input.log, this.id);
      input.log.info(
        `local:docker: network ${objects.networkName} with subnet ${objects.subnet} (the data network, TEST_SUBNET); control network ${objects.controlNetworkName} with subnet ${objects.controlSubnet} (the sync service)`,
      );
      // Instances reach the service by its alias and port, known before it exists: their containers are
      // created while it starts, and started once it listens (runInstance).
      syncReady = this.startSyncService(input, objects, syncImage);
      return { instances: await this.runInstances(input, objects, syncReady) };
    } finally {
      await syncReady?.then(
        (sync) => sync.close().catch(() => undefined),
        () => undefined,
      );
      if (isFlagSet(input.run.runConfig.keep_containers)) {
        input.log.info(
          `local:docker: keeping the containers and networks ${objects.networkName}, ${objects.controlNetworkName} (run_config.keep_containers)`,
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

  /** Starts the run's sync service on the control network and says where it is, once it listens. */
  private async startSyncService(
    input: RunInput,
    objects: RunObjects,
    image: string,
  ): Promise<SyncServiceContainer> {
    const sync = await SyncServiceContainer.start({
      engine: this.options.engine,
      image,
      runId: input.runId,
      daemonId: this.options.daemonId,
      plan: input.run.plan,
      testCase: input.run.testCase,
      networkName: objects.controlNetworkName,
      onCreated: (id) => {
        objects.syncContainerId = id;
        objects.containers.add(id);
      },
      signal: input.signal,
      ...(this.options.syncServiceStartTimeoutMs === undefined
        ? {}
        : { startTimeoutMs: this.options.syncServiceStartTimeoutMs }),
    });
    try {
      objects.syncAddress = await this.syncAddress(sync.containerId, objects.controlNetworkName);
    } catch (error) {
      await sync.close().catch(() => undefined);
      throw error;
    }
    input.log.info(
      `local:docker: sync service ready (${sync.host}:${sync.port}, published on 127.0.0.1:${sync.publishedPort}) at ${objects.syncAddress}, which no network configuration cuts off`,
    );
    input.progress?.syncServiceAt({ host: '127.0.0.1', port: sync.publishedPort });
    return sync;
  }

  private async runInstances(
    input: RunInput,
    objects: RunObjects,
    syncReady: Promise<SyncServiceContainer>,
  ): Promise<InstanceResult[]> {
    const { engine } = this.options;
    // The sync service stays up until the cleanup: the controller and the stopping instances still use it.
    const killAll = (): void => {
      for (const id of objects.containers) {
        if (id !== objects.syncContainerId) engine.killContainer(id, 'SIGKILL').catch(() => undefined);
      }
    };
    // An instance the engine would not create or start fails the run: the others, waiting for it at a
    // barrier, are stopped now rather than at the run timeout.
    const infrastructureFailed = new AbortController();
    // One trigger for the whole run: every instance shares the run's deadline and its cancel.
    const stop = new StopTrigger({
      timeoutMs: input.run.timeoutMs,
      signal: AbortSignal.any([input.signal, infrastructureFailed.signal]),
      stop: killAll,
    });
    // A refused network configuration ends the run at once (docs/network-emulation.md): the others
    // would wait for the refused instance's callback until the run timeout.
    const refusals = new RunRefusals({ runner: this.id, log: input.log, stopRun: killAll });
    let controller: NetworkController | undefined;
    const ready = syncReady.then((sync) => {
      controller = new NetworkController({
        sync: sync.client,
        shaper: this.options.networkShaper,
        log: input.log,
      });
      return { sync, controller };
    });
    // A service that does not start stops the instances created meanwhile; its error is the run's.
    ready.catch(() => infrastructureFailed.abort());
    const limit = concurrencyLimit(this.options.startParallelism ?? 16);
    const instances = input.run.groups.flatMap((group) =>
      Array.from({ length: group.instances }, (_, index) => ({ group, index })),
    );
    const hostnames = assignHostnames(instances.map(({ group, index }) => ({ group: group.id, index })));
    try {
      const settled = await Promise.allSettled(
        instances.map(({ group, index }, ordinal) =>
          this.runInstance({
            input,
            objects,
            ready,
            refusals,
            group,
            index,
            hostname: hostnames[ordinal] ?? `${group.id}-${index}`,
            limit,
            stopped: () => stop.reason,
            // An output that cannot be written stops the run now: its instance ends in a RunnerError (concludeCapturedInstance).
            onOutputFailure: () => infrastructureFailed.abort(),
          }).catch((error: unknown) => {
            infrastructureFailed.abort();
            throw error;
          }),
        ),
      );
      await ready;
      const failed = settled.find((result): result is PromiseRejectedResult => result.status === 'rejected');
      // An instance that could not even be created is the infrastructure's fault, not the plan's.
      if (failed) throw failed.reason;
      return settled.map((result) => (result as PromiseFulfilledResult<InstanceResult>).value);
    } finally {
      stop.dispose();
      await controller?.close();
    }
  }

  private async runInstance(context: {
    input: RunInput;
    objects: RunObjects;
    ready: Promise<{ sync: SyncServiceContainer; controller: NetworkController }>;
    refusals: RunRefusals;
    group: ResolvedGroup;
    index: number;
    hostname: string;
    limit: ReturnType<typeof concurrencyLimit>;
    stopped: () => StopReason | undefined;
    onOutputFailure: () => void;
  }): Promise<InstanceResult> {
    const { input, objects, refusals, group, index, hostname } = context;
    const label = `${group.id}[${index}]`;
    const { engine } = this.options;
    const artifact = input.artifacts.get(group.id);
    if (artifact?.kind !== 'image') {
      throw new RunnerError(
        `local:docker needs an image for group ${group.id}, got ${artifact?.kind ?? 'nothing'}; use the docker:node or docker:generic builder`,
      );
    }
    const resources = objects.resources.get(group.id) ?? group.resources;
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
      ...(this.options.outputQuotaBytes === undefined ? {} : { quotaBytes: this.options.outputQuotaBytes }),
      onFailure: () => context.onOutputFailure(),
    });

    const started = await context.limit(async () => {
      if (context.stopped() || refusals.first) return undefined;
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
          syncServiceHost: SyncServiceContainer.host,
          syncServicePort: SyncServiceContainer.port,
          startTime: input.startTime,
        }),
        labels: createLabels({
          runId: input.runId,
          daemonId: this.options.daemonId,
          plan: input.run.plan,
          role: 'instance',
          group: group.id,
          instance: index,
        }),
        hostname,
        // Peers find each other by hostname on the data network.
        network: { name: objects.networkName, aliases: [hostname] },
        mounts: [
          { source: outputsPath, target: '/outputs' },
          { source: tempPath, target: '/temp' },
        ],
        ...(resources.memoryBytes ? { memoryBytes: resources.memoryBytes } : {}),
        ...(resources.cpus ? { nanoCpus: Math.round(resources.cpus * 1e9) } : {}),
      });
      objects.containers.add(id);
      output.mark('created');
      await engine.connectNetwork(objects.controlNetworkName, id);
      const logs = await engine.attachLogs(id, {
        onStdout: (chunk) => output.write('stdout', chunk),
        onStderr: (chunk) => output.write('stderr', chunk),
      });
      // An attachment to a container that never starts never ends by itself.
      let ready: Awaited<typeof context.ready>;
      try {
        ready = await context.ready;
      } catch (error) {
        logs.close();
        throw error;
      }
      if (context.stopped() || refusals.first) {
        logs.close();
        return { id, logs, running: false, ...ready };
      }
      try {
        await engine.startContainer(id);
      } catch (error) {
        logs.close();
        throw error;
      }
      return { id, logs, running: true, ...ready };
    });

    let ending: InstanceEnding = { kind: 'never-started' };
    let endedBeforeRefusal = false;
    let endedAt: Date | undefined;
    if (started?.running) {
      const { sync, controller } = started;
      controller.serve({
        label,
        hostname,
        target: () => this.networkTarget(started.id, label, objects),
        running: async () => (await engine.inspectContainer(started.id)).running,
        // One line: no backpressure to wait for.
        onRefused: refusals.onRefused((chunk) => void output.write('stderr', chunk)),
      });
      // The container is attached to the run's networks from its start: its network is ready.
      await sync.signalNetworkInitialized().then(
        () => output.mark('network-initialized'),
        (error: Error) => {
          input.log.warn(`local:docker: could not signal network-initialized for ${label}: ${error.message}`);
        },
      );
      const exit = await engine.waitContainer(started.id);
      endedAt = new Date();
      endedBeforeRefusal = refusals.first === undefined;
      await controller.release(hostname);
      await started.logs.ended.catch(() => undefined);
      ending = { kind: 'exited', exitCode: exit.exitCode, signal: null, oomKilled: exit.oomKilled };
    }
    if (started && !isFlagSet(input.run.runConfig.keep_containers)) {
      // Removed as soon as it is done, as the engine removes the rest at the end anyway: the work spreads
      // over the run instead of adding to its end (a 500-instance run's removals take tens of seconds).
      await engine.removeContainer(started.id, { force: true }).then(
        () => objects.containers.delete(started.id),
        // Left in the set: the run's cleanup tries again and reports it.
        () => undefined,
      );
    }
    return concludeCapturedInstance({
      group: group.id,
      index,
      label,
      output,
      ending,
      stopped: context.stopped(),
      endedBeforeRefusal,
      refusals,
      timeoutMs: input.run.timeoutMs,
      log: input.log,
      endedAt,
    });
  }

  /** Where the controller shapes an instance: its container's namespace, and its interface on the data network. */
  private async networkTarget(
    containerId: string,
    label: string,
    objects: RunObjects,
  ): Promise<NetworkTarget> {
    const { pid } = await this.options.engine.inspectContainer(containerId);
    return {
      label,
      namespace: { kind: 'pid', pid },
      dataInterface: await findDataInterface(pid, objects.subnet),
      dataSubnet: objects.subnet,
      keepReachable: [{ subnet: `${objects.syncAddress}/32` }],
      hostAddresses: [gatewayOf(objects.subnet), gatewayOf(objects.controlSubnet)],
    };
  }

  private async syncAddress(containerId: string, controlNetworkName: string): Promise<string> {
    const address = (await this.options.engine.inspectContainer(containerId)).ipAddresses[controlNetworkName];
    if (address === undefined) {
      throw new RunnerError(
        `the sync service container ${containerId} has no address on the control network ${controlNetworkName}; the engine did not attach it`,
      );
    }
    return address;
  }

  /** Creates one of the run's networks on the first free subnet of its pool; the engine arbitrates collisions. */
  private async createNetwork(
    name: string,
    role: Extract<Role, 'network' | 'control-network'>,
    input: RunInput,
  ): Promise<string> {
    const pool =
      role === 'network'
        ? (this.options.subnetPool ?? defaultSubnetPool)
        : (this.options.controlSubnetPool ?? defaultControlSubnetPool);
    const labels = createLabels({
      runId: input.runId,
      daemonId: this.options.daemonId,
      plan: input.run.plan,
      role,
    });
    for (const subnet of subnetCandidates(pool, input.runId)) {
      try {
        await this.options.engine.createNetwork({ name, subnet, gateway: gatewayOf(subnet), labels });
        return subnet;
      } catch (error) {
        if (!(error instanceof SubnetInUseError)) throw error;
      }
    }
    throw new RunnerError(
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
    // Both at once, and one that stays does not keep the other.
    await settleAll([
      removeNetworkThoroughly(this.options.engine, objects.networkName),
      removeNetworkThoroughly(this.options.engine, objects.controlNetworkName),
    ]);
  }

  async cleanupInterrupted(runId: string): Promise<void> {
    await this.maintenance.removeRun(runId);
  }

  /**
   * Removes this daemon's containers and networks whose run is not in `activeRunIds` (what crashed
   * daemons and failed cleanups left behind), and its interrupted runtime checks. Returns what it removed.
   */
  async removeLeftovers(
    activeRunIds: ReadonlySet<string>,
    onNotRemoved?: (item: NotRemoved) => void,
  ): Promise<Record<string, number>> {
    return this.maintenance.removeLeftovers(activeRunIds, onNotRemoved);
  }

  healthcheck(options: { fix: boolean; activeRunIds: ReadonlySet<string> }): Promise<HealthcheckCheck[]> {
    return this.maintenance.healthcheck(options);
  }
}

/**
 * Like `Promise.all`, but settles every promise before it throws the first failure, so nothing a cleanup
 * must know about (a network created beside a failed one) is still being made when it runs.
 */
async function settleAll<T extends readonly Promise<unknown>[]>(
  promises: readonly [...T],
): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((result) => (result as PromiseFulfilledResult<unknown>).value) as {
    -readonly [K in keyof T]: Awaited<T[K]>;
  };
}

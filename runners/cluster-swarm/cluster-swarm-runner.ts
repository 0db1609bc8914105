import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import { concurrencyLimit } from '../../core/concurrency-limit.ts';
import { RunnerError, ValidationError } from '../../core/errors.ts';
import type { InstanceResult, ResolvedGroup } from '../../core/run.ts';
import { strictTable } from '../../plan/problems.ts';
import type { ImageClient } from '../../docker/container-engine.ts';
import { SubnetInUseError } from '../../docker/engine-errors.ts';
import { createLabels, type Role } from '../../docker/labels.ts';
import type { SwarmClient } from '../../docker/swarm-client.ts';
import type { RuntimeImageProvider } from '../../builders/runtime-image.ts';
import { instanceEnv } from '../instance-env.ts';
import { StopTrigger, type InstanceEnding, type StopReason } from '../instance-lifecycle.ts';
import { defaultOutputQuotaBytes, InstanceOutput } from '../instance-output.ts';
import { concludeCapturedInstance } from '../instance-conclusion.ts';
import { assignHostnames } from '../local-docker/instance-hostnames.ts';
import {
  defaultControlSubnetPool,
  defaultSubnetPool,
  gatewayOf,
  subnetCandidates,
  type SubnetPool,
} from '../local-docker/subnet-pool.ts';
import { NetworkController } from '../network/network-controller.ts';
import { RunRefusals } from '../network/run-refusals.ts';
import { runTimeoutSchema } from '../run-config.ts';
import type { HealthcheckCheck, NotRemoved, RunInput, RunOutput, Runner } from '../runner.ts';
import type { SyncServiceBundle } from '../sync-service-bundle.ts';
import { SyncServiceImage } from '../sync-service-image.ts';
import { ImageDistribution, type RegistryPort } from './image-distribution.ts';
import { collectOutputs } from './outputs-collector.ts';
import { ServiceOutputCapture } from './service-output-capture.ts';
import { removeSwarmLeftovers, removeSwarmRun, swarmHealthchecks } from './swarm-maintenance.ts';
import { SwarmSyncService } from './swarm-sync-service.ts';
import { TaskWatcher } from './task-watcher.ts';

const constraintPattern = /^[A-Za-z0-9_.-]+\s*(==|!=)\s*\S+$/;

/** The `run_config` keys cluster:swarm understands. */
export const clusterSwarmConfigSchema = strictTable({
  timeout: runTimeoutSchema.optional(),
  manager: z
    .string()
    .regex(/^(unix|tcp):\/\/\S+$/, { error: 'expected unix:///path/to/docker.sock or tcp://host:port' })
    .optional()
    .describe(
      "The Docker engine of a swarm manager node, unix:///… or tcp://host:port; default the daemon's TESTGROUND_SWARM_MANAGER",
    ),
  docker_endpoint: z
    .string()
    .regex(/^(unix|tcp):\/\/\S+$/, { error: 'expected unix:///path/to/docker.sock or tcp://host:port' })
    .optional()
    .describe("The original Testground's name for `manager`, kept so its compositions run unchanged"),
  registry: z
    .string()
    .regex(/^[A-Za-z0-9.-]+(:\d+)?$/, { error: 'expected host:port, like 10.0.0.1:5000' })
    .optional()
    .describe(
      "The registry (host:port) every node pulls plan images from; default the daemon's TESTGROUND_REGISTRY",
    ),
  placement: z
    .array(
      z.string().regex(constraintPattern, {
        error: (issue) =>
          `${JSON.stringify(issue.input)} is not a placement constraint; write it as swarm does, like "node.labels.zone==a" or "node.role!=manager"`,
      }),
    )
    .optional()
    .describe(
      'Placement constraints every instance must satisfy, as swarm writes them: ["node.labels.zone==a"]',
    ),
  spread: z
    .string()
    .regex(/^node\.(id|hostname|labels\.[A-Za-z0-9_.-]+)$/, {
      error: 'expected node.id, node.hostname or a node label like "node.labels.zone"',
    })
    .optional()
    .describe(
      'Spread instances evenly over the values of node.id, node.hostname or a node label ("node.labels.zone"): instance k is pinned to the k-th value in turn. Without it, swarm puts each instance on the node running the fewest tasks',
    ),
});

type ClusterSwarmConfig = z.infer<typeof clusterSwarmConfigSchema>;

export interface ClusterSwarmRunnerOptions {
  /** The daemon's own engine: it builds the runtime and sync service images and pushes them. */
  engine: ImageClient;
  runtime: Pick<RuntimeImageProvider, 'ensure'>;
  syncService: Pick<SyncServiceBundle, 'path'>;
  daemonId: string;
  logger: Logger;
  /** The manager's engine when `run_config.manager` names none (TESTGROUND_SWARM_MANAGER). */
  manager?: string;
  /** The registry when `run_config.registry` names none (TESTGROUND_REGISTRY). */
  registry?: string;
  /** A client for a manager's engine endpoint. */
  connect: (endpoint: string) => SwarmClient;
  /** A client for a registry address. */
  connectRegistry: (address: string) => RegistryPort & { ping(): Promise<void> };
  /** Bytes of each instance's stdout and stderr kept, and of its outputs; default 256 MiB. */
  outputQuotaBytes?: number;
  /** Services created at the same time; default 8. */
  createParallelism?: number;
  subnetPool?: SubnetPool;
  controlSubnetPool?: SubnetPool;
  /** Time between two lists of the run's tasks; default 500 ms. */
  pollIntervalMs?: number;
  /** How long a task may stay unplaceable before the run ends as error; default 10 000 ms. */
  unschedulableGraceMs?: number;
}

interface RunContext {
  input: RunInput;
  swarm: SwarmClient;
  watcher: TaskWatcher;
  /** Every service of the run, for the cleanup. */
  services: Set<string>;
  networkName: string;
  controlNetworkName: string;
  subnet: string;
  /** Each group's image as the nodes pull it. */
  images: Map<string, string>;
  /** The nodes that ran instances: where outputs are collected. */
  nodesUsed: Map<string, string>;
}

/** Where a run's manager is written down, so that a restarted daemon cleans up the right cluster. */
const managerFile = 'cluster-swarm-manager';

/**
 * `cluster:swarm`: a run's instances as services of a Docker Swarm, placed over its nodes by the swarm's
 * scheduler. Per run: two attachable overlay networks (data = TEST_SUBNET, control = the sync service),
 * the sync service as a service published in host mode on its node (the daemon connects there from
 * outside the cluster), and one service per instance (one replica, never restarted), so that each
 * instance keeps its own group index, hostname, environment, output stream and fate, as with the local
 * runners; a group's replicas would be interchangeable copies, which instances are not. Images reach the
 * nodes through a registry by digest ({@link ImageDistribution}); outputs come back through the manager
 * ({@link collectOutputs}); the daemon watches every task with one list per tick ({@link TaskWatcher}).
 *
 * Traffic shaping needs the network controller on the node an instance runs on, which this runner does
 * not deploy yet: a plan that configures its network ends as `failure` saying so.
 */
export class ClusterSwarmRunner implements Runner {
  readonly id = 'cluster:swarm';
  readonly accepts = 'image';
  readonly configSchema = clusterSwarmConfigSchema;
  private readonly options: ClusterSwarmRunnerOptions;
  private readonly syncServiceImage: SyncServiceImage;
  private readonly distributions = new Map<string, ImageDistribution>();

  constructor(options: ClusterSwarmRunnerOptions) {
    this.options = options;
    this.syncServiceImage = new SyncServiceImage(options.engine, options.syncService, options.daemonId);
  }

  async run(input: RunInput): Promise<RunOutput> {
    const config = input.run.runConfig as ClusterSwarmConfig;
    const manager = config.manager ?? config.docker_endpoint ?? this.options.manager;
    const registry = config.registry ?? this.options.registry;
    if (manager === undefined) {
      throw new ValidationError(
        'cluster:swarm needs a swarm manager: set TESTGROUND_SWARM_MANAGER on the daemon or run_config.manager (unix:///var/run/docker.sock, tcp://host:2375)',
      );
    }
    if (registry === undefined) {
      throw new ValidationError(
        'cluster:swarm needs a registry every node pulls from: set TESTGROUND_REGISTRY on the daemon or run_config.registry (host:port)',
      );
    }
    await writeFile(path.join(input.tempDir, managerFile), manager);
    const swarm = this.options.connect(manager);
    await this.checkManager(swarm);
    input.log.info(`cluster:swarm: manager ${manager}, registry ${registry}`);
    const images = await this.distributeImages(input, registry);
    const context: RunContext = {
      input,
      swarm,
      watcher: new TaskWatcher({
        swarm,
        ...(this.options.pollIntervalMs === undefined ? {} : { intervalMs: this.options.pollIntervalMs }),
        ...(this.options.unschedulableGraceMs === undefined
          ? {}
          : { unschedulableGraceMs: this.options.unschedulableGraceMs }),
      }),
      services: new Set(),
      networkName: `tg-${input.runId}`,
      controlNetworkName: `tg-${input.runId}-control`,
      subnet: '',
      images: images.groups,
      nodesUsed: new Map(),
    };
    let sync: SwarmSyncService | undefined;
    try {
      context.subnet = await this.createNetwork(context, context.networkName, 'network');
      const controlSubnet = await this.createNetwork(context, context.controlNetworkName, 'control-network');
      input.log.info(
        `cluster:swarm: overlay network ${context.networkName} with subnet ${context.subnet} (the data network, TEST_SUBNET); control network ${context.controlNetworkName} with subnet ${controlSubnet} (the sync service)`,
      );
      sync = await SwarmSyncService.start({
        swarm,
        watcher: context.watcher,
        image: images.syncService,
        runId: input.runId,
        daemonId: this.options.daemonId,
        plan: input.run.plan,
        testCase: input.run.testCase,
        networkName: context.controlNetworkName,
        onCreated: (id) => context.services.add(id),
        signal: input.signal,
      });
      input.log.info(`cluster:swarm: sync service ready at ${sync.address}`);
      input.progress?.syncServiceAt(sync.reachAt);
      const instances = await this.runInstances(context, sync);
      await this.collect(context, images.syncService);
      return { instances };
    } finally {
      context.watcher.close();
      await sync?.close().catch(() => undefined);
      await removeSwarmRun(swarm, input.runId, (item) =>
        input.log.warn(
          `cluster:swarm: could not remove ${item.kind} ${item.name}: ${item.reason}; "testground terminate --runner cluster:swarm" removes leftovers`,
        ),
      ).catch((error: Error) => {
        this.options.logger.error({ err: error, runId: input.runId }, "could not remove the run's services");
        input.log.warn(`cluster:swarm: cleanup failed: ${error.message}`);
      });
    }
  }

  private async checkManager(swarm: SwarmClient): Promise<void> {
    const membership = await swarm.swarmMembership();
    if (membership.state !== 'active' || !membership.isManager) {
      throw new RunnerError(
        `${swarm.endpoint} is not a manager of an active swarm (swarm state ${membership.state}, manager ${membership.isManager}); point TESTGROUND_SWARM_MANAGER or run_config.manager at a manager node's engine`,
      );
    }
  }

  private async distributeImages(
    input: RunInput,
    registry: string,
  ): Promise<{ groups: Map<string, string>; syncService: string }> {
    const distribution = this.distribution(registry);
    const log = (line: string): void => input.log.info(`cluster:swarm: ${line}`);
    const runtime = await this.options.runtime.ensure({
      log: (line) => input.log.info(line),
      signal: input.signal,
    });
    const syncImage = await this.syncServiceImage.ensure(runtime, log);
    const groups = new Map<string, string>();
    for (const group of input.run.groups) {
      const artifact = input.artifacts.get(group.id);
      if (artifact?.kind !== 'image') {
        throw new RunnerError(
          `cluster:swarm needs an image for group ${group.id}, got ${artifact?.kind ?? 'nothing'}; use the docker:node or docker:generic builder`,
        );
      }
      groups.set(group.id, await distribution.distribute(artifact.imageId, input.run.plan, log));
    }
    return { groups, syncService: await distribution.distribute(syncImage, 'sync-service', log) };
  }

  private distribution(registry: string): ImageDistribution {
    let distribution = this.distributions.get(registry);
    if (distribution === undefined) {
      distribution = new ImageDistribution({
        engine: this.options.engine,
        registry: this.options.connectRegistry(registry),
      });
      this.distributions.set(registry, distribution);
    }
    return distribution;
  }

  /** Creates one of the run's overlay networks on the first free subnet of its pool. */
  private async createNetwork(
    context: RunContext,
    name: string,
    role: Extract<Role, 'network' | 'control-network'>,
  ): Promise<string> {
    const { input, swarm } = context;
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
        await swarm.createNetwork({
          name,
          subnet,
          gateway: gatewayOf(subnet),
          labels,
          driver: 'overlay',
          attachable: true,
        });
        return subnet;
      } catch (error) {
        if (!(error instanceof SubnetInUseError)) throw error;
      }
    }
    throw new RunnerError(
      `no free /${pool.subnetPrefix} subnet left in ${pool.cidr} on the swarm; remove leftovers with "testground terminate --runner cluster:swarm"`,
    );
  }

  private async runInstances(context: RunContext, sync: SwarmSyncService): Promise<InstanceResult[]> {
    const { input, swarm } = context;
    const instanceServices = new Set<string>();
    const stopAll = (): void => {
      for (const id of instanceServices) {
        context.watcher.stopping(id);
        swarm.scaleService(id, 0).catch(() => undefined);
      }
    };
    // An instance swarm cannot place or the daemon cannot follow fails the run: stop the others now.
    const infrastructureFailed = new AbortController();
    const stop = new StopTrigger({
      timeoutMs: input.run.timeoutMs,
      signal: AbortSignal.any([input.signal, infrastructureFailed.signal]),
      stop: stopAll,
    });
    const refusals = new RunRefusals({ runner: this.id, log: input.log, stopRun: stopAll });
    const controller = new NetworkController({
      sync: sync.client,
      shaper: undefined,
      noShaperReason:
        'cluster:swarm does not shape traffic yet: that needs the network controller on each node (see docs/cluster-k8s.md for the per-node design); run the plan on local:docker to shape its network',
      log: input.log,
    });
    const limit = concurrencyLimit(this.options.createParallelism ?? 8);
    const instances = input.run.groups.flatMap((group) =>
      Array.from({ length: group.instances }, (_, index) => ({ group, index })),
    );
    const hostnames = assignHostnames(instances.map(({ group, index }) => ({ group: group.id, index })));
    const spread = await this.spreadConstraints(context);
    try {
      const settled = await Promise.allSettled(
        instances.map(({ group, index }, ordinal) =>
          this.runInstance({
            context,
            sync,
            controller,
            refusals,
            group,
            index,
            hostname: hostnames[ordinal] ?? `${group.id}-${index}`,
            ...(spread.length > 0 ? { pinnedTo: spread[ordinal % spread.length] } : {}),
            limit,
            stopped: () => stop.reason,
            onService: (id) => instanceServices.add(id),
            onOutputFailure: () => infrastructureFailed.abort(),
          }).catch((error: unknown) => {
            infrastructureFailed.abort();
            throw error;
          }),
        ),
      );
      const failed = settled.find((result): result is PromiseRejectedResult => result.status === 'rejected');
      if (failed) throw failed.reason;
      return settled.map((result) => (result as PromiseFulfilledResult<InstanceResult>).value);
    } finally {
      stop.dispose();
      await controller.close();
    }
  }

  private async runInstance(instance: {
    context: RunContext;
    sync: SwarmSyncService;
    controller: NetworkController;
    refusals: RunRefusals;
    group: ResolvedGroup;
    index: number;
    hostname: string;
    /** A constraint of `run_config.spread` pinning it to one value. */
    pinnedTo?: string | undefined;
    limit: ReturnType<typeof concurrencyLimit>;
    stopped: () => StopReason | undefined;
    onService: (id: string) => void;
    onOutputFailure: () => void;
  }): Promise<InstanceResult> {
    const { context, sync, controller, refusals, group, index, hostname } = instance;
    const { input, swarm, watcher } = context;
    const label = `${group.id}[${index}]`;
    const outputsPath = path.join(input.outputsDir, group.id, String(index));
    const scratchDir = path.join(input.tempDir, 'capture', group.id, String(index));
    await Promise.all([outputsPath, scratchDir].map((dir) => mkdir(dir, { recursive: true })));
    const output = new InstanceOutput({
      group: group.id,
      index,
      log: input.log,
      dir: outputsPath,
      scratchDir,
      quotaBytes: this.options.outputQuotaBytes ?? defaultOutputQuotaBytes,
      onFailure: () => instance.onOutputFailure(),
    });
    const created = await instance.limit(async () => {
      if (instance.stopped() || refusals.first) return undefined;
      const serviceId = await swarm.createService(
        this.instanceSpec(context, sync, { group, index, hostname, pinnedTo: instance.pinnedTo }),
      );
      context.services.add(serviceId);
      output.mark('created');
      instance.onService(serviceId);
      // The stop may have come while the service was being created: it missed this one.
      if (instance.stopped() || refusals.first) {
        watcher.stopping(serviceId);
        await swarm.scaleService(serviceId, 0);
      }
      const capture = await ServiceOutputCapture.follow({
        swarm,
        serviceId,
        write: (stream, chunk) => output.write(stream, chunk),
      });
      return { serviceId, capture };
    });

    let ending: InstanceEnding = { kind: 'never-started' };
    let endedBeforeRefusal = false;
    let endedAt: Date | undefined;
    if (created) {
      const { serviceId, capture } = created;
      const first = await watcher.until(serviceId, (fate) => fate.kind !== 'waiting');
      if (first.kind === 'unschedulable') {
        capture.close();
        throw new RunnerError(`instance ${label} cannot be placed on any node of the swarm: ${first.reason}`);
      }
      if (first.kind === 'running') {
        this.noteNode(context, serviceId);
        controller.serve({
          label,
          hostname,
          target: () => Promise.reject(new Error('cluster:swarm does not shape traffic')),
          onRefused: refusals.onRefused((chunk) => void output.write('stderr', chunk)),
        });
        await sync.signalNetworkInitialized().then(
          () => output.mark('network-initialized'),
          (error: Error) => {
            input.log.warn(
              `cluster:swarm: could not signal network-initialized for ${label}: ${error.message}`,
            );
          },
        );
      }
      const last =
        first.kind === 'ended' ? first : await watcher.until(serviceId, (fate) => fate.kind === 'ended');
      endedAt = new Date();
      this.noteNode(context, serviceId);
      endedBeforeRefusal = refusals.first === undefined;
      await controller.release(hostname);
      const unread = await capture.complete();
      if (unread !== undefined && last.kind === 'ended' && last.ending.kind !== 'lost') {
        input.log.warn(`cluster:swarm: ${label}: its last output could not be read again: ${unread}`);
      }
      if (last.kind === 'ended') ending = last.ending;
    }
    return concludeCapturedInstance({
      group: group.id,
      index,
      label,
      output,
      ending,
      stopped: instance.stopped(),
      endedBeforeRefusal,
      refusals,
      timeoutMs: input.run.timeoutMs,
      log: input.log,
      endedAt,
    });
  }

  private instanceSpec(
    context: RunContext,
    sync: SwarmSyncService,
    {
      group,
      index,
      hostname,
      pinnedTo,
    }: { group: ResolvedGroup; index: number; hostname: string; pinnedTo: string | undefined },
  ): Parameters<SwarmClient['createService']>[0] {
    const { input } = context;
    const config = input.run.runConfig as ClusterSwarmConfig;
    const labels = createLabels({
      runId: input.runId,
      daemonId: this.options.daemonId,
      plan: input.run.plan,
      role: 'instance',
      group: group.id,
      instance: index,
    });
    const image = context.images.get(group.id);
    if (image === undefined) throw new RunnerError(`no image was distributed for group ${group.id}`);
    return {
      name: `tg-${input.runId}-${group.id}-${index}`,
      image,
      labels,
      containerLabels: labels,
      env: instanceEnv({
        runId: input.runId,
        run: input.run,
        group,
        outputsPath: '/outputs',
        tempPath: '/temp',
        sidecar: true,
        subnet: context.subnet,
        syncServiceHost: sync.host,
        syncServicePort: sync.port,
        startTime: input.startTime,
      }),
      hostname,
      networks: [{ name: context.networkName, aliases: [hostname] }, { name: context.controlNetworkName }],
      // Anonymous volumes: they go with the container, after the outputs dump has read them.
      mounts: [
        { type: 'volume', target: '/outputs' },
        { type: 'volume', target: '/temp' },
      ],
      ...(group.resources.memoryBytes ? { memoryBytes: group.resources.memoryBytes } : {}),
      ...(group.resources.cpus ? { nanoCpus: Math.round(group.resources.cpus * 1e9) } : {}),
      constraints: [...(config.placement ?? []), ...(pinnedTo === undefined ? [] : [pinnedTo])],
    };
  }

  /**
   * `run_config.spread` as one constraint per value (`node.labels.zone==a`, …), taken in turn by the
   * instances. Swarm's own spread preference applies among the tasks of one service, and each instance
   * is a service of its own: the runner deals them out itself.
   */
  private async spreadConstraints(context: RunContext): Promise<string[]> {
    const key = (context.input.run.runConfig as ClusterSwarmConfig).spread;
    if (key === undefined) return [];
    const nodes = (await context.swarm.listNodes()).filter(
      (node) => node.state === 'ready' && node.availability === 'active',
    );
    const valueOf = (node: (typeof nodes)[number]): string | undefined =>
      key === 'node.id'
        ? node.id
        : key === 'node.hostname'
          ? node.hostname
          : node.labels[key.slice('node.labels.'.length)];
    const values = [...new Set(nodes.map(valueOf).filter((value) => value !== undefined))].sort();
    if (values.length === 0) {
      throw new RunnerError(
        `run_config.spread = ${JSON.stringify(key)}: no ready node has a value for it; label nodes with "docker node update --label-add"`,
      );
    }
    context.input.log.info(`cluster:swarm: spreading instances over ${key} = ${values.join(', ')}`);
    return values.map((value) => `${key}==${value}`);
  }

  private noteNode(context: RunContext, serviceId: string): void {
    const task = context.watcher.task(serviceId);
    if (!task?.nodeId || !task.containerId) return;
    context.nodesUsed.set(task.nodeId, context.watcher.node(task.nodeId)?.hostname ?? task.nodeId);
  }

  private async collect(context: RunContext, image: string): Promise<void> {
    const nodes = new Map<string, string>();
    for (const [nodeId, hostname] of context.nodesUsed) {
      const node = context.watcher.node(nodeId);
      if (node !== undefined && node.state !== 'ready') {
        context.input.log.warn(
          `cluster:swarm: the outputs of the instances on node ${hostname} are lost: the node is ${node.state}`,
        );
      } else nodes.set(nodeId, hostname);
    }
    if (nodes.size === 0) return;
    await collectOutputs({
      swarm: context.swarm,
      watcher: context.watcher,
      runId: context.input.runId,
      daemonId: this.options.daemonId,
      plan: context.input.run.plan,
      image,
      nodes,
      groups: context.input.run.groups,
      outputsDir: context.input.outputsDir,
      quotaBytes: this.options.outputQuotaBytes ?? defaultOutputQuotaBytes,
      log: context.input.log,
      onCreated: (id) => context.services.add(id),
      signal: context.input.signal,
    });
  }

  async cleanupInterrupted(runId: string, tempDir: string): Promise<void> {
    const recorded = await readFile(path.join(tempDir, managerFile), 'utf8').catch(() => undefined);
    const manager = recorded?.trim() || this.options.manager;
    if (manager === undefined) return;
    await removeSwarmRun(this.options.connect(manager), runId);
  }

  async removeLeftovers(
    activeRunIds: ReadonlySet<string>,
    onNotRemoved?: (item: NotRemoved) => void,
  ): Promise<Record<string, number>> {
    if (this.options.manager === undefined) return {};
    return removeSwarmLeftovers(
      this.options.connect(this.options.manager),
      this.options.daemonId,
      activeRunIds,
      onNotRemoved,
    );
  }

  healthcheck(options: { fix: boolean; activeRunIds: ReadonlySet<string> }): Promise<HealthcheckCheck[]> {
    const { manager, registry, daemonId } = this.options;
    return swarmHealthchecks({
      swarm: manager === undefined ? undefined : this.options.connect(manager),
      registry: registry === undefined ? undefined : this.options.connectRegistry(registry),
      daemonId,
      ...options,
    });
  }
}

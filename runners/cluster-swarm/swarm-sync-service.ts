/**
 * A run's sync service as a swarm service: on the run's control network under the well-known alias
 * (CONTRACT §2, §3), its port published in host mode on the node it lands on, where the daemon connects
 * to it from outside the swarm. Like local:docker's container, the daemon's connection signals
 * `network-initialized` for each instance and carries the network controller's reads.
 */
import { defaultSyncServiceHost, defaultSyncServicePort } from '../../core/contract/instance-env.ts';
import { networkInitializedState, syncServiceListeningLine } from '../../core/contract/well-known.ts';
import { RunnerError } from '../../core/errors.ts';
import { createLabels } from '../../docker/labels.ts';
import type { SwarmClient } from '../../docker/swarm-client.ts';
import { LogLineError, waitForLogLine } from '../../docker/wait-for-log-line.ts';
import { connectSyncClient, type SyncClient } from '../../sdk/sync-client.ts';
import type { TaskWatcher } from './task-watcher.ts';

export interface SwarmSyncServiceOptions {
  swarm: Pick<SwarmClient, 'createService' | 'serviceLogs'>;
  watcher: Pick<TaskWatcher, 'until' | 'task' | 'node'>;
  /** The sync service image as the nodes pull it (`registry/repo@sha256:…`). */
  image: string;
  runId: string;
  daemonId: string;
  plan: string;
  testCase: string;
  /** The run's control network. */
  networkName: string;
  /** Called with the service's id as soon as it exists, so that the run's cleanup removes it. */
  onCreated: (serviceId: string) => void;
  signal: AbortSignal;
  /** How long the service gets to be placed, pulled, started and to say it listens; default 120 000 ms. */
  startTimeoutMs?: number;
}

export class SwarmSyncService {
  readonly host = defaultSyncServiceHost;
  readonly port = defaultSyncServicePort;
  /** Where the daemon reaches it: the address and host-mode port of the node it runs on. */
  readonly address: string;
  /** The same as a host and port, for the daemon's status reads. */
  readonly reachAt: { host: string; port: number };
  readonly client: Pick<SyncClient, 'signalEntry' | 'subscribe'>;
  private readonly connection: SyncClient;

  private constructor(reachAt: { host: string; port: number }, hostname: string, client: SyncClient) {
    this.reachAt = reachAt;
    this.address = `${reachAt.host}:${reachAt.port} (node ${hostname})`;
    this.client = client;
    this.connection = client;
  }

  static async start(options: SwarmSyncServiceOptions): Promise<SwarmSyncService> {
    const { swarm, watcher } = options;
    const name = `tg-${options.runId}-sync`;
    const timeoutMs = options.startTimeoutMs ?? 120_000;
    const deadline = Date.now() + timeoutMs;
    const labels = createLabels({
      runId: options.runId,
      daemonId: options.daemonId,
      plan: options.plan,
      role: 'sync-service',
    });
    const serviceId = await swarm.createService({
      name,
      image: options.image,
      labels,
      containerLabels: labels,
      env: {
        SYNC_SERVICE_HOST: '0.0.0.0',
        SYNC_SERVICE_PORT: String(defaultSyncServicePort),
        LOG_LEVEL: 'warn',
      },
      networks: [{ name: options.networkName, aliases: [defaultSyncServiceHost] }],
      publishPort: defaultSyncServicePort,
    });
    options.onCreated(serviceId);
    const fate = await withDeadline(
      watcher.until(serviceId, (candidate) => candidate.kind !== 'waiting'),
      deadline,
      options.signal,
      () => `the sync service ${name} did not start within ${timeoutMs} ms (its image pull included)`,
    );
    if (fate.kind !== 'running') {
      const why =
        fate.kind === 'unschedulable'
          ? `swarm cannot place it: ${fate.reason}`
          : fate.kind === 'ended'
            ? describeEnding(fate.ending)
            : 'it did not start';
      throw new RunnerError(`the sync service ${name} did not start: ${why}`);
    }
    const task = watcher.task(serviceId);
    const node = task ? watcher.node(task.nodeId) : undefined;
    const published = task?.publishedPorts.find((port) => port.target === defaultSyncServicePort);
    if (!task || !node || !published) {
      throw new RunnerError(
        `the sync service ${name} runs, but swarm reports no node address or published port for it (task ${task?.id ?? 'none'})`,
      );
    }
    const listening = await waitForLogLine(
      { attachLogs: (id, handlers) => swarm.serviceLogs(id, { ...handlers, follow: true }) },
      serviceId,
      syncServiceListeningLine('0.0.0.0', defaultSyncServicePort),
      Math.max(1_000, deadline - Date.now()),
      options.signal,
    );
    try {
      await listening.line;
    } catch (error) {
      if (!(error instanceof LogLineError)) throw error;
      throw new RunnerError(
        `the sync service ${name} on ${node.hostname} did not listen: ${error.message}`,
        [],
        {
          cause: error,
        },
      );
    }
    const client = await connectSyncClient({
      host: node.address,
      port: published.published,
      runId: options.runId,
      plan: options.plan,
      testCase: options.testCase,
      signal: options.signal,
    });
    return new SwarmSyncService({ host: node.address, port: published.published }, node.hostname, client);
  }

  /** Tells the run's instances that one more instance's network is ready (CONTRACT §3). */
  async signalNetworkInitialized(): Promise<void> {
    await this.connection.signalEntry(networkInitializedState);
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}

function describeEnding(ending: { kind: string; reason?: string; exitCode?: number | null }): string {
  if (ending.reason !== undefined) return ending.reason;
  if (ending.exitCode !== undefined) return `it exited with code ${ending.exitCode ?? 'unknown'}`;
  return ending.kind;
}

/** `promise`, or a RunnerError saying `message()` when the deadline passes first, or the abort. */
export async function withDeadline<T>(
  promise: Promise<T>,
  deadline: number,
  signal: AbortSignal,
  message: () => string,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new RunnerError(message())), Math.max(0, deadline - Date.now()));
        onAbort = () => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
        signal.addEventListener('abort', onAbort, { once: true });
        if (signal.aborted) onAbort();
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}

/**
 * A run's sync service as a container: on the run's control network under the well-known alias
 * (CONTRACT §2, §3), published on 127.0.0.1 for the daemon, which connects to it and plays the network
 * side's part: it signals `network-initialized` once per instance, and its network controller reads the
 * instances' configurations through the same connection ({@link SyncServiceContainer.client}). Used by
 * local:docker; a cluster runner that starts the service its own way still needs the same client and signals.
 */
import { defaultSyncServiceHost, defaultSyncServicePort } from '../core/contract/instance-env.ts';
import { RunnerError } from '../core/errors.ts';
import { networkInitializedState, syncServiceListeningLine } from '../core/contract/well-known.ts';
import type { ContainerClient } from '../docker/container-engine.ts';
import { createLabels } from '../docker/labels.ts';
import { LogLineError, waitForLogLine } from '../docker/wait-for-log-line.ts';
import { connectSyncClient, type SyncClient } from '../sdk/sync-client.ts';

/** The address the service listens on inside its container: every interface, so the alias reaches it. */
const listenHost = '0.0.0.0';

export interface SyncServiceContainerOptions {
  engine: ContainerClient;
  /** The sync service image (`SyncServiceImage.ensure`). */
  image: string;
  runId: string;
  daemonId: string;
  plan: string;
  testCase: string;
  /**
   * The run's control network: instances reach the service there, and shaping or cutting their data
   * network never cuts them off it.
   */
  networkName: string;
  /**
   * Called with the container's id as soon as it exists, so that the run's cleanup removes it (or
   * `keep_containers` keeps it) even when the service then fails to start.
   */
  onCreated: (containerId: string) => void;
  signal: AbortSignal;
  /** How long the service gets to say it listens; default 30 000 ms. */
  startTimeoutMs?: number;
}

/** A started sync service container and the daemon's connection to it. Close the connection with {@link close}. */
export class SyncServiceContainer {
  /**
   * The name instances reach the service by on the run's network (`SYNC_SERVICE_HOST`): known before the
   * container exists, so instances can be created while it starts.
   */
  static readonly host = defaultSyncServiceHost;
  /** The port instances reach it on (`SYNC_SERVICE_PORT`). */
  static readonly port = defaultSyncServicePort;
  readonly host = SyncServiceContainer.host;
  readonly port = SyncServiceContainer.port;
  readonly containerId: string;
  /** Where the daemon reaches it: 127.0.0.1 and this port. */
  readonly publishedPort: number;
  /** The daemon's connection, scoped to the run (plan, case): what the network controller reads and signals with. */
  readonly client: Pick<SyncClient, 'signalEntry' | 'subscribe'>;
  private readonly connection: SyncClient;

  private constructor(containerId: string, publishedPort: number, client: SyncClient) {
    this.containerId = containerId;
    this.publishedPort = publishedPort;
    this.client = client;
    this.connection = client;
  }

  /** Creates and starts the container, waits until the service listens, and connects to it. */
  static async start(options: SyncServiceContainerOptions): Promise<SyncServiceContainer> {
    const { engine } = options;
    const name = `tg-${options.runId}-sync`;
    const timeoutMs = options.startTimeoutMs ?? 30_000;
    const id = await engine.createContainer({
      name,
      image: options.image,
      env: {
        SYNC_SERVICE_HOST: listenHost,
        SYNC_SERVICE_PORT: String(defaultSyncServicePort),
        LOG_LEVEL: 'warn',
      },
      labels: createLabels({
        runId: options.runId,
        daemonId: options.daemonId,
        plan: options.plan,
        role: 'sync-service',
      }),
      network: { name: options.networkName, aliases: [defaultSyncServiceHost] },
      portBindings: [{ containerPort: defaultSyncServicePort, hostIp: '127.0.0.1' }],
    });
    options.onCreated(id);
    // Through the engine's port proxy, a connection made before the service listens can hang rather
    // than be refused: wait for the service to say it listens before connecting.
    const listening = await waitForLogLine(
      engine,
      id,
      syncServiceListeningLine(listenHost, defaultSyncServicePort),
      timeoutMs,
      options.signal,
    );
    try {
      await engine.startContainer(id);
    } catch (error) {
      listening.close();
      throw error;
    }
    try {
      await listening.line;
    } catch (error) {
      if (!(error instanceof LogLineError)) throw error;
      const output = error.output.trim().slice(-4_000) || '(none)';
      throw new RunnerError(
        error.reason === 'exited'
          ? `the sync service container ${name} exited before it listened; its output: ${output}`
          : `the sync service container ${name} did not listen within ${timeoutMs} ms; its output: ${output}`,
        [],
        { cause: error },
      );
    }
    const published = (await engine.inspectContainer(id)).hostPorts.find(
      (port) => port.containerPort === defaultSyncServicePort,
    );
    if (!published) {
      throw new RunnerError(
        `the sync service container ${name} has no published port for ${defaultSyncServicePort}`,
      );
    }
    const client = await connectSyncClient({
      host: '127.0.0.1',
      port: published.hostPort,
      runId: options.runId,
      plan: options.plan,
      testCase: options.testCase,
      signal: options.signal,
    });
    return new SyncServiceContainer(id, published.hostPort, client);
  }

  /** Tells the run's instances that one more instance's network is ready (CONTRACT §3). */
  async signalNetworkInitialized(): Promise<void> {
    await this.connection.signalEntry(networkInitializedState);
  }

  /** Closes the daemon's connection; the container itself goes with the run's other containers. */
  async close(): Promise<void> {
    await this.connection.close();
  }
}

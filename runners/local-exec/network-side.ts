/**
 * The network side of a local:exec run in namespaces (CONTRACT §3): the daemon connects to the run's sync
 * service, and for each instance started it serves the instance's `network:<hostname>` topic with the
 * {@link NetworkController} (which applies configurations in the instance's namespace through the shaper)
 * and signals `network-initialized`, since its namespace is up by then. A refused configuration ends the
 * run as local:docker's does ({@link RunRefusals}).
 */
import { networkInitializedState } from '../../core/contract/well-known.ts';
import type { TaskLog } from '../../core/task-log.ts';
import { connectSyncClient, type SyncClient } from '../../sdk/sync-client.ts';
import type { NetnsInstanceLayout } from '../netns/netns-layout.ts';
import type { RunNetwork } from '../netns/run-network.ts';
import { NetworkController } from '../network/network-controller.ts';
import type { NetworkShaper } from '../network/network-shaper.ts';
import { RunRefusals } from '../network/run-refusals.ts';

export interface NetworkSideOptions {
  network: RunNetwork;
  shaper: NetworkShaper;
  /** Where the run's sync service listens (the control bridge's address). */
  syncService: { host: string; port: number };
  runId: string;
  plan: string;
  testCase: string;
  log: TaskLog;
  signal: AbortSignal;
  /** Stops every instance of the run: a configuration was refused. */
  stopRun: () => void;
}

/** One started instance, as the network side serves it. */
export interface ServedInstance {
  netns: NetnsInstanceLayout;
  /** Names it in messages: `peers[3]`. */
  label: string;
  /** Whether its process still runs (an instance that exited by itself is not failed for a refusal). */
  running: () => boolean;
  /** Its stderr, where a refusal is written. */
  writeStderr: (chunk: Buffer) => void;
}

export class NetworkSide {
  /** The run's refusals: whether to start an instance at all, and the failure each instance ends with. */
  readonly refusals: RunRefusals;
  private readonly options: NetworkSideOptions;
  private readonly syncClient: SyncClient;
  private readonly controller: NetworkController;

  private constructor(options: NetworkSideOptions, syncClient: SyncClient) {
    this.options = options;
    this.syncClient = syncClient;
    this.refusals = new RunRefusals({ runner: 'local:exec', log: options.log, stopRun: options.stopRun });
    this.controller = new NetworkController({ sync: syncClient, shaper: options.shaper, log: options.log });
  }

  static async start(options: NetworkSideOptions): Promise<NetworkSide> {
    const syncClient = await connectSyncClient({
      host: options.syncService.host,
      port: options.syncService.port,
      runId: options.runId,
      plan: options.plan,
      testCase: options.testCase,
      signal: options.signal,
    });
    return new NetworkSide(options, syncClient);
  }

  /**
   * Serves the instance's topic, from its first item, and signals `network-initialized` for it; false when
   * the signal could not be given (said in the log).
   */
  async serve(instance: ServedInstance): Promise<boolean> {
    const { network, log } = this.options;
    this.controller.serve({
      label: instance.label,
      hostname: instance.netns.hostname,
      target: () =>
        Promise.resolve(network.target(instance.netns, instance.label, this.options.syncService.port)),
      running: () => Promise.resolve(instance.running()),
      onRefused: this.refusals.onRefused(instance.writeStderr),
    });
    return this.syncClient.signalEntry(networkInitializedState).then(
      () => true,
      (error: Error) => {
        log.warn(`local:exec: could not signal network-initialized for ${instance.label}: ${error.message}`);
        return false;
      },
    );
  }

  /** Stops serving an instance that ended, and releases what the shaper started for it. */
  release(instance: Pick<ServedInstance, 'netns'>): Promise<void> {
    return this.controller.release(instance.netns.hostname);
  }

  /** Stops the controller and closes the connection; each step runs whatever the other did. */
  async close(): Promise<void> {
    try {
      await this.controller.close();
    } finally {
      await this.syncClient.close();
    }
  }
}

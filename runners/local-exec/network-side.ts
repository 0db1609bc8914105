/**
 * The network side of a local:exec run in namespaces (CONTRACT §3): the daemon connects to the run's sync
 * service, starts the network controller on every instance's topic, and signals `network-initialized`
 * once per instance, since every namespace is up by then.
 */
import { networkInitializedState } from '../../core/contract/well-known.ts';
import type { TaskLog } from '../../core/task-log.ts';
import { connectSyncClient } from '../../sdk/sync-client.ts';
import type { RunNetwork } from '../netns/run-network.ts';
import type { LocalExecNetworking, RunningNetworkController } from './network-controller-port.ts';

export interface NetworkSideOptions {
  network: RunNetwork;
  networking: LocalExecNetworking;
  /** Where the run's sync service listens (the control bridge's address). */
  syncService: { host: string; port: number };
  runId: string;
  plan: string;
  testCase: string;
  /** The instances in the order of the network's layout, each with the label messages name it by. */
  labels: readonly string[];
  log: TaskLog;
  signal: AbortSignal;
}

export interface NetworkSide {
  /** Stops the controller and closes the connection; each step runs whatever the other did. */
  close(): Promise<void>;
}

export async function startNetworkSide(options: NetworkSideOptions): Promise<NetworkSide> {
  const { network, networking } = options;
  const syncClient = await connectSyncClient({
    host: options.syncService.host,
    port: options.syncService.port,
    runId: options.runId,
    plan: options.plan,
    testCase: options.testCase,
    signal: options.signal,
  });
  let controller: RunningNetworkController | undefined;
  try {
    controller = await networking.startController({
      syncClient,
      instances: network.layout.instances.map((instance) => ({
        hostname: instance.hostname,
        target: network.target(instance, options.labels[instance.index] ?? instance.hostname),
      })),
      shaper: networking.shaper,
      log: options.log,
      signal: options.signal,
    });
    await Promise.all(network.layout.instances.map(() => syncClient.signalEntry(networkInitializedState)));
  } catch (error) {
    await controller?.close().catch(() => undefined);
    await syncClient.close().catch(() => undefined);
    throw error;
  }
  const running = controller;
  return {
    close: async () => {
      try {
        await running.close();
      } finally {
        await syncClient.close();
      }
    },
  };
}

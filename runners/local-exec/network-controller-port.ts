/**
 * What local:exec needs of the network controller (runners/network/): for the length of a run, listen on
 * each instance's `network:<hostname>` topic, apply each configuration inside the instance's namespace
 * through the shaper, and signal the configuration's callback state. Declared here, next to its consumer,
 * so that the runner depends on this narrow port and a test can stand in for the controller.
 */
import type { TaskLog } from '../../core/task-log.ts';
import type { SyncClient } from '../../sdk/sync-client.ts';
import type { NetworkShaper, NetworkTarget } from '../network/network-shaper.ts';

export interface ControlledInstance {
  /** The instance's hostname: it publishes its configurations on `network:<hostname>`. */
  hostname: string;
  target: NetworkTarget;
}

export interface NetworkControllerOptions {
  /** The daemon's connection to the run's sync service. */
  syncClient: SyncClient;
  instances: readonly ControlledInstance[];
  shaper: NetworkShaper;
  log: TaskLog;
  /** Aborted when the run is canceled. */
  signal: AbortSignal;
}

export interface RunningNetworkController {
  /** Stops listening and releases what the shaper started for the instances; safe to call twice. */
  close(): Promise<void>;
}

export type StartNetworkController = (options: NetworkControllerOptions) => Promise<RunningNetworkController>;

/** How local:exec shapes its namespaces: the shaper, and the controller that drives it. */
export interface LocalExecNetworking {
  shaper: NetworkShaper;
  startController: StartNetworkController;
}

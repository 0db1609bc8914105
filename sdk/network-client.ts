/**
 * The instance's view of its network: waits until the network side (docker and cluster runners) has set
 * it up, asks it to shape the data network (`configureNetwork`, the original's model: publish on
 * `network:<hostname>`, wait on the callback state), and finds addresses on the data network.
 */
import os from 'node:os';
import { encodeNetworkConfig } from '../core/contract/network-config.ts';
import { networkInitializedState, networkTopic } from '../core/contract/well-known.ts';
import { describeAddresses, findDataNetworkAddress } from './data-network-address.ts';
import type { SyncClientApi } from './lazy-sync-client.ts';
import { toNetworkConfig, type NetworkConfigInput } from './network-config-input.ts';
import { partitionRules, type DataNetworkPeer, type PartitionOptions } from './network-partition.ts';
import type { RunEnv } from './runenv.ts';

/** The sync operations the network client needs; any sync client has them. */
export type NetworkSyncClient = Pick<SyncClientApi, 'barrier' | 'publish' | 'subscribe'>;
/** @deprecated the network client needs more than barriers now; use {@link NetworkSyncClient}. */
export type BarrierClient = NetworkSyncClient;

/** The parts of the {@link RunEnv} the network client reads and records to. */
export type NetworkRunEnv = Pick<
  RunEnv,
  | 'testSidecar'
  | 'testInstanceCount'
  | 'testSubnet'
  | 'testGroupId'
  | 'recordMessage'
  | 'recordStageStart'
  | 'recordStageEnd'
>;

/** Where the client reads the machine's hostname and interfaces; the real ones by default (for tests). */
export interface NetworkClientOptions {
  hostname?: () => string;
  networkInterfaces?: () => NodeJS.Dict<os.NetworkInterfaceInfo[]>;
}

/** Options of {@link NetworkClient.partition}: which groups, how, and the rest of the configuration. */
export interface NetworkPartitionOptions extends PartitionOptions {
  /** What else every instance applies (shape, routing policy); its rules are kept and the partition's added. */
  base?: NetworkConfigInput;
  /** The callback state; default as for {@link NetworkClient.configureNetwork}. */
  callbackState?: string;
}

/** The topic every instance announces its data-network address on (our SDK's, namespaced to the run). */
export const dataNetworkPeersTopic = 'data-network-peers';

export class NetworkClient {
  private readonly client: NetworkSyncClient;
  private readonly runenv: NetworkRunEnv;
  private readonly hostname: () => string;
  private readonly networkInterfaces: () => NodeJS.Dict<os.NetworkInterfaceInfo[]>;
  private configured = 0;
  private peers: Promise<DataNetworkPeer[]> | undefined;

  constructor(client: NetworkSyncClient, runenv: NetworkRunEnv, options: NetworkClientOptions = {}) {
    this.client = client;
    this.runenv = runenv;
    this.hostname = options.hostname ?? os.hostname;
    this.networkInterfaces = options.networkInterfaces ?? os.networkInterfaces;
  }

  /**
   * Resolves once every instance's network is initialized: at once without a sidecar (`TEST_SIDECAR`
   * not `true`, e.g. local:exec), else when the `network-initialized` state reaches `TEST_INSTANCE_COUNT`.
   */
  async waitNetworkInitialized(): Promise<void> {
    if (!this.runenv.testSidecar) return;
    this.runenv.recordStageStart(networkInitializedState);
    await this.client.barrier(networkInitializedState, this.runenv.testInstanceCount);
    this.runenv.recordStageEnd(networkInitializedState);
    this.runenv.recordMessage('network initialisation successful');
  }

  /**
   * Asks the network side to apply `config` to this instance's data network (replacing the previous
   * configuration), and waits until `callbackTarget` instances (default: all) have theirs in effect.
   * Without a sidecar (`TEST_SIDECAR` not `true`) nothing can shape the network: it records a message and
   * returns, as the official SDKs do.
   *
   * A configuration the network side cannot apply ends this instance as `failure` with the reason
   * (docs/network-emulation.md); one this SDK can already tell is wrong throws a `NetworkConfigError` here.
   */
  async configureNetwork(config: NetworkConfigInput = {}): Promise<void> {
    this.configured += 1;
    const parsed = toNetworkConfig(config, `network-configured-${this.configured}`);
    if (!this.runenv.testSidecar) {
      this.runenv.recordMessage(
        'ignoring the network configuration: this runner does not shape the network (TEST_SIDECAR is not true)',
      );
      return;
    }
    await this.client.publish(networkTopic(this.hostname()), encodeNetworkConfig(parsed));
    await this.client.barrier(parsed.callbackState, parsed.callbackTarget || this.runenv.testInstanceCount);
  }

  /**
   * This instance's IPv4 address on the data network (inside `TEST_SUBNET`). Without a sidecar and
   * without such an address (local:exec), `127.0.0.1`, as the official SDKs answer.
   */
  getDataNetworkIP(): string {
    const interfaces = this.networkInterfaces();
    const address = findDataNetworkAddress(interfaces, this.runenv.testSubnet);
    if (address !== undefined) return address;
    if (!this.runenv.testSidecar) return '127.0.0.1';
    throw new Error(
      `no interface has an IPv4 address in the data subnet ${this.runenv.testSubnet} (TEST_SUBNET); addresses: ${describeAddresses(interfaces)}`,
    );
  }

  /**
   * Every instance of the run with its group, hostname and data-network address: each instance announces
   * its own on a topic and reads until it has all `TEST_INSTANCE_COUNT`. Call it from every instance (it
   * waits for all); later calls return the same list.
   */
  dataNetworkPeers(): Promise<DataNetworkPeer[]> {
    this.peers ??= this.announceAndCollect();
    return this.peers;
  }

  /**
   * Cuts groups apart on the data network: instances of `from` drop (or reject) traffic toward instances
   * of `to` and, unless `bidirectional` is false, the other way round. Every instance of the run must call
   * it (it configures each instance's network, with no rules for uninvolved ones, and waits on the
   * callback like {@link configureNetwork}). Heal with `configureNetwork(base)`.
   */
  async partition(options: NetworkPartitionOptions): Promise<void> {
    const peers = await this.dataNetworkPeers();
    const rules = partitionRules(
      peers,
      { group: this.runenv.testGroupId, ip: this.getDataNetworkIP() },
      options,
    );
    const base = options.base ?? {};
    await this.configureNetwork({
      ...base,
      rules: [...(base.rules ?? []), ...rules],
      ...(options.callbackState === undefined ? {} : { callbackState: options.callbackState }),
    });
  }

  private async announceAndCollect(): Promise<DataNetworkPeer[]> {
    const me: DataNetworkPeer = {
      group: this.runenv.testGroupId,
      hostname: this.hostname(),
      ip: this.getDataNetworkIP(),
    };
    await this.client.publish(dataNetworkPeersTopic, me);
    // One item per instance: each announces once (the list is kept), and hostnames need not differ
    // where no sidecar gives each instance its own.
    const peers: DataNetworkPeer[] = [];
    const subscription = this.client.subscribe<DataNetworkPeer>(dataNetworkPeersTopic);
    try {
      for await (const peer of subscription) {
        peers.push(peer);
        if (peers.length >= this.runenv.testInstanceCount) break;
      }
    } finally {
      subscription.cancel();
    }
    if (peers.length < this.runenv.testInstanceCount) {
      throw new Error(
        `the ${dataNetworkPeersTopic} topic ended after ${peers.length} of ${this.runenv.testInstanceCount} instances announced their address`,
      );
    }
    return peers;
  }
}

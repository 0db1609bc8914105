/**
 * The instance's view of its network: waits until the sidecar (docker and cluster runners) has set it up.
 */
import { networkInitializedState } from '../core/contract/well-known.ts';
import type { RunEnv } from './runenv.ts';

/** The one sync operation the network client needs; any sync client has it. */
export interface BarrierClient {
  barrier(state: string, target: number): Promise<void>;
}

/** The parts of the {@link RunEnv} the network client reads and records to. */
export type NetworkRunEnv = Pick<
  RunEnv,
  'testSidecar' | 'testInstanceCount' | 'recordMessage' | 'recordStageStart' | 'recordStageEnd'
>;

export class NetworkClient {
  private readonly client: BarrierClient;
  private readonly runenv: NetworkRunEnv;

  constructor(client: BarrierClient, runenv: NetworkRunEnv) {
    this.client = client;
    this.runenv = runenv;
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
}

/**
 * The SDK test plans import as `testground-sdk`.
 */
export { invoke, invokeMap, type TestCase } from './invoke.ts';
export {
  RunEnv,
  RunEnvError,
  TestParamError,
  parseRunEnv,
  parseRunParams,
  type RunEnvOptions,
  type RunParams,
} from './runenv.ts';
export { Metrics, type Counter, type Gauge, type Histogram, type MetricsOptions } from './metrics.ts';
export { type MetricType } from '../core/contract/metrics.ts';
export { type FinishOutcome, type RunEnvSummary, type SdkEvent } from '../core/contract/events.ts';
export {
  NetworkClient,
  dataNetworkPeersTopic,
  type BarrierClient,
  type NetworkClientOptions,
  type NetworkPartitionOptions,
  type NetworkSyncClient,
} from './network-client.ts';
export {
  toNetworkConfig,
  type BandwidthInput,
  type DurationInput,
  type LinkFilterInput,
  type LinkRuleInput,
  type LinkShapeInput,
  type NetworkConfigInput,
} from './network-config-input.ts';
export { partitionRules, type DataNetworkPeer, type PartitionOptions } from './network-partition.ts';
export {
  NetworkConfigError,
  type NetworkConfig,
  type NetworkConfigProblem,
  type RoutingPolicy,
} from '../core/contract/network-config.ts';
export { bandwidthToBitsPerSecond } from '../core/contract/units.ts';
// The state the sidecar signals once per instance when its network is ready; plans know it by this name.
export { networkInitializedState as NETWORK_INITIALIZED_STATE } from '../core/contract/well-known.ts';
export { type SyncClientApi } from './lazy-sync-client.ts';
export { SyncClient, connectSyncClient, connectSyncClientFromEnv } from './sync-client.ts';
export { type SyncClientOptions } from './sync-connect.ts';
export { SyncConnectionError, SyncRequestError } from './sync-errors.ts';
export { type Subscription } from './topic-subscription.ts';

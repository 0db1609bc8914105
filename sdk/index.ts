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
export { type FinishOutcome, type RunEnvSummary, type SdkEvent } from './event-recorder.ts';
export { NetworkClient, NETWORK_INITIALIZED_STATE, type BarrierClient } from './network-client.ts';
export { type SyncClientApi } from './lazy-sync-client.ts';
export {
  SyncClient,
  SyncConnectionError,
  SyncRequestError,
  connectSyncClient,
  connectSyncClientFromEnv,
  type Subscription,
  type SyncClientOptions,
} from './sync-client.ts';

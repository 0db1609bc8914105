import { invokeMap, NetworkClient, type RunEnv, type SyncClientApi } from 'testground-sdk';

// Round trips to the sync service are what every coordinating plan pays for; timing them across all
// instances shows how the service (and the host under it) holds up as a run grows.
async function syncLatency(runenv: RunEnv, client: SyncClientApi): Promise<void> {
  await new NetworkClient(client, runenv).waitNetworkInitialized();
  const rounds = runenv.intParam('rounds');
  const seq = await client.signalEntry('benchmarks-enrolled');
  const signals = runenv.metrics.counter('sync_signals');
  runenv.recordStageStart('signal');
  for (let round = 0; round < rounds; round++) {
    await runenv.metrics.time('sync_signal_ms', () => client.signalEntry(`benchmarks-${seq}`));
    signals.inc();
  }
  runenv.recordStageEnd('signal');

  runenv.recordStageStart('barrier');
  const waitStarted = performance.now();
  await client.signalAndWait('benchmarks-done', runenv.testInstanceCount);
  runenv.recordPoint('barrier_wait_ms', performance.now() - waitStarted, 'ms');
  runenv.recordStageEnd('barrier');
  runenv.recordMessage(`benchmarks: ${rounds} round trips timed`);
}

await invokeMap({ 'sync-latency': syncLatency });

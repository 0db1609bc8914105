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

interface StormPeer {
  seq: number;
}

// The storm every run of N instances is: all connect at once, each signals, all meet at one barrier, then
// each publishes itself and reads the topic until it has seen every instance (N² deliveries). The SDK
// marks when the connection opened and when the barrier released (metrics.out), so a benchmark reads the
// run's phases without anything of this plan's own.
async function storm(runenv: RunEnv, client: SyncClientApi): Promise<void> {
  await new NetworkClient(client, runenv).waitNetworkInitialized();
  const seq = await client.signalEntry('storm-enrolled');
  await client.signalAndWait('storm-ready', runenv.testInstanceCount);
  const { subscription } = await client.publishSubscribe<StormPeer>('storm-peers', { seq });
  const seen = new Set<number>();
  for await (const peer of subscription) {
    seen.add(peer.seq);
    if (seen.size === runenv.testInstanceCount) break;
  }
  if (seen.size !== runenv.testInstanceCount) {
    throw new Error(`the storm-peers topic ended after ${seen.size} of ${runenv.testInstanceCount} peers`);
  }
  runenv.recordMessage(`storm: enrolled as ${seq}, saw all ${seen.size} peers`);
}

await invokeMap({ 'sync-latency': syncLatency, storm });

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import tg from '@testground/sdk';
import { runEventsKey, syncStateKey, type SyncScope } from '../../core/contract/sync-wire.ts';
import { networkInitializedState } from '../../core/contract/well-known.ts';
import { connectSyncClient, type SyncClient } from '../../sdk/sync-client.ts';
import { startSyncService, type SyncService } from '../../sync/sync-service.ts';
import { RawWsClient } from './raw-ws-client.ts';

/** A broken barrier or subscription hangs; fail it instead. */
const testLimits = { timeout: 10_000 };

type OfficialClient = Awaited<ReturnType<typeof tg.sync.newBoundClient>>;

/**
 * The official SDK (0.1.2) reads SYNC_SERVICE_HOST / SYNC_SERVICE_PORT from process.env when it connects,
 * whatever env its runenv was parsed from, and its winston logger writes a file named `stdout` into the
 * working directory: this test runs in its own process, so both are set here once.
 */
describe('official @testground/sdk sync client against our service', () => {
  let service: SyncService;
  let workDir: string;
  const originalCwd = process.cwd();
  const clients: OfficialClient[] = [];
  const rawClients: RawWsClient[] = [];
  const ours: SyncClient[] = [];
  let runCounter = 0;

  before(async () => {
    service = await startSyncService();
    workDir = await mkdtemp(path.join(os.tmpdir(), 'tg-official-sdk-'));
    process.chdir(workDir);
    process.env.SYNC_SERVICE_HOST = '127.0.0.1';
    process.env.SYNC_SERVICE_PORT = String(service.port);
    process.env.LOG_LEVEL = 'error';
  });

  after(async () => {
    for (const client of clients) client.close();
    await Promise.all(ours.map((client) => client.close()));
    await Promise.all(rawClients.map((client) => client.close()));
    await service.close();
    process.chdir(originalCwd);
    await rm(workDir, { recursive: true, force: true });
  });

  /** A fresh run id per test keeps their keys apart on the shared service. */
  const newRun = (overrides: Record<string, string> = {}) => {
    runCounter += 1;
    return {
      TEST_RUN: `run${runCounter}`,
      TEST_PLAN: 'plan',
      TEST_CASE: 'case',
      TEST_GROUP_ID: 'single',
      TEST_INSTANCE_COUNT: '4',
      TEST_GROUP_INSTANCE_COUNT: '4',
      TEST_SUBNET: '127.1.0.0/16',
      TEST_SIDECAR: 'false',
      ...overrides,
    };
  };

  const connect = async (env: Record<string, string>) => {
    const runenv = tg.runtime.parseRunEnv(env);
    const client = await tg.sync.newBoundClient(runenv);
    clients.push(client);
    return { runenv, client };
  };

  const scopeOf = (env: Record<string, string>): SyncScope => ({
    runId: env.TEST_RUN ?? '',
    plan: env.TEST_PLAN ?? '',
    testCase: env.TEST_CASE ?? '',
  });

  const connectOurs = async (env: Record<string, string>) => {
    const client = await connectSyncClient({ host: '127.0.0.1', port: service.port, ...scopeOf(env) });
    ours.push(client);
    return client;
  };

  const rawClient = async () => {
    const client = await RawWsClient.connect(service.port);
    rawClients.push(client);
    return client;
  };

  it('signalEntry numbers the instances from 1', testLimits, async () => {
    const env = newRun();
    const instances = await Promise.all([connect(env), connect(env), connect(env)]);
    const seqs = [];
    for (const { client } of instances) seqs.push(await client.signalEntry('enrolled'));
    assert.deepEqual(seqs, [1, 2, 3]);
  });

  it('uses the key run:<run>:plan:<plan>:case:<case>:states:<name>', testLimits, async () => {
    const env = newRun({ TEST_RUN: 'keyed-run' });
    const { client } = await connect(env);
    await client.signalEntry('ready');
    const raw = await rawClient();
    const reply = await raw.request({
      id: '0',
      signal_entry: { state: 'run:keyed-run:plan:plan:case:case:states:ready' },
    });
    assert.deepEqual(reply.json.signal_entry, { seq: 2 });
  });

  it('shares states and topics with our SDK: both build the same keys', testLimits, async () => {
    const env = newRun();
    const { client: official } = await connect(env);
    const ourClient = await connectOurs(env);
    assert.equal(await official.signalEntry('mixed'), 1);
    assert.equal(await ourClient.signalEntry('mixed'), 2);
    await Promise.all([official.barrier('mixed', 2), ourClient.barrier('mixed', 2)]);

    assert.equal(await official.publish('mixed-topic', { from: 'official' }), 1);
    assert.equal(await ourClient.publish('mixed-topic', { from: 'ours' }), 2);
    const seenByOurs: unknown[] = [];
    for await (const item of ourClient.subscribe('mixed-topic')) {
      seenByOurs.push(item);
      if (seenByOurs.length === 2) break;
    }
    const seenByOfficial: unknown[] = [];
    const officialSubscription = await official.subscribe('mixed-topic');
    for await (const item of officialSubscription.wait) {
      seenByOfficial.push(item);
      if (seenByOfficial.length === 2) break;
    }
    officialSubscription.cancel();
    assert.deepEqual(seenByOurs, [{ from: 'official' }, { from: 'ours' }]);
    assert.deepEqual(seenByOfficial, seenByOurs);
  });

  it('barrier holds every instance until the last one signals', testLimits, async () => {
    const env = newRun();
    const instances = await Promise.all([connect(env), connect(env), connect(env), connect(env)]);
    const released: number[] = [];
    const early = instances.slice(0, 3).map(async ({ client }, i) => {
      await client.signalAndWait('all-here', 4);
      released.push(i);
    });
    const raw = await rawClient();
    // Resolves once the three have signalled; then one round trip on each of their connections makes
    // sure a wrongly released barrier reply would have reached them.
    await raw.request({
      id: 'probe',
      barrier: { state: `run:${env.TEST_RUN}:plan:plan:case:case:states:all-here`, target: 3 },
    });
    for (const { client } of instances.slice(0, 3)) await client.signalEntry('round-trip');
    assert.deepEqual(released, [], 'a barrier of 4 released with 3 signals');
    const lastSeq = await instances[3]?.client.signalAndWait('all-here', 4);
    await Promise.all(early);
    assert.equal(lastSeq, 4);
    assert.equal(released.length, 3);
  });

  it('publish and subscribe deliver every item, history first, in publish order', testLimits, async () => {
    const env = newRun();
    const [first, second, third] = await Promise.all([connect(env), connect(env), connect(env)]);
    assert.ok(first && second && third);
    assert.equal(await first.client.publish('peers', { id: 'a', addr: '/ip4/1.2.3.4' }), 1);
    assert.equal(await second.client.publish('peers', { id: 'b', addr: '/ip4/5.6.7.8' }), 2);

    const subscription = await third.client.subscribe('peers');
    const { seq, sub } = await third.client.publishSubscribe('peers', { id: 'c', addr: '/ip4/9.9.9.9' });
    assert.equal(seq, 3);
    const ids: string[] = [];
    for await (const item of subscription.wait) {
      ids.push((item as { id: string }).id);
      if (ids.length === 3) break;
    }
    assert.deepEqual(ids, ['a', 'b', 'c']);
    const again = await sub.wait.next();
    assert.deepEqual(again.value, { id: 'a', addr: '/ip4/1.2.3.4' });
    sub.cancel();

    assert.equal(await first.client.publish('peers', 'live'), 4);
    const live: unknown[] = [];
    const second2 = await second.client.subscribe('peers');
    for await (const item of second2.wait) {
      live.push(item);
      if (live.length === 4) break;
    }
    assert.equal(live[3], 'live');
  });

  it('recordMessage events reach the run_events topic', testLimits, async () => {
    const env = newRun();
    const { runenv, client } = await connect(env);
    runenv.setSignalEmitter(client);
    // Typed void: the SDK publishes in the background; the subscription below replays the topic's history.
    runenv.recordMessage('hello from the official sdk');
    const raw = await rawClient();
    const item = await raw.request({
      id: '0',
      subscribe: { topic: runEventsKey(scopeOf(env)) },
    });
    assert.deepEqual(JSON.parse(item.json.subscribe as string), {
      message_event: { message: 'hello from the official sdk' },
    });
  });

  it(
    'waitNetworkInitialized waits on the network-initialized barrier only with TEST_SIDECAR=true',
    testLimits,
    async () => {
      const withoutSidecar = await connect(newRun());
      const quick = tg.network.newClient(withoutSidecar.client, withoutSidecar.runenv);
      await quick.waitNetworkInitialized();

      const env = newRun({ TEST_SIDECAR: 'true', TEST_INSTANCE_COUNT: '2' });
      const instance = await connect(env);
      const network = tg.network.newClient(instance.client, instance.runenv);
      let done = false;
      const waiting = network.waitNetworkInitialized().then(() => (done = true));
      const sidecar = await rawClient();
      const state = syncStateKey(scopeOf(env), networkInitializedState);
      await sidecar.request({ id: '1', signal_entry: { state } });
      await sidecar.flush();
      assert.equal(done, false, 'waitNetworkInitialized returned before every instance was initialised');
      await sidecar.request({ id: '2', signal_entry: { state } });
      await waiting;
      assert.equal(done, true);
    },
  );
});

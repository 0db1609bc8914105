import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LazySyncClient, type SyncClientApi } from '../../sdk/lazy-sync-client.ts';
import { connectSyncClient } from '../../sdk/sync-client.ts';
import { startSyncService, type SyncService } from '../../sync/sync-service.ts';

let service: SyncService;
before(async () => {
  service = await startSyncService({ port: 0 });
});
after(() => service.close());

let runCounter = 0;

/** A lazy client on a fresh run (so tests do not share states), counting its connections. */
function lazyClient(runId = `lazy-${++runCounter}`): { client: LazySyncClient; connections: () => number } {
  let connections = 0;
  const client = new LazySyncClient(() => {
    connections += 1;
    return connectSyncClient({ host: service.host, port: service.port, runId, plan: 'p', testCase: 'c' });
  });
  return { client, connections: () => connections };
}

describe('LazySyncClient', () => {
  it('does not connect until first used, then connects once', async () => {
    const { client, connections } = lazyClient();
    assert.equal(client.used, false);
    assert.equal(connections(), 0);
    const [first, second] = await Promise.all([client.signalEntry('s'), client.signalEntry('s')]);
    assert.deepEqual([first, second].sort(), [1, 2]);
    assert.equal(await client.signalAndWait('s', 3), 3);
    await client.barrier('s', 3);
    assert.equal(await client.publish('t', { n: 1 }), 1);
    assert.equal(client.used, true);
    assert.equal(connections(), 1);
    await client.close();
  });

  it('tells how long each barrier was waited at, by state, once it is released', async () => {
    const runId = `lazy-${++runCounter}`;
    const waited: { state: string; ms: number }[] = [];
    const client = new LazySyncClient(
      () => connectSyncClient({ host: service.host, port: service.port, runId, plan: 'p', testCase: 'c' }),
      (state, ms) => waited.push({ state, ms }),
    );
    const other = lazyClient(runId).client;
    const waiting = client.signalAndWait('ready', 2);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(waited.length, 0, 'nothing is told while the barrier holds');
    await other.signalEntry('ready');
    await waiting;
    await client.barrier('ready', 2);
    assert.deepEqual(
      waited.map((entry) => entry.state),
      ['ready', 'ready'],
    );
    // Its length is the client's to measure (from after it connected): it is told after the release,
    // which the assertion above already shows, and it is a real duration.
    assert.ok(
      waited.every((entry) => entry.ms > 0 && Number.isFinite(entry.ms)),
      JSON.stringify(waited),
    );
    await Promise.all([client.close(), other.close()]);
  });

  it('closes without connecting when never used, and twice safely', async () => {
    const { client, connections } = lazyClient();
    await client.close();
    await client.close();
    assert.equal(connections(), 0);
    await assert.rejects(client.signalEntry('s'), {
      name: 'SyncConnectionError',
      message: 'the sync client was closed',
    });
    assert.equal(connections(), 0);
  });

  it('hands out a subscription before the connection is open', async () => {
    const runId = `lazy-${++runCounter}`;
    const { client } = lazyClient(runId);
    const subscription = client.subscribe<{ n: number }>('topic');
    const publisher = lazyClient(runId).client;
    await publisher.publish('topic', { n: 1 });
    await publisher.publish('topic', { n: 2 });
    const seen: number[] = [];
    for await (const item of subscription) {
      seen.push(item.n);
      if (seen.length === 2) break;
    }
    assert.deepEqual(seen, [1, 2]);
    const { seq, subscription: again } = await client.publishSubscribe<{ n: number }>('topic', { n: 3 });
    assert.equal(seq, 3);
    const replay: number[] = [];
    for await (const item of again) {
      replay.push(item.n);
      if (replay.length === 3) break;
    }
    assert.deepEqual(replay, [1, 2, 3]);
    await Promise.all([client.close(), publisher.close()]);
  });

  it('ends a subscription canceled before the connection opened', async () => {
    const { client } = lazyClient();
    const subscription = client.subscribe('topic');
    subscription.cancel();
    subscription.cancel();
    assert.deepEqual(await subscription.next(), { value: undefined, done: true });
    await client.close();
  });

  it('passes a failed connection to every caller, without retrying it, and closes cleanly after', async () => {
    let connections = 0;
    const client = new LazySyncClient((): Promise<SyncClientApi> => {
      connections += 1;
      return Promise.reject(new Error('no sync service at 127.0.0.1:1'));
    });
    const unread = client.subscribe('never-read');
    await assert.rejects(client.publish('t', 1), { message: 'no sync service at 127.0.0.1:1' });
    await assert.rejects(client.barrier('s', 1), { message: 'no sync service at 127.0.0.1:1' });
    await assert.rejects(unread.next(), { message: 'no sync service at 127.0.0.1:1' });
    assert.equal(connections, 1);
    await client.close();
  });
});

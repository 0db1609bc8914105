import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { connectSyncClient, SyncClient } from '../../sdk/sync-client.ts';
import { SyncConnectionError, SyncRequestError } from '../../sdk/sync-errors.ts';
import { startSyncService, type SyncService } from '../../sync/sync-service.ts';
import { RawWsClient } from '../sync/raw-ws-client.ts';

/** A broken barrier or subscription hangs; fail it instead. */
const testLimits = { timeout: 10_000 };

describe('SyncClient against the real sync service', () => {
  let service: SyncService;
  let clients: SyncClient[] = [];
  let runCounter = 0;

  before(async () => {
    service = await startSyncService();
  });

  after(async () => {
    await service.close();
  });

  afterEach(async () => {
    await Promise.all(clients.map((client) => client.close()));
    clients = [];
  });

  const connect = async (runId: string, port = service.port): Promise<SyncClient> => {
    const client = await connectSyncClient({
      host: '127.0.0.1',
      port,
      runId,
      plan: 'plan',
      testCase: 'case',
    });
    clients.push(client);
    return client;
  };
  /** A fresh run id per test keeps their keys apart on the shared service. */
  const newRun = (): string => {
    runCounter += 1;
    return `run${runCounter}`;
  };

  describe('namespacing', () => {
    it('builds keys run:<run>:plan:<plan>:case:<case>:states|topics:<name>', testLimits, async () => {
      const client = await connect('r');
      assert.equal(client.stateKey('ready'), 'run:r:plan:plan:case:case:states:ready');
      assert.equal(client.topicKey('peers'), 'run:r:plan:plan:case:case:topics:peers');
    });

    it('sends those keys on the wire, and keeps runs apart', testLimits, async () => {
      const run = newRun();
      const client = await connect(run);
      assert.equal(await client.signalEntry('ready'), 1);
      const raw = await RawWsClient.connect(service.port);
      after(() => raw.close());
      const reply = await raw.request({
        id: '0',
        signal_entry: { state: `run:${run}:plan:plan:case:case:states:ready` },
      });
      assert.deepEqual(reply.json.signal_entry, { seq: 2 });
      await client.publish('peers', { me: 1 });
      const item = await raw.request({
        id: '1',
        subscribe: { topic: `run:${run}:plan:plan:case:case:topics:peers` },
      });
      assert.equal(item.json.subscribe, '{"me":1}');

      const otherRun = await connect(newRun());
      assert.equal(await otherRun.signalEntry('ready'), 1);
    });
  });

  describe('states and barriers', () => {
    it(
      'lets 8 concurrent instances signalAndWait, each with its own seq, none released early',
      testLimits,
      async () => {
        const run = newRun();
        const instances = await Promise.all(Array.from({ length: 8 }, () => connect(run)));
        const released: number[] = [];
        const early = instances.slice(0, 7).map(async (client) => {
          const seq = await client.signalAndWait('ready', 8);
          released.push(seq);
          return seq;
        });
        const last = instances[7] as SyncClient;
        // The barrier of 7 passes once the seven have signalled; a round trip on each of their
        // connections then flushes any barrier reply released too early.
        await last.barrier('ready', 7);
        await Promise.all(instances.slice(0, 7).map((client) => client.signalEntry('round-trip')));
        assert.deepEqual(released, [], 'a barrier of 8 released with 7 signals');

        const seqs = [await last.signalAndWait('ready', 8), ...(await Promise.all(early))];
        assert.deepEqual(
          seqs.sort((a, b) => a - b),
          [1, 2, 3, 4, 5, 6, 7, 8],
        );
      },
    );

    it('resolves a barrier at once when already reached or when the target is 0', testLimits, async () => {
      const client = await connect(newRun());
      await client.signalEntry('s');
      await client.barrier('s', 1);
      await client.barrier('never', 0);
    });

    it('gives up a barrier on abort, and the connection keeps working', testLimits, async () => {
      const client = await connect(newRun());
      const controller = new AbortController();
      const waiting = client.barrier('never-reached', 5, { signal: controller.signal });
      controller.abort();
      await assert.rejects(waiting, { name: 'AbortError' });
      await assert.rejects(client.barrier('x', 1, { signal: AbortSignal.abort() }), { name: 'AbortError' });
      assert.equal(await client.signalEntry('still-working'), 1);
    });
  });

  describe('topics', () => {
    it(
      'lets 8 concurrent instances publishSubscribe and all see the same 8 items in the same order',
      testLimits,
      async () => {
        const run = newRun();
        const instances = await Promise.all(Array.from({ length: 8 }, () => connect(run)));
        const results = await Promise.all(
          instances.map(async (client, index) => {
            const { seq, subscription } = await client.publishSubscribe<{ index: number }>('peers', {
              index,
            });
            const seen: number[] = [];
            for await (const item of subscription) {
              seen.push(item.index);
              if (seen.length === 8) break;
            }
            return { seq, seen };
          }),
        );
        assert.deepEqual(
          results.map((result) => result.seq).sort((a, b) => a - b),
          [1, 2, 3, 4, 5, 6, 7, 8],
        );
        const order = results[0]?.seen;
        assert.deepEqual([...(order ?? [])].sort(), [0, 1, 2, 3, 4, 5, 6, 7]);
        for (const result of results) assert.deepEqual(result.seen, order);
        // Each instance's item sits at the position its publish seq says.
        for (const [index, result] of results.entries()) assert.equal(order?.[result.seq - 1], index);
      },
    );

    it('streams live items after the history and stops on cancel', testLimits, async () => {
      const run = newRun();
      const publisher = await connect(run);
      const subscriber = await connect(run);
      await publisher.publish('t', 'old');
      const subscription = subscriber.subscribe<string>('t');
      assert.deepEqual(await subscription.next(), { value: 'old', done: false });
      const pending = subscription.next();
      await publisher.publish('t', 'new');
      assert.deepEqual(await pending, { value: 'new', done: false });
      subscription.cancel();
      subscription.cancel();
      assert.deepEqual(await subscription.next(), { value: undefined, done: true });
    });

    it('rejects a payload JSON cannot encode without sending it', testLimits, async () => {
      const client = await connect(newRun());
      await assert.rejects(client.publish('t', { n: 1n }), TypeError);
      assert.equal(await client.publish('t', 'fine'), 1);
    });
  });

  describe('errors', () => {
    it('rejects with the service error message and stays usable', testLimits, async () => {
      const client = await connect(newRun());
      const fractional = client.barrier('s', 2.5);
      await assert.rejects(fractional, (error: unknown) => {
        assert.ok(error instanceof SyncRequestError);
        assert.equal(error.code, 'sync_request_failed');
        assert.match(
          error.message,
          /barrier on run:.*:states:s failed: .*barrier\.target must be a safe integer, got 2\.5/,
        );
        return true;
      });
      await assert.rejects(client.publish('t', undefined), /publish\.payload is required/);
      assert.equal(await client.signalEntry('after-errors'), 1);
    });

    it('rejects pending calls and fails subscriptions when the service goes away', testLimits, async () => {
      const ownService = await startSyncService();
      const client = await connect('gone', ownService.port);
      const waiting = assert.rejects(client.barrier('never', 2), (error: unknown) => {
        assert.ok(error instanceof SyncConnectionError);
        assert.match(error.message, /closed \(code 1001, sync service shutting down\)/);
        return true;
      });
      const next = assert.rejects(client.subscribe('t').next(), SyncConnectionError);
      await client.signalEntry('sent-before-close');
      await ownService.close();
      await waiting;
      await next;
      await assert.rejects(client.signalEntry('after'), SyncConnectionError);
    });

    it(
      'on close(), rejects pending calls, ends subscriptions, and may be called twice',
      testLimits,
      async () => {
        const client = await connect(newRun());
        const waiting = assert.rejects(client.barrier('never', 2), /the sync client was closed/);
        const next = client.subscribe('t').next();
        await Promise.all([client.close(), client.close()]);
        await waiting;
        assert.deepEqual(await next, { value: undefined, done: true });
        await assert.rejects(client.publish('t', 1), /the sync client was closed/);
      },
    );
  });

  describe('connecting', () => {
    it('retries until the service comes up', testLimits, async () => {
      const probe = await startSyncService();
      const port = probe.port;
      await probe.close();
      const connecting = connect('late', port);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const late = await startSyncService({ port });
      after(() => late.close());
      const client = await connecting;
      assert.equal(await client.signalEntry('up'), 1);
    });

    it('gives up after connectTimeoutMs with the address and the last error', testLimits, async () => {
      const probe = await startSyncService();
      const port = probe.port;
      await probe.close();
      const started = Date.now();
      await assert.rejects(
        connectSyncClient({
          host: '127.0.0.1',
          port,
          runId: 'r',
          plan: 'p',
          testCase: 'c',
          connectTimeoutMs: 300,
        }),
        (error: unknown) => {
          assert.ok(error instanceof SyncConnectionError);
          assert.match(
            error.message,
            // Under load the last attempt, with little budget left, may time out instead of being refused.
            new RegExp(
              `ws://127\\.0\\.0\\.1:${port} within 300 ms \\(\\d+ attempts, last error: .*(ECONNREFUSED|handshake has timed out)`,
            ),
          );
          return true;
        },
      );
      assert.ok(Date.now() - started < 2_000);
    });
  });
});

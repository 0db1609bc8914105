import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { startSyncService, type SyncService } from '../../sync/sync-service.ts';
import { RawWsClient } from './raw-ws-client.ts';

/** A broken barrier or subscription hangs; fail it instead. */
const testLimits = { timeout: 10_000 };

const responseKeys = ['id', 'error', 'publish', 'subscribe', 'signal_entry'];

describe('sync service', () => {
  let service: SyncService;
  let clients: RawWsClient[] = [];

  const connect = async (path = '/'): Promise<RawWsClient> => {
    const client = await RawWsClient.connect(service.port, path);
    clients.push(client);
    return client;
  };

  beforeEach(async () => {
    service = await startSyncService();
  });

  afterEach(async () => {
    await Promise.all(clients.map((client) => client.close()));
    clients = [];
    await service.close();
  });

  describe('responses', () => {
    it('carry all five keys and end with a newline', testLimits, async () => {
      const client = await connect();
      const signal = await client.request({ id: 's', signal_entry: { state: 'st' } });
      assert.equal(
        signal.text,
        '{"id":"s","error":"","publish":null,"subscribe":"","signal_entry":{"seq":1}}\n',
      );

      const publish = await client.request({ id: 'p', publish: { topic: 't', payload: { a: 1 } } });
      assert.equal(
        publish.text,
        '{"id":"p","error":"","publish":{"seq":1},"subscribe":"","signal_entry":null}\n',
      );

      const barrier = await client.request({ id: 'b', barrier: { state: 'st', target: 1 } });
      assert.equal(barrier.text, '{"id":"b","error":"","publish":null,"subscribe":"","signal_entry":null}\n');

      const item = await client.request({ id: 'sub', subscribe: { topic: 't' } });
      assert.equal(
        item.text,
        '{"id":"sub","error":"","publish":null,"subscribe":"{\\"a\\":1}","signal_entry":null}\n',
      );

      const error = await client.request({ id: 'e', barrier: { state: 'st' } });
      assert.deepEqual(Object.keys(error.json), responseKeys);
      assert.ok(error.text.endsWith('}\n'));
      assert.equal(error.json.publish, null);
      assert.equal(error.json.subscribe, '');
      assert.equal(error.json.signal_entry, null);
    });

    it('are accepted on any path', testLimits, async () => {
      const client = await connect('/some/path?x=1');
      const reply = await client.request({ id: '0', signal_entry: { state: 'st' } });
      assert.deepEqual(reply.json.signal_entry, { seq: 1 });
    });
  });

  describe('signal_entry', () => {
    it('counts across connections from 1, per state', testLimits, async () => {
      const a = await connect();
      const b = await connect();
      const seqOf = async (client: RawWsClient, id: string, state: string) =>
        ((await client.request({ id, signal_entry: { state } })).json.signal_entry as { seq: number }).seq;
      assert.equal(await seqOf(a, '0', 'x'), 1);
      assert.equal(await seqOf(b, '0', 'x'), 2);
      assert.equal(await seqOf(a, '1', 'x'), 3);
      assert.equal(await seqOf(b, '1', 'y'), 1);
    });

    it('gives 50 concurrent signallers the distinct seqs 1..50', testLimits, async () => {
      const signallers = await Promise.all(Array.from({ length: 50 }, () => connect()));
      const replies = await Promise.all(
        signallers.map((client) => client.request({ id: '0', signal_entry: { state: 'many' } })),
      );
      const seqs = replies
        .map((reply) => (reply.json.signal_entry as { seq: number }).seq)
        .sort((x, y) => x - y);
      assert.deepEqual(
        seqs,
        Array.from({ length: 50 }, (_, i) => i + 1),
      );
    });
  });

  describe('barrier', () => {
    it('replies exactly when the counter reaches the target, once', testLimits, async () => {
      const waiter = await connect();
      const signaller = await connect();
      waiter.send({ id: 'b', barrier: { state: 'st', target: 3 } });
      await waiter.flush();
      await signaller.request({ id: '1', signal_entry: { state: 'st' } });
      await signaller.request({ id: '2', signal_entry: { state: 'st' } });
      await waiter.flush();
      assert.equal(waiter.unread('b').length, 0, 'the barrier was released before its target');

      await signaller.request({ id: '3', signal_entry: { state: 'st' } });
      const reply = await waiter.next('b');
      assert.equal(reply.json.error, '');

      await signaller.request({ id: '4', signal_entry: { state: 'st' } });
      await waiter.flush();
      assert.equal(waiter.unread('b').length, 0, 'the barrier replied twice');
    });

    it('replies at once when the target is already reached, zero or negative', testLimits, async () => {
      const client = await connect();
      await client.request({ id: 's', signal_entry: { state: 'st' } });
      for (const [id, state, target] of [
        ['reached', 'st', 1],
        ['zero', 'empty', 0],
        ['negative', 'empty', -1],
      ] as const) {
        const reply = await client.request({ id, barrier: { state, target } });
        assert.equal(reply.json.error, '', `barrier ${id}`);
      }
    });

    it('releases waiters on many connections together', testLimits, async () => {
      const waiters = await Promise.all(Array.from({ length: 20 }, () => connect()));
      for (const waiter of waiters) waiter.send({ id: 'b', barrier: { state: 'st', target: 20 } });
      const released = Promise.all(waiters.map((waiter) => waiter.next('b')));
      await Promise.all(waiters.map((waiter) => waiter.flush()));
      await Promise.all(
        waiters.map((waiter, i) => waiter.request({ id: `s${i}`, signal_entry: { state: 'st' } })),
      );
      const replies = await released;
      assert.equal(replies.length, 20);
    });

    it('stops waiting when cancelled with is_cancel', testLimits, async () => {
      const waiter = await connect();
      waiter.send({ id: 'b', barrier: { state: 'st', target: 1 } });
      waiter.send({ id: 'b', is_cancel: true });
      await waiter.request({ id: 's', signal_entry: { state: 'st' } });
      await waiter.flush();
      assert.equal(waiter.unread('b').length, 0, 'a cancelled barrier replied');
    });
  });

  describe('publish and subscribe', () => {
    it('replays the history in order, then streams live items', testLimits, async () => {
      const publisher = await connect();
      const subscriber = await connect();
      const published = [{ n: 1 }, 'two', [3], null];
      for (const [i, payload] of published.entries()) {
        const reply = await publisher.request({ id: `p${i}`, publish: { topic: 't', payload } });
        assert.deepEqual(reply.json.publish, { seq: i + 1 });
      }
      subscriber.send({ id: 'sub', subscribe: { topic: 't' } });
      for (const payload of published) {
        const item = await subscriber.next('sub');
        assert.equal(typeof item.json.subscribe, 'string');
        assert.deepEqual(JSON.parse(item.json.subscribe as string), payload);
      }
      await publisher.request({ id: 'live', publish: { topic: 't', payload: { live: true } } });
      assert.deepEqual(JSON.parse((await subscriber.next('sub')).json.subscribe as string), { live: true });
      await publisher.request({ id: 'other', publish: { topic: 'other-topic', payload: 1 } });
      await subscriber.flush();
      assert.equal(subscriber.unread('sub').length, 0, 'an item of another topic was delivered');
    });

    it(
      'sends nothing for a subscription to an empty topic until something is published',
      testLimits,
      async () => {
        const subscriber = await connect();
        subscriber.send({ id: 'sub', subscribe: { topic: 'empty' } });
        await subscriber.flush();
        assert.equal(subscriber.unread('sub').length, 0);
      },
    );

    it('stops a subscription on is_cancel', testLimits, async () => {
      const publisher = await connect();
      const subscriber = await connect();
      subscriber.send({ id: 'sub', subscribe: { topic: 't' } });
      await publisher.request({ id: 'p1', publish: { topic: 't', payload: 1 } });
      await subscriber.next('sub');
      subscriber.send({ id: 'sub', is_cancel: true });
      await subscriber.flush();
      await publisher.request({ id: 'p2', publish: { topic: 't', payload: 2 } });
      await subscriber.flush();
      assert.equal(subscriber.unread('sub').length, 0, 'a cancelled subscription kept streaming');
    });

    it(
      'returns a 1 MiB payload byte for byte, including spellings JSON.parse would lose',
      testLimits,
      async () => {
        const client = await connect();
        const chunk = 'abc "quoted" \\ backslash é 😀 \n tab\t ';
        let body = '';
        while (body.length < 1024 * 1024) body += chunk;
        // Escapes JSON.stringify would never write, so re-encoding on the service would change them.
        const text = `${JSON.stringify(body).slice(0, -1)}\\u00e9\\/"`;
        const payloadText = `{"big": 12345678901234567890, "float": 1.50, "exp": 1E+2, "text": ${text}}`;
        assert.ok(Buffer.byteLength(payloadText) > 1024 * 1024);
        const sent = `{"id":"p","publish":{"topic":"big","payload":${payloadText}}}`;
        client.send(sent);
        assert.deepEqual((await client.next('p')).json.publish, { seq: 1 });

        const item = await client.request({ id: 'sub', subscribe: { topic: 'big' } });
        assert.equal(item.json.subscribe, payloadText);
      },
    );

    it('streams a history far larger than its send buffer completely and in order', testLimits, async () => {
      const publisher = await connect();
      const subscriber = await connect();
      const filler = 'x'.repeat(256 * 1024);
      const count = 48;
      for (let i = 0; i < count; i += 1)
        publisher.send({ id: `p${i}`, publish: { topic: 'bulk', payload: { i, filler } } });
      await publisher.next(`p${count - 1}`);
      subscriber.send({ id: 'sub', subscribe: { topic: 'bulk' } });
      for (let i = 0; i < count; i += 1) {
        const item = JSON.parse((await subscriber.next('sub', 5_000)).json.subscribe as string) as {
          i: number;
        };
        assert.equal(item.i, i);
      }
    });
  });

  describe('malformed requests', () => {
    const cases: [string, string, string, RegExp][] = [
      ['not JSON', 'not json', '', /not valid JSON/],
      ['a JSON array', '[1,2]', '', /must be a JSON object/],
      [
        'no operation',
        '{"id":"a"}',
        'a',
        /exactly one of publish, subscribe, barrier, signal_entry.*got none/,
      ],
      [
        'two operations',
        '{"id":"b","signal_entry":{"state":"s"},"subscribe":{"topic":"t"}}',
        'b',
        /got subscribe and signal_entry/,
      ],
      [
        'a fractional target',
        '{"id":"c","barrier":{"state":"s","target":2.5}}',
        'c',
        /barrier.target must be a safe integer, got 2.5/,
      ],
      ['a missing payload', '{"id":"d","publish":{"topic":"t"}}', 'd', /publish.payload is required/],
      [
        'an empty state',
        '{"id":"e","signal_entry":{"state":""}}',
        'e',
        /signal_entry.state must not be empty/,
      ],
      ['a numeric id', '{"id":7,"signal_entry":{"state":"s"}}', '', /id must be a string/],
    ];
    for (const [name, text, id, message] of cases) {
      it(`answers ${name} with an error and keeps serving`, testLimits, async () => {
        const client = await connect();
        client.send(text);
        const reply = await client.nextMatching((frame) => frame.json.error !== '', 'error response');
        assert.deepEqual(Object.keys(reply.json), responseKeys);
        assert.equal(reply.json.id, id);
        assert.match(reply.json.error as string, message);
        const after = await client.request({ id: 'ok', signal_entry: { state: 'after-error' } });
        assert.deepEqual(after.json.signal_entry, { seq: 1 });
      });
    }

    it('rejects a second live subscription under the same id', testLimits, async () => {
      const client = await connect();
      client.send({ id: 'dup', subscribe: { topic: 't' } });
      const reply = await client.request({ id: 'dup', subscribe: { topic: 'u' } });
      assert.match(reply.json.error as string, /already used by a pending barrier or subscription/);
    });

    it('closes only the offending connection when a frame exceeds maxPayloadBytes', testLimits, async () => {
      await service.close();
      service = await startSyncService({ maxPayloadBytes: 1024 });
      const bystander = await connect();
      const offender = await connect();
      const closed = new Promise<number>((resolve) => offender.ws.once('close', (code) => resolve(code)));
      offender.send({ id: 'p', publish: { topic: 't', payload: 'x'.repeat(2048) } });
      assert.equal(await closed, 1009);
      const reply = await bystander.request({ id: 'ok', signal_entry: { state: 's' } });
      assert.deepEqual(reply.json.signal_entry, { seq: 1 });
    });
  });

  describe('lifecycle', () => {
    it('keeps states and topics when a client disconnects', testLimits, async () => {
      const first = await connect();
      await first.request({ id: '0', signal_entry: { state: 'st' } });
      await first.request({ id: '1', signal_entry: { state: 'st' } });
      await first.request({ id: '2', publish: { topic: 't', payload: 'kept' } });
      await first.close();

      const second = await connect();
      const reply = await second.request({ id: '0', signal_entry: { state: 'st' } });
      assert.deepEqual(reply.json.signal_entry, { seq: 3 });
      const item = await second.request({ id: '1', subscribe: { topic: 't' } });
      assert.equal(item.json.subscribe, '"kept"');
    });

    it('keeps separate state per service instance', testLimits, async () => {
      const other = await startSyncService();
      after(() => other.close());
      const a = await connect();
      const b = await RawWsClient.connect(other.port);
      clients.push(b);
      await a.request({ id: '0', signal_entry: { state: 'st' } });
      const reply = await b.request({ id: '0', signal_entry: { state: 'st' } });
      assert.deepEqual(reply.json.signal_entry, { seq: 1 });
    });

    it('answers plain HTTP with 426 Upgrade Required', testLimits, async () => {
      const response = await fetch(`http://127.0.0.1:${service.port}/`);
      assert.equal(response.status, 426);
      assert.match(await response.text(), /sync service/);
    });

    it(
      'answers GET /status with each state: signalled, the barrier target and who waits',
      testLimits,
      async () => {
        const waiter = await connect();
        waiter.send({ id: 'b1', barrier: { state: 'ready', target: 3 } });
        waiter.send({ id: 'b2', barrier: { state: 'ready', target: 3 } });
        const signaller = await connect();
        await signaller.request({ id: '0', signal_entry: { state: 'ready' } });
        await signaller.request({ id: '1', signal_entry: { state: 'done' } });
        const response = await fetch(`http://127.0.0.1:${service.port}/status`);
        assert.equal(response.status, 200);
        assert.deepEqual(await response.json(), {
          states: [
            { name: 'ready', count: 1, target: 3, waiting: 2 },
            { name: 'done', count: 1, target: 0, waiting: 0 },
          ],
        });
      },
    );

    it('closes every connection with 1001 and may be closed twice', testLimits, async () => {
      const client = await connect();
      const closed = new Promise<number>((resolve) => client.ws.once('close', (code) => resolve(code)));
      await Promise.all([service.close(), service.close()]);
      await service.close();
      assert.equal(await closed, 1001);
      const refused = new WebSocket(`ws://127.0.0.1:${service.port}`);
      await assert.rejects(
        new Promise((resolve, reject) => {
          refused.once('open', resolve);
          refused.once('error', reject);
        }),
        /ECONNREFUSED/,
      );
    });

    it('reports the address and port it got, and refuses a bad port', testLimits, async () => {
      assert.equal(service.host, '127.0.0.1');
      assert.ok(service.port > 0);
      await assert.rejects(
        startSyncService({ port: 70_000 }),
        /port must be an integer from 0 to 65535.*got 70000/,
      );
      await assert.rejects(
        startSyncService({ port: service.port }),
        /could not start the sync service on 127\.0\.0\.1:\d+: .*EADDRINUSE/,
      );
    });
  });
});

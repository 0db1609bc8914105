import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { logStart, type LogEntryWithOffset } from '../../core/task-log.ts';
import { LogBus } from '../../daemon/log-bus.ts';
import { waitFor } from '../helpers/processes.ts';
import { startTestRedis } from '../helpers/redis-server.ts';

describe('LogBus (real Redis)', () => {
  let redis: Awaited<ReturnType<typeof startTestRedis>>;
  before(async () => {
    redis = await startTestRedis();
  });
  after(async () => {
    await redis.close();
  });

  /** The follower connections of one task, and whether each is blocked waiting for a line. */
  const followers = async (bus: string, taskId: string): Promise<{ blocked: boolean }[]> => {
    const clients = (await redis.client.client('LIST')) as string;
    return clients
      .split('\n')
      .filter((line) => line.includes(` name=${bus}:log-follower:${taskId} `))
      .map((line) => ({ blocked: /\bflags=\w*b/.test(line) && /\bcmd=xread\b/.test(line) }));
  };
  const newBus = (followBlockMs?: number): { bus: LogBus; prefix: string } => {
    const prefix = `l${randomBytes(4).toString('hex')}`;
    return { bus: new LogBus(redis.client, prefix, { followBlockMs }), prefix };
  };
  const gone = (prefix: string, taskId: string) => async () =>
    (await followers(prefix, taskId)).length === 0 ? true : undefined;

  it('keeps entries in order and resumes from any offset', async () => {
    const { bus } = newBus();
    const log = bus.taskLog('t1', (error) => assert.fail(String(error)));
    log.info('building');
    log.output('single', 0, 'stdout', 'hello');
    log.instanceEnd('single', 0, 'success', 'recorded success and exited 0');
    await bus.end('t1', { state: 'complete', outcome: 'success' });
    const all = await bus.read('t1', logStart);
    assert.deepEqual(
      all.map((entry) => entry.kind),
      ['log', 'output', 'instance_end', 'end'],
    );
    assert.equal(all[1]?.kind === 'output' && all[1].line, 'hello');
    const rest = await bus.read('t1', all[1]!.offset);
    assert.deepEqual(
      rest.map((entry) => entry.kind),
      ['instance_end', 'end'],
    );
  });

  it('replays a history longer than one page, in order', async () => {
    const { bus } = newBus();
    const log = bus.taskLog('long', (error) => assert.fail(String(error)));
    for (let index = 0; index < 2_500; index += 1) log.info(`line ${index}`);
    await bus.end('long', { state: 'complete', outcome: 'success' });
    const seen: string[] = [];
    for await (const entry of bus.history('long', logStart)) {
      seen.push(entry.kind === 'log' ? entry.msg : entry.kind);
    }
    assert.equal(seen.length, 2_501);
    assert.equal(seen[0], 'line 0');
    assert.equal(seen[2_499], 'line 2499');
    assert.equal(seen[2_500], 'end');
  });

  it('follows entries appended while it waits and ends with the end entry', async () => {
    const { bus, prefix } = newBus(5_000);
    const log = bus.taskLog('t2', (error) => assert.fail(String(error)));
    log.info('before following');
    const seen: LogEntryWithOffset[] = [];
    const started = Date.now();
    const following = (async () => {
      for await (const entry of bus.follow('t2', logStart)) seen.push(entry);
    })();
    await waitFor('the first line', async () => (seen.length === 1 ? true : undefined), 5_000);
    log.output('single', 0, 'stdout', 'live');
    await waitFor('the live line', async () => (seen.length === 2 ? true : undefined), 5_000);
    await bus.end('t2', { state: 'complete', outcome: 'success' });
    await following;
    assert.deepEqual(
      seen.map((entry) => entry.kind),
      ['log', 'output', 'end'],
    );
    assert.ok(Date.now() - started < 4_000, 'appends woke the follower, not the block timeout');
    await waitFor('the follower to close its connection', gone(prefix, 't2'), 5_000);
  });

  it('ends a follow when the task ended but its end entry aged out', async () => {
    const { bus, prefix } = newBus(50);
    bus.taskLog('t3', () => undefined).info('the only line left');
    let asked = 0;
    const seen: string[] = [];
    for await (const entry of bus.follow('t3', logStart, {
      hasEnded: async () => (asked += 1) >= 2,
    })) {
      seen.push(entry.kind);
    }
    assert.deepEqual(seen, ['log']);
    assert.equal(asked, 2, 'asked after each quiet wait until the record said the task ended');
    await waitFor('the follower to close its connection', gone(prefix, 't3'), 5_000);
  });

  it('closes its connection at once when the signal aborts mid-wait', async () => {
    const { bus, prefix } = newBus(60_000);
    const controller = new AbortController();
    const seen: string[] = [];
    const following = (async () => {
      for await (const entry of bus.follow('t4', logStart, { signal: controller.signal }))
        seen.push(entry.kind);
    })();
    await waitFor(
      'the follower to block in XREAD',
      async () => ((await followers(prefix, 't4'))[0]?.blocked ? true : undefined),
      5_000,
    );
    const aborted = Date.now();
    controller.abort();
    await following;
    assert.ok(Date.now() - aborted < 2_000, 'the abort interrupted a 60 s wait');
    assert.deepEqual(seen, []);
    await waitFor('the follower to close its connection', gone(prefix, 't4'), 5_000);
  });

  it('closes its connection when the consumer stops iterating', async () => {
    const { bus, prefix } = newBus(60_000);
    const log = bus.taskLog('t5', () => undefined);
    log.info('one');
    log.info('two');
    for await (const entry of bus.follow('t5', logStart)) {
      assert.equal(entry.kind === 'log' && entry.msg, 'one');
      assert.equal((await followers(prefix, 't5')).length, 1, 'it follows on a connection of its own');
      break;
    }
    await waitFor('the follower to close its connection', gone(prefix, 't5'), 5_000);
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { LogBus, logStart } from '../../daemon/log-bus.ts';
import { startTestRedis } from '../helpers/redis-server.ts';

describe('LogBus (real Redis)', () => {
  let redis: Awaited<ReturnType<typeof startTestRedis>>;
  before(async () => {
    redis = await startTestRedis();
  });
  after(async () => {
    await redis.close();
  });

  it('keeps entries in order and resumes from any offset', async () => {
    const bus = new LogBus(redis.client, `l${randomBytes(4).toString('hex')}`);
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

  it('wakes a blocked follower as soon as a line is appended', async () => {
    const bus = new LogBus(redis.client, `l${randomBytes(4).toString('hex')}`);
    const reader = new Redis({ path: redis.server.socketPath });
    try {
      const pending = bus.read('t2', logStart, { blockMs: 5_000, reader });
      const started = Date.now();
      setTimeout(() => bus.taskLog('t2', () => undefined).info('live'), 100);
      const entries = await pending;
      assert.equal(entries.length, 1);
      assert.equal(entries[0]?.kind === 'log' && entries[0].msg, 'live');
      assert.ok(
        Date.now() - started < 4_000,
        'the follower was woken by the append, not by the block timeout',
      );
    } finally {
      reader.disconnect();
    }
  });
});

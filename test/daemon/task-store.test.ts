import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import type { Composition } from '../../plan/composition.ts';
import { TaskStore, type NewTask } from '../../daemon/task-store.ts';
import { startTestRedis } from '../helpers/redis-server.ts';
import type { ResolvedRun } from '../../core/run.ts';

describe('TaskStore (real Redis)', () => {
  let redis: Awaited<ReturnType<typeof startTestRedis>>;
  before(async () => {
    redis = await startTestRedis();
  });
  after(async () => {
    await redis.close();
  });

  const storeWithClock = (): { store: TaskStore; tick: (ms: number) => void } => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const store = new TaskStore(redis.client, `t${randomBytes(4).toString('hex')}`, () => new Date(now));
    return { store, tick: (ms) => (now += ms) };
  };
  const newTask = (id: string, plan = 'example'): NewTask => ({
    id,
    plan,
    testCase: 'sync',
    builder: 'exec:node',
    runner: 'local:exec',
    instances: 3,
    createdBy: 'alice',
    composition: { global: { plan, case: 'sync' } } as unknown as Composition,
    resolved: { plan, testCase: 'sync', groups: [] } as unknown as ResolvedRun,
    planDir: '/plans/x',
    outputsDir: '/outputs/x',
  });

  it('creates a queued task and reads it back with its composition', async () => {
    const { store } = storeWithClock();
    const created = await store.create(newTask('a1'));
    assert.equal(created.state, 'queued');
    assert.deepEqual(created.states, [{ state: 'queued', at: '2026-01-01T00:00:00.000Z' }]);
    assert.equal(created.createdBy, 'alice');
    assert.deepEqual(created.composition, { global: { plan: 'example', case: 'sync' } });
    assert.equal(await store.get('missing'), undefined);
  });

  it('moves between states only from the allowed ones, keeping a timestamp per state', async () => {
    const { store, tick } = storeWithClock();
    await store.create(newTask('b1'));
    tick(1000);
    assert.equal(await store.transition('b1', ['queued'], 'building', { daemonId: 'd1' }), true);
    tick(1000);
    assert.equal(await store.transition('b1', ['building'], 'running'), true);
    tick(1000);
    assert.equal(
      await store.transition('b1', ['running'], 'complete', { outcome: 'failure', error: 'x failed' }),
      true,
    );
    // A late cancel must not overwrite the finished state.
    assert.equal(
      await store.transition('b1', ['queued', 'building', 'running'], 'canceled', { outcome: 'canceled' }),
      false,
    );
    const task = await store.get('b1');
    assert.equal(task?.state, 'complete');
    assert.equal(task?.outcome, 'failure');
    assert.equal(task?.error, 'x failed');
    assert.equal(task?.daemonId, 'd1');
    assert.deepEqual(
      task?.states.map((entry) => entry.state),
      ['queued', 'building', 'running', 'complete'],
    );
    assert.equal(await store.transition('missing', ['queued'], 'building'), false);
  });

  it('lists newest first with state and plan filters and a limit', async () => {
    const { store, tick } = storeWithClock();
    for (const [index, plan] of ['example', 'placebo', 'example', 'placebo'].entries()) {
      await store.create(newTask(`c${index}`, plan));
      tick(10);
    }
    await store.transition('c2', ['queued'], 'building');
    assert.deepEqual(
      (await store.list({ limit: 10 })).map((t) => t.id),
      ['c3', 'c2', 'c1', 'c0'],
    );
    assert.deepEqual(
      (await store.list({ limit: 10, plan: 'placebo' })).map((t) => t.id),
      ['c3', 'c1'],
    );
    assert.deepEqual(
      (await store.list({ limit: 10, state: 'building' })).map((t) => t.id),
      ['c2'],
    );
    assert.deepEqual(
      (await store.list({ limit: 2 })).map((t) => t.id),
      ['c3', 'c2'],
    );
    assert.deepEqual(
      (await store.listActive()).map((t) => t.id),
      ['c2'],
    );
  });

  it('lets exactly one of two racing transitions win', async () => {
    const { store } = storeWithClock();
    await store.create(newTask('d1'));
    const results = await Promise.all([
      store.transition('d1', ['queued'], 'building'),
      store.transition('d1', ['queued'], 'canceled', { outcome: 'canceled' }),
    ]);
    assert.equal(results.filter(Boolean).length, 1);
  });
});

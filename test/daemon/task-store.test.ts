import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import type { Composition } from '../../plan/composition.ts';
import { TaskStore, type NewTask } from '../../daemon/task-store.ts';
import { startTestRedis } from '../helpers/redis-server.ts';
import type { ResolvedTask } from '../../core/run.ts';

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
    resolved: { plan, testCase: 'sync', runs: [] } as unknown as ResolvedTask,
    runs: [{ id, name: 'default', instances: 3, outputsDir: `/outputs/${id}` }],
    planDir: '/plans/x',
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

  it('keeps each run with its state; the first run gives the task its run id, result and outputs', async () => {
    const { store } = storeWithClock();
    const created = await store.create({
      ...newTask('e1'),
      runs: [
        { id: 'e1-a', name: 'a', instances: 2, outputsDir: '/outputs/e1-a' },
        { id: 'e1-b', name: 'b', instances: 4, outputsDir: '/outputs/e1-b' },
      ],
      warnings: [{ path: 'global.build.selectors', message: 'ignored: Go build tags mean nothing here' }],
    });
    assert.equal(created.type, 'run');
    assert.equal(created.runId, 'e1-a');
    assert.equal(created.outputsDir, '/outputs/e1-a');
    assert.deepEqual(
      created.runs.map((run) => [run.id, run.name, run.state, run.instances]),
      [
        ['e1-a', 'a', 'pending', 2],
        ['e1-b', 'b', 'pending', 4],
      ],
    );
    assert.deepEqual(created.warnings, [
      { path: 'global.build.selectors', message: 'ignored: Go build tags mean nothing here' },
    ]);
    assert.deepEqual(created.artifacts, []);

    const result = {
      outcome: 'success' as const,
      reason: 'all 2 instances succeeded',
      groups: {},
      instances: [],
    };
    const progressed = created.runs.map((run, index) =>
      index === 0 ? { ...run, state: 'complete' as const, outcome: 'success' as const, result } : run,
    );
    assert.equal(
      await store.progress('e1', ['building', 'running'], { runs: progressed }),
      false,
      'not while queued',
    );
    await store.transition('e1', ['queued'], 'running');
    assert.equal(await store.progress('e1', ['building', 'running'], { runs: progressed }), true);
    const read = await store.get('e1');
    assert.equal(read?.runs[0]?.state, 'complete');
    assert.deepEqual(read?.result, result, "the task's result is its first run's");
    assert.equal(read?.state, 'running', 'progress leaves the state alone');

    const artifacts = [{ group: 'g', builder: 'exec:node', artifact: 'bundle:abc' }];
    await store.transition('e1', ['running'], 'complete', { outcome: 'success', artifacts });
    assert.deepEqual((await store.get('e1'))?.artifacts, artifacts);
  });

  it('reads a record written before tasks held several runs as a task of one run', async () => {
    const prefix = `t${randomBytes(4).toString('hex')}`;
    const store = new TaskStore(redis.client, prefix);
    const result = {
      outcome: 'failure',
      reason: '1 of 1 instances did not succeed',
      groups: {},
      instances: [],
    };
    await redis.client.hset(`${prefix}:task:old1`, {
      id: 'old1',
      type: 'run',
      plan: 'placebo',
      testCase: 'ok',
      builder: 'exec:node',
      runner: 'local:exec',
      instances: '1',
      createdBy: 'alice',
      createdAt: '2025-01-01T00:00:00.000Z',
      state: 'complete',
      'at:queued': '2025-01-01T00:00:00.000Z',
      'at:running': '2025-01-01T00:00:01.000Z',
      'at:complete': '2025-01-01T00:00:02.000Z',
      outcome: 'failure',
      error: '1 of 1 instances did not succeed',
      result: JSON.stringify(result),
      cancelRequested: '0',
      composition: '{}',
      resolved: JSON.stringify({
        plan: 'placebo',
        testCase: 'ok',
        runner: 'local:exec',
        builder: 'exec:node',
        totalInstances: 1,
        groups: [],
      }),
      planDir: '/plans/old1',
      outputsDir: '/outputs/local:exec/placebo/old1',
    });
    const task = await store.get('old1');
    assert.equal(task?.runId, 'old1');
    assert.equal(task?.outputsDir, '/outputs/local:exec/placebo/old1');
    assert.deepEqual(task?.result, result);
    assert.deepEqual(
      task?.runs.map((run) => [run.id, run.name, run.state, run.outcome, run.startedAt]),
      [['old1', 'default', 'complete', 'failure', '2025-01-01T00:00:01.000Z']],
    );
    assert.deepEqual(
      task?.resolved.runs.map((run) => [run.id, run.totalInstances]),
      [['default', 1]],
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

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
  it('pages summaries newest first by cursor, also through tasks created in the same millisecond', async () => {
    const { store, tick } = storeWithClock();
    // Pairs share a creation time: the cursor must neither repeat nor skip tasks with equal scores.
    for (let index = 0; index < 7; index += 1) {
      await store.create(newTask(`p${index}`, index % 2 === 0 ? 'example' : 'placebo'));
      if (index % 2 === 1) tick(10);
    }
    await store.transition('p6', ['queued'], 'building');
    await store.transition('p6', ['building'], 'running');
    await store.transition('p6', ['running'], 'complete', { outcome: 'failure', error: 'b failed' });
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await store.summaries({ limit: 3, ...(cursor ? { cursor } : {}) });
      seen.push(...page.tasks.map((task) => task.id));
      cursor = page.next;
      pages += 1;
    } while (cursor !== undefined && pages < 10);
    assert.deepEqual(seen, ['p6', 'p5', 'p4', 'p3', 'p2', 'p1', 'p0']);
    assert.equal(pages, 3, 'the last page says there is no next one');

    const first = (await store.summaries({ limit: 1 })).tasks[0];
    assert.deepEqual(first, {
      id: 'p6',
      type: 'run',
      plan: 'example',
      testCase: 'sync',
      builder: 'exec:node',
      runner: 'local:exec',
      instances: 3,
      createdBy: 'alice',
      createdAt: '2026-01-01T00:00:00.030Z',
      state: 'complete',
      outcome: 'failure',
      error: 'b failed',
      cancelRequested: false,
      metadata: {},
      endedAt: '2026-01-01T00:00:00.030Z',
    });
    assert.deepEqual(
      (await store.summaries({ limit: 10, plan: 'placebo' })).tasks.map((task) => task.id),
      ['p5', 'p3', 'p1'],
    );
    assert.deepEqual(
      (await store.summaries({ limit: 10, state: 'complete' })).tasks.map((task) => task.id),
      ['p6'],
    );
  });

  it('stops a filtered page after scanning its cap, with a cursor to go on from', async () => {
    const { store, tick } = storeWithClock();
    for (let index = 0; index < 6; index += 1) {
      await store.create(newTask(`s${index}`, index === 0 ? 'rare' : 'example'));
      tick(10);
    }
    const first = await store.summaries({ limit: 5, plan: 'rare' }, 3);
    assert.deepEqual(first.tasks, [], 'none of the 3 newest is of the plan');
    assert.ok(first.next, 'but there is more to look at');
    const second = await store.summaries({ limit: 5, plan: 'rare', cursor: first.next }, 3);
    assert.deepEqual(
      second.tasks.map((task) => task.id),
      ['s0'],
    );
    assert.equal(second.next, undefined);
    await assert.rejects(store.summaries({ limit: 5, cursor: 'nonsense' }), /not a task cursor/);
  });

  it('restores the record of a task Redis lost, as it ended, and never over an existing one', async () => {
    const { store } = storeWithClock();
    const task = await store.create(newTask('r1'));
    await store.transition('r1', ['queued'], 'building', { daemonId: 'd1' });
    const carried = (await store.get('r1'))!;
    const patch = { outcome: 'error' as const, error: 'Redis lost its data' };
    assert.equal(await store.restoreEnded(carried, 'complete', patch), false, 'its record still exists');
    await redis.client.del(`${(store as unknown as { prefix: string }).prefix}:task:r1`);
    assert.equal(await store.get('r1'), undefined);
    assert.equal(await store.restoreEnded(carried, 'complete', patch), true);
    const restored = await store.get('r1');
    assert.equal(restored?.state, 'complete');
    assert.equal(restored?.outcome, 'error');
    assert.equal(restored?.error, 'Redis lost its data');
    assert.equal(restored?.createdAt, task.createdAt);
    assert.deepEqual(
      restored?.states.map((entry) => entry.state),
      ['queued', 'building', 'complete'],
    );
    assert.deepEqual(
      (await store.summaries({ limit: 5 })).tasks.map((summary) => summary.id),
      ['r1'],
    );
  });
});

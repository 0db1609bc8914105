import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { DependencyError, NotFoundError } from '../../core/errors.ts';
import type { ResolvedTask } from '../../core/run.ts';
import { RunnerMaintenance } from '../../daemon/runner-maintenance.ts';
import { TaskStore } from '../../daemon/task-store.ts';
import type { Composition } from '../../plan/composition.ts';
import { FakeRunner } from '../helpers/fake-components.ts';
import { startTestRedis } from '../helpers/redis-server.ts';

describe('RunnerMaintenance (real Redis)', () => {
  let redis: Awaited<ReturnType<typeof startTestRedis>>;
  before(async () => {
    redis = await startTestRedis();
  });
  after(async () => {
    await redis.close();
  });

  const createTask = (store: TaskStore, id: string, runner: string, runNames = ['default']) =>
    store.create({
      id,
      plan: 'placebo',
      testCase: 'ok',
      builder: 'exec:node',
      runner,
      instances: runNames.length,
      createdBy: 'test',
      composition: {} as Composition,
      resolved: { runs: [] } as unknown as ResolvedTask,
      runs: runNames.map((name) => {
        const runId = name === 'default' ? id : `${id}-${name}`;
        return { id: runId, name, instances: 1, outputsDir: `/outputs/${runId}` };
      }),
      planDir: '/plans/x',
    });

  it("terminate cancels the runner's open tasks, reports the cancels that failed and keeps going", async () => {
    const store = new TaskStore(redis.client, `rm${randomBytes(4).toString('hex')}`);
    await createTask(store, 'queued1', 'local:exec');
    await createTask(store, 'broken', 'local:exec', ['a', 'b']);
    await store.transition('broken', ['queued'], 'running');
    await createTask(store, 'running1', 'local:exec');
    await store.transition('running1', ['queued'], 'running');
    await createTask(store, 'done1', 'local:exec');
    await store.transition('done1', ['queued'], 'complete', { outcome: 'success' });
    await createTask(store, 'docker1', 'local:docker');
    const asked: string[] = [];
    const tasks = {
      cancel: async (id: string) => {
        asked.push(id);
        if (id === 'broken') throw new DependencyError('redis did not answer within 1000 ms');
        await store.transition(id, ['queued', 'running'], 'canceled', { outcome: 'canceled' });
        return (await store.get(id))!;
      },
    };
    const runner = new FakeRunner('local:exec');
    const maintenance = new RunnerMaintenance({ tasks, store, runners: new Map([[runner.id, runner]]) });

    const report = await maintenance.terminate('local:exec');
    assert.deepEqual(asked.sort(), ['broken', 'queued1', 'running1']);
    assert.deepEqual(report.canceled.sort(), ['queued1', 'running1']);
    assert.deepEqual(report.failed, [{ task: 'broken', reason: 'redis did not answer within 1000 ms' }]);
    assert.equal(report.runner, 'local:exec');
    assert.deepEqual(report.removed, {});
    assert.equal(runner.leftoverSweeps.length, 1, 'leftovers are removed even though a cancel failed');
    assert.deepEqual(
      [...runner.leftoverSweeps[0]!].sort(),
      ['broken-a', 'broken-b'],
      'every run of a task still running is kept',
    );
    assert.equal((await store.get('docker1'))?.state, 'queued', "another runner's task is left alone");
  });

  it('terminate of a runner this daemon does not have is NotFound, naming the ones it has', async () => {
    const store = new TaskStore(redis.client, `rm${randomBytes(4).toString('hex')}`);
    const runner = new FakeRunner('local:exec');
    const maintenance = new RunnerMaintenance({
      tasks: { cancel: () => assert.fail('nothing to cancel') },
      store,
      runners: new Map([[runner.id, runner]]),
    });
    await assert.rejects(maintenance.terminate('cluster:k8s'), (error: unknown) => {
      assert.ok(error instanceof NotFoundError);
      assert.equal(error.message, 'no runner "cluster:k8s"; this daemon has local:exec');
      return true;
    });
  });
  it('terminate reports what could not be removed instead of failing, an unreachable engine too', async () => {
    const store = new TaskStore(redis.client, `rm${randomBytes(4).toString('hex')}`);
    const stubborn = new FakeRunner('local:docker');
    stubborn.removeLeftovers = async (_active, onNotRemoved) => {
      onNotRemoved?.({
        kind: 'network',
        name: 'tg-abc',
        reason: 'network tg-abc is still there after 5 attempts with endpoints tg-abc-single-3',
      });
      return { containers: 120, networks: 1 };
    };
    const unreachable = new FakeRunner('local:exec');
    unreachable.removeLeftovers = async () => {
      throw new Error('connect ENOENT /var/run/docker.sock');
    };
    const maintenance = new RunnerMaintenance({
      tasks: { cancel: () => assert.fail('nothing to cancel') },
      store,
      runners: new Map([
        [stubborn.id, stubborn],
        [unreachable.id, unreachable],
      ]),
    });
    assert.deepEqual(await maintenance.terminate('local:docker'), {
      runner: 'local:docker',
      canceled: [],
      failed: [],
      removed: { containers: 120, networks: 1 },
      not_removed: [
        {
          kind: 'network',
          name: 'tg-abc',
          reason: 'network tg-abc is still there after 5 attempts with endpoints tg-abc-single-3',
        },
      ],
    });
    assert.deepEqual((await maintenance.terminate('local:exec')).not_removed, [
      {
        kind: 'leftovers',
        name: 'local:exec',
        reason: 'could not look for them: connect ENOENT /var/run/docker.sock',
      },
    ]);
  });
});

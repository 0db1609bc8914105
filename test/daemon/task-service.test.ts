import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { packPlanDirectory } from '../../cli/pack-plan.ts';
import { ConflictError, NotFoundError, ValidationError } from '../../core/errors.ts';
import { logStart } from '../../core/task-log.ts';
import { LogBus } from '../../daemon/log-bus.ts';
import { OutputsStore } from '../../daemon/outputs-store.ts';
import { redisOptions } from '../../daemon/redis-connection.ts';
import { TaskQueue } from '../../daemon/task-queue.ts';
import { TaskRunner } from '../../daemon/task-runner.ts';
import { TaskService } from '../../daemon/task-service.ts';
import { TaskStore } from '../../daemon/task-store.ts';
import { componentsOf, FakeBuilder, FakeRunner, Gate } from '../helpers/fake-components.ts';
import { memoryLogger } from '../helpers/memory-logger.ts';
import { repoRoot, scratchDir, waitFor } from '../helpers/processes.ts';
import { startTestRedis } from '../helpers/redis-server.ts';

const composition = (testCase: string, instances: number): string => `
[global]
plan = "placebo"
case = "${testCase}"
total_instances = ${instances}

[[groups]]
id = "single"
instances = { count = ${instances} }
`;

describe('TaskService (real Redis, queue and plan archive; fake builder and runner)', () => {
  let redis: Awaited<ReturnType<typeof startTestRedis>>;
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  let archivePath: string;
  before(async () => {
    redis = await startTestRedis();
    scratch = await scratchDir('task-service');
    archivePath = path.join(scratch.dir, 'placebo.tar.gz');
    await writeFile(archivePath, await packPlanDirectory(path.join(repoRoot, 'plans/placebo')));
  });
  after(async () => {
    await redis.close();
    await scratch.remove();
  });

  const setup = (t: { after: (fn: () => Promise<void>) => void }) => {
    const prefix = `ts${randomBytes(4).toString('hex')}`;
    const root = path.join(scratch.dir, prefix);
    const store = new TaskStore(redis.client, prefix);
    const logBus = new LogBus(redis.client, prefix);
    const logger = memoryLogger().logger;
    const queue = new TaskQueue({
      connection: redisOptions({ socketPath: redis.server.socketPath }),
      prefix,
      concurrency: 1,
      logger,
    });
    t.after(() => queue.close());
    const builder = new FakeBuilder();
    const runner = new FakeRunner();
    const taskRunner = new TaskRunner({
      store,
      logBus,
      builders: new Map([[builder.id, builder]]),
      runners: new Map([[runner.id, runner]]),
      tempRoot: path.join(root, 'temp'),
      daemonId: 'daemon-a',
      logger,
    });
    const outputs = new OutputsStore(path.join(root, 'outputs'));
    const plansRoot = path.join(root, 'plans');
    const service = new TaskService({
      store,
      queue,
      logBus,
      taskRunner,
      outputs,
      plansRoot,
      known: componentsOf(
        [new FakeBuilder('exec:node'), new FakeBuilder('docker:node')],
        [new FakeRunner('local:exec'), new FakeRunner('local:docker')],
      ),
      archiveLimits: { maxBytes: 8 << 20, maxEntries: 1_000 },
      logger,
    });
    const submit = (testCase = 'ok', instances = 2) =>
      service.submitRun({
        compositionText: composition(testCase, instances),
        archivePath,
        createdBy: 'alice',
      });
    return { store, logBus, queue, builder, runner, taskRunner, outputs, plansRoot, service, submit };
  };

  it('submitRun extracts the plan, records a queued task, logs its state and queues a job', async (t) => {
    const { service, queue, logBus, outputs, submit } = setup(t);
    const task = await submit('ok', 2);
    assert.match(task.id, /^[a-z0-9]{15}$/);
    assert.equal(task.state, 'queued');
    assert.equal(task.plan, 'placebo');
    assert.equal(task.testCase, 'ok');
    assert.equal(task.builder, 'exec:node');
    assert.equal(task.runner, 'local:exec');
    assert.equal(task.instances, 2);
    assert.equal(task.createdBy, 'alice');
    assert.deepEqual(
      task.resolved.groups.map((group) => [group.id, group.instances]),
      [['single', 2]],
    );
    assert.ok(existsSync(path.join(task.planDir, 'manifest.toml')), 'the plan snapshot was extracted');
    assert.equal(task.outputsDir, outputs.runDir('local:exec', 'placebo', task.id));
    const entries = await logBus.read(task.id, logStart);
    assert.deepEqual(
      entries.map((entry) => (entry.kind === 'state' ? [entry.kind, entry.state] : [entry.kind])),
      [['state', 'queued']],
    );
    assert.equal((await queue.counts()).waiting, 1);
    assert.deepEqual(await service.get(task.id), task);
  });

  it('submitRun refuses a composition the manifest does not allow, and leaves nothing behind', async (t) => {
    const { queue, plansRoot, submit } = setup(t);
    await assert.rejects(submit('no-such-case', 1), (error: unknown) => {
      assert.ok(error instanceof ValidationError, String(error));
      assert.match(error.message, /no-such-case/);
      return true;
    });
    assert.deepEqual(await readdir(plansRoot).catch(() => []), [], 'the extracted plan was removed');
    assert.equal((await queue.counts()).waiting, 0);
  });

  it('cancel of a queued task ends it at once and removes its job', async (t) => {
    const { service, queue, logBus, builder, submit } = setup(t);
    const task = await submit();
    const canceled = await service.cancel(task.id);
    assert.equal(canceled.state, 'canceled');
    assert.equal(canceled.outcome, 'canceled');
    assert.equal(canceled.error, 'canceled on request');
    assert.equal(canceled.cancelRequested, true);
    assert.equal((await queue.counts()).waiting, 0, 'the job is gone');
    const entries = await logBus.read(task.id, logStart);
    const end = entries.at(-1);
    assert.equal(end?.kind, 'end');
    assert.deepEqual(end?.kind === 'end' && [end.state, end.outcome, end.error], [
      'canceled',
      'canceled',
      'canceled on request',
    ]);
    assert.equal(builder.builds.length, 0);
  });

  it('cancel of a finished task is a ConflictError; of an unknown or malformed id, not found or invalid', async (t) => {
    const { service, store, submit } = setup(t);
    const task = await submit();
    await store.transition(task.id, ['queued'], 'complete', { outcome: 'success' });
    await assert.rejects(service.cancel(task.id), (error: unknown) => {
      assert.ok(error instanceof ConflictError);
      assert.equal(
        error.message,
        `task ${task.id} already ended (complete, outcome success); nothing to cancel`,
      );
      return true;
    });
    assert.equal((await store.get(task.id))?.state, 'complete', 'the record is unchanged');
    await assert.rejects(service.cancel('nosuchtask'), NotFoundError);
    await assert.rejects(service.cancel('Not/An-Id'), ValidationError);
  });

  it('a submitted run goes through the real queue and worker; a cancel while it runs stops it', async (t) => {
    const { service, queue, runner, taskRunner, submit } = setup(t);
    await queue.startWorker((taskId) => taskRunner.process(taskId));
    const done = await submit('ok', 1);
    const ended = await waitFor('the first run to complete', async () => {
      const task = await service.get(done.id);
      return task.state === 'complete' ? task : undefined;
    });
    assert.equal(ended.outcome, 'success');

    runner.gate = new Gate();
    const running = runner.nextRun();
    const held = await submit('ok', 1);
    await running;
    assert.equal((await service.get(held.id)).state, 'running');
    await service.cancel(held.id);
    const canceled = await waitFor('the held run to be canceled', async () => {
      const task = await service.get(held.id);
      return task.state === 'canceled' ? task : undefined;
    });
    assert.equal(canceled.outcome, 'canceled');
    assert.deepEqual(
      canceled.result?.instances.map((instance) => instance.outcome),
      ['canceled'],
    );
  });
});

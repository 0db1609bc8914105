import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BuildError, DependencyError } from '../../core/errors.ts';
import type { ResolvedGroup } from '../../core/run.ts';
import type { TaskRecord, TaskState } from '../../core/task.ts';
import { logStart, type LogEntryWithOffset } from '../../core/task-log.ts';
import { LogBus } from '../../daemon/log-bus.ts';
import { OutputsStore } from '../../daemon/outputs-store.ts';
import { redisOptions } from '../../daemon/redis-connection.ts';
import { TaskQueue } from '../../daemon/task-queue.ts';
import { TaskRunner } from '../../daemon/task-runner.ts';
import { TaskService } from '../../daemon/task-service.ts';
import { TaskStore, type NewTask, type TransitionPatch } from '../../daemon/task-store.ts';
import type { Composition } from '../../plan/composition.ts';
import { componentsOf, FakeBuilder, FakeRunner, Gate } from '../helpers/fake-components.ts';
import { memoryLogger } from '../helpers/memory-logger.ts';
import { scratchDir, waitFor } from '../helpers/processes.ts';
import { startTestRedis } from '../helpers/redis-server.ts';

/** The real store, with a pause before one chosen transition, to hold the worker at the racy moment. */
class HeldTaskStore extends TaskStore {
  private hold: { to: TaskState; reached: Gate; release: Gate } | undefined;

  /** The next transition to `to` waits for `release`; `reached` opens when it starts waiting. */
  holdBefore(to: TaskState): { reached: Gate; release: Gate } {
    const hold = { to, reached: new Gate(), release: new Gate() };
    this.hold = hold;
    return hold;
  }

  override async transition(
    id: string,
    from: readonly TaskState[],
    to: TaskState,
    patch?: TransitionPatch,
  ): Promise<boolean> {
    const hold = this.hold;
    if (hold?.to === to) {
      this.hold = undefined;
      hold.reached.open();
      await hold.release.opened;
    }
    return super.transition(id, from, to, patch);
  }
}

describe('TaskRunner (real Redis, fake builder and runner)', () => {
  let redis: Awaited<ReturnType<typeof startTestRedis>>;
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  before(async () => {
    redis = await startTestRedis();
    scratch = await scratchDir('task-runner');
  });
  after(async () => {
    await redis.close();
    await scratch.remove();
  });

  const setup = (options: { daemonId?: string; builders?: FakeBuilder[] } = {}) => {
    const prefix = `tr${randomBytes(4).toString('hex')}`;
    const root = path.join(scratch.dir, prefix);
    const store = new HeldTaskStore(redis.client, prefix);
    const logBus = new LogBus(redis.client, prefix);
    const builders = options.builders ?? [new FakeBuilder()];
    const builder = builders[0]!;
    const runner = new FakeRunner();
    const logged = memoryLogger();
    const daemonId = options.daemonId ?? 'daemon-a';
    const taskRunner = new TaskRunner({
      store,
      logBus,
      builders: new Map(builders.map((b) => [b.id, b])),
      runners: new Map([[runner.id, runner]]),
      tempRoot: path.join(root, 'temp'),
      daemonId,
      logger: logged.logger,
    });
    const service = new TaskService({
      store,
      // These tests call process() as the worker would; the real queue is in task-queue.test.ts and in the
      // racing-cancels test below.
      queue: { enqueue: async () => undefined, removeWaiting: async () => false },
      logBus,
      taskRunner,
      outputs: new OutputsStore(path.join(root, 'outputs')),
      plansRoot: path.join(root, 'plans'),
      known: componentsOf(builders, [runner]),
      archiveLimits: { maxBytes: 1 << 20, maxEntries: 100 },
      logger: logged.logger,
    });
    let count = 0;
    const createTask = async (
      groups: Partial<ResolvedGroup>[] = [{}],
      overrides: Partial<NewTask> = {},
    ): Promise<TaskRecord> => {
      count += 1;
      const id = `t${count}`;
      const resolvedGroups: ResolvedGroup[] = groups.map((group, index) => ({
        id: `g${index}`,
        instances: 1,
        builder: 'exec:node',
        buildConfig: {},
        resources: {},
        testParams: {},
        dependencies: [],
        ...group,
      }));
      const totalInstances = resolvedGroups.reduce((sum, group) => sum + group.instances, 0);
      return store.create({
        id,
        plan: 'placebo',
        testCase: 'ok',
        builder: 'exec:node',
        runner: 'local:exec',
        instances: totalInstances,
        createdBy: 'test',
        composition: { global: { plan: 'placebo', case: 'ok' } } as unknown as Composition,
        resolved: {
          id: 'default',
          plan: 'placebo',
          testCase: 'ok',
          builder: 'exec:node',
          runner: 'local:exec',
          totalInstances,
          runConfig: {},
          timeoutMs: 60_000,
          disableMetrics: true,
          groups: resolvedGroups,
        },
        planDir: path.join(root, 'plans', id),
        outputsDir: path.join(root, 'outputs', id),
        ...overrides,
      });
    };
    const record = async (id: string): Promise<TaskRecord> => {
      const task = await store.get(id);
      assert.ok(task, `task ${id} exists`);
      return task;
    };
    /** The task's log; asserts it holds exactly one `end` entry and that it is the last one. */
    const logOf = async (
      id: string,
    ): Promise<{ entries: LogEntryWithOffset[]; end: Record<string, unknown> }> => {
      const entries = await logBus.read(id, logStart);
      const ends = entries.filter((entry) => entry.kind === 'end');
      assert.equal(ends.length, 1, `exactly one end entry in ${JSON.stringify(entries)}`);
      assert.equal(entries.at(-1)?.kind, 'end', 'the end entry is the last one');
      const { state, outcome, error } = ends[0] as Extract<LogEntryWithOffset, { kind: 'end' }>;
      return { entries, end: { state, outcome, ...(error === undefined ? {} : { error }) } };
    };
    return {
      store,
      logBus,
      builder,
      runner,
      logged,
      taskRunner,
      service,
      createTask,
      record,
      logOf,
      daemonId,
    };
  };

  describe('a run that goes its course', () => {
    it('ends complete/success when every instance succeeds, and removes its temp dir', async () => {
      const { taskRunner, createTask, record, logOf, runner, builder, daemonId } = setup();
      const task = await createTask([{ instances: 2 }]);
      await taskRunner.process(task.id);
      const done = await record(task.id);
      assert.equal(done.state, 'complete');
      assert.equal(done.outcome, 'success');
      assert.equal(done.error, undefined);
      assert.equal(done.daemonId, daemonId);
      assert.deepEqual(
        done.states.map((entry) => entry.state),
        ['queued', 'building', 'running', 'complete'],
      );
      assert.equal(done.result?.reason, 'all 2 instances succeeded');
      assert.deepEqual(done.result?.groups, { g0: { total: 2, ok: 2, outcomes: { success: 2 } } });
      const { entries, end } = await logOf(task.id);
      assert.deepEqual(end, { state: 'complete', outcome: 'success' });
      assert.deepEqual(
        entries
          .filter((entry) => entry.kind === 'state')
          .map((entry) => entry.kind === 'state' && entry.state),
        ['building', 'running'],
      );
      assert.equal(builder.builds.length, 1);
      assert.equal(runner.runs.length, 1);
      assert.ok(existsSync(task.outputsDir), 'the outputs directory was created for the runner');
      assert.equal(existsSync(runner.runs[0]!.tempDir), false, 'the run temp dir is removed when it ends');
      assert.equal(taskRunner.stop(task.id, 'canceled'), false, 'nothing is left registered');
    });

    it('ends complete/failure with the reason when an instance fails', async () => {
      const { taskRunner, createTask, record, logOf, runner } = setup();
      runner.outcomes.set('g0/1', 'failure');
      const task = await createTask([{ instances: 2 }]);
      await taskRunner.process(task.id);
      const done = await record(task.id);
      assert.equal(done.state, 'complete');
      assert.equal(done.outcome, 'failure');
      assert.equal(done.error, '1 of 2 instances did not succeed (1 failure)');
      assert.deepEqual(
        done.result?.instances.map((instance) => instance.outcome),
        ['success', 'failure'],
      );
      assert.deepEqual((await logOf(task.id)).end, {
        state: 'complete',
        outcome: 'failure',
        error: '1 of 2 instances did not succeed (1 failure)',
      });
    });
  });

  describe('explained and unexpected errors', () => {
    it("ends complete/error with the builder's message when the build fails, without a stack in the daemon log", async () => {
      const { taskRunner, createTask, record, logOf, builder, runner, logged } = setup();
      builder.failure = new BuildError('exec:node: esbuild could not bundle index.ts: "x" is not exported');
      const task = await createTask();
      await taskRunner.process(task.id);
      const done = await record(task.id);
      assert.equal(done.state, 'complete');
      assert.equal(done.outcome, 'error');
      assert.equal(done.error, 'exec:node: esbuild could not bundle index.ts: "x" is not exported');
      const { entries, end } = await logOf(task.id);
      assert.deepEqual(end, { state: 'complete', outcome: 'error', error: done.error });
      assert.ok(
        entries.some((entry) => entry.kind === 'log' && entry.level === 'error' && entry.msg === done.error),
        'the task log says why',
      );
      assert.equal(runner.runs.length, 0, 'nothing runs after a failed build');
      assert.deepEqual(logged.atLevel('error'), [], 'an explained error is not logged as a daemon error');
    });

    it("ends complete/error with the runner's message when the runner fails with one of our errors", async () => {
      const { taskRunner, createTask, record, logOf, runner, logged } = setup();
      runner.failure = new DependencyError(
        'cannot reach the Docker engine at /var/run/docker.sock; start dockerd',
      );
      const task = await createTask();
      await taskRunner.process(task.id);
      const done = await record(task.id);
      assert.equal(done.state, 'complete');
      assert.equal(done.outcome, 'error');
      assert.equal(done.error, 'cannot reach the Docker engine at /var/run/docker.sock; start dockerd');
      assert.deepEqual((await logOf(task.id)).end, {
        state: 'complete',
        outcome: 'error',
        error: done.error,
      });
      assert.deepEqual(logged.atLevel('error'), []);
    });

    it('calls a host error (a real ENOTDIR) an internal error, and logs it with its stack', async () => {
      const { taskRunner, createTask, record, logOf, runner, logged } = setup();
      const file = path.join(scratch.dir, `not-a-dir-${randomBytes(3).toString('hex')}`);
      await writeFile(file, 'a file where the outputs directory should go');
      const task = await createTask([{}], { outputsDir: path.join(file, 'outputs') });
      await taskRunner.process(task.id);
      const done = await record(task.id);
      assert.equal(done.state, 'complete');
      assert.equal(done.outcome, 'error');
      assert.equal(
        done.error,
        `internal error: ENOTDIR: not a directory, mkdir '${path.join(file, 'outputs')}'`,
      );
      assert.deepEqual((await logOf(task.id)).end, {
        state: 'complete',
        outcome: 'error',
        error: done.error,
      });
      assert.equal(runner.runs.length, 0);
      const errors = logged.atLevel('error');
      assert.equal(errors.length, 1, 'logged once');
      assert.equal(errors[0]?.taskId, task.id);
      assert.equal(errors[0]?.err?.code, 'ENOTDIR');
      assert.match(errors[0]?.err?.stack ?? '', /ENOTDIR[^\n]*\n\s+at /, 'with its stack');
    });

    it('calls a plain Error thrown by a runner an internal error, and logs it with its stack', async () => {
      const { taskRunner, createTask, record, logOf, runner, logged } = setup();
      runner.failure = new TypeError("Cannot read properties of undefined (reading 'id')");
      const task = await createTask();
      await taskRunner.process(task.id);
      const done = await record(task.id);
      assert.equal(done.outcome, 'error');
      assert.equal(done.error, "internal error: Cannot read properties of undefined (reading 'id')");
      assert.deepEqual((await logOf(task.id)).end, {
        state: 'complete',
        outcome: 'error',
        error: done.error,
      });
      const errors = logged.atLevel('error');
      assert.equal(errors.length, 1);
      assert.equal(errors[0]?.err?.type, 'TypeError');
      assert.match(errors[0]?.err?.stack ?? '', /\n\s+at /);
    });

    it('ends as an internal error when the task names a runner this daemon does not have', async () => {
      const { taskRunner, createTask, record, logOf, builder } = setup();
      const task = await createTask([{}], { runner: 'cluster:swarm' });
      await taskRunner.process(task.id);
      const done = await record(task.id);
      assert.equal(done.outcome, 'error');
      assert.equal(done.error, 'internal error: runner cluster:swarm is not available on this daemon');
      assert.equal((await logOf(task.id)).end.outcome, 'error');
      assert.equal(builder.builds.length, 1, 'the build ran first');
    });
  });

  describe('build de-duplication', () => {
    it('builds groups with the same builder and build config once, and different configs separately', async () => {
      const { taskRunner, createTask, record, builder, runner, logOf } = setup();
      const task = await createTask([
        { id: 'a', buildConfig: { minify: true, target: 'node20' } },
        // The same config with its keys in another order is the same build.
        { id: 'b', buildConfig: { target: 'node20', minify: true } },
        { id: 'c', buildConfig: { minify: false, target: 'node20' } },
      ]);
      await taskRunner.process(task.id);
      assert.equal((await record(task.id)).outcome, 'success');
      assert.equal((await logOf(task.id)).end.outcome, 'success');
      assert.deepEqual(
        builder.builds.map((build) => build.buildConfig),
        [
          { minify: true, target: 'node20' },
          { minify: false, target: 'node20' },
        ],
      );
      const artifacts = runner.runs[0]!.artifacts;
      assert.equal(artifacts.get('a'), artifacts.get('b'), 'groups a and b share one artifact');
      assert.notEqual(artifacts.get('a'), artifacts.get('c'));
      assert.equal(artifacts.size, 3);
    });

    it('builds the same config once per builder when groups use different builders', async () => {
      const node = new FakeBuilder('exec:node');
      const other = new FakeBuilder('exec:other');
      const { taskRunner, createTask, record } = setup({ builders: [node, other] });
      const task = await createTask([
        { id: 'a', builder: 'exec:node' },
        { id: 'b', builder: 'exec:other' },
        { id: 'c', builder: 'exec:node' },
      ]);
      await taskRunner.process(task.id);
      assert.equal((await record(task.id)).outcome, 'success');
      assert.equal(node.builds.length, 1);
      assert.equal(other.builds.length, 1);
    });
  });

  describe('cancel', () => {
    it('cancel wins the race for `queued`: the task ends canceled and nothing is built or run', async () => {
      const { taskRunner, service, store, createTask, record, logOf, builder, runner } = setup();
      const task = await createTask();
      const hold = store.holdBefore('building');
      const processing = taskRunner.process(task.id);
      // The worker has read the task as queued and is about to take it.
      await hold.reached.opened;
      const afterCancel = await service.cancel(task.id);
      assert.equal(afterCancel.state, 'canceled');
      hold.release.open();
      await processing;
      const done = await record(task.id);
      assert.equal(done.state, 'canceled');
      assert.equal(done.outcome, 'canceled');
      assert.equal(done.error, 'canceled on request');
      assert.equal(done.cancelRequested, true);
      assert.deepEqual(
        done.states.map((entry) => entry.state),
        ['queued', 'canceled'],
      );
      assert.deepEqual((await logOf(task.id)).end, {
        state: 'canceled',
        outcome: 'canceled',
        error: 'canceled on request',
      });
      assert.equal(builder.builds.length, 0);
      assert.equal(runner.runs.length, 0);
      assert.equal(taskRunner.stop(task.id, 'canceled'), false, 'the losing worker unregistered the task');
    });

    it('the worker wins the race: a cancel during the build stops it, and the runner never runs', async () => {
      const { taskRunner, service, createTask, record, logOf, builder, runner } = setup();
      builder.gate = new Gate();
      const task = await createTask();
      const building = builder.nextBuild();
      const processing = taskRunner.process(task.id);
      const build = await building;
      assert.equal((await service.cancel(task.id)).cancelRequested, true);
      assert.equal(build.signal.aborted, true, "the build's signal was aborted");
      await processing;
      const done = await record(task.id);
      assert.equal(done.state, 'canceled');
      assert.equal(done.outcome, 'canceled');
      assert.equal(done.error, 'canceled on request');
      assert.deepEqual((await logOf(task.id)).end, {
        state: 'canceled',
        outcome: 'canceled',
        error: 'canceled on request',
      });
      assert.equal(runner.runs.length, 0);
    });

    it('a cancel during the run stops the runner; its instances end canceled', async () => {
      const { taskRunner, service, createTask, record, logOf, runner } = setup();
      runner.gate = new Gate();
      const task = await createTask([{ instances: 2 }]);
      const running = runner.nextRun();
      const processing = taskRunner.process(task.id);
      const run = await running;
      await service.cancel(task.id);
      assert.equal(run.signal.aborted, true);
      await processing;
      const done = await record(task.id);
      assert.equal(done.state, 'canceled');
      assert.equal(done.outcome, 'canceled');
      assert.equal(done.error, 'canceled on request');
      assert.deepEqual(
        done.result?.instances.map((instance) => instance.outcome),
        ['canceled', 'canceled'],
      );
      assert.deepEqual(done.result?.groups, { g0: { total: 2, ok: 0, outcomes: { canceled: 2 } } });
      assert.deepEqual((await logOf(task.id)).end, {
        state: 'canceled',
        outcome: 'canceled',
        error: 'canceled on request',
      });
    });

    it('a task whose cancel was requested before the worker took it ends canceled without building', async () => {
      const { taskRunner, store, createTask, record, logOf, builder } = setup();
      const task = await createTask();
      await store.requestCancel(task.id);
      await taskRunner.process(task.id);
      const done = await record(task.id);
      assert.equal(done.state, 'canceled');
      assert.equal(done.outcome, 'canceled');
      assert.equal(done.error, 'canceled before it started');
      assert.deepEqual((await logOf(task.id)).end, {
        state: 'canceled',
        outcome: 'canceled',
        error: 'canceled before it started',
      });
      assert.equal(builder.builds.length, 0);
    });

    it('with a real queue and worker, racing cancels always leave exactly one winner per task', async (t) => {
      const {
        taskRunner,
        service: _unused,
        store,
        logBus,
        createTask,
        record,
        logOf,
        builder,
        runner,
      } = setup();
      void _unused;
      // Builds never finish by themselves, so every task can only end through its cancel.
      builder.gate = new Gate();
      const prefix = `trq${randomBytes(4).toString('hex')}`;
      const queue = new TaskQueue({
        connection: redisOptions({ socketPath: redis.server.socketPath }),
        prefix,
        concurrency: 3,
        logger: memoryLogger().logger,
      });
      const service = new TaskService({
        store,
        queue,
        logBus,
        taskRunner,
        outputs: new OutputsStore(path.join(scratch.dir, prefix)),
        plansRoot: path.join(scratch.dir, prefix),
        known: componentsOf([new FakeBuilder('exec:node')], [new FakeRunner('local:exec')]),
        archiveLimits: { maxBytes: 1 << 20, maxEntries: 100 },
        logger: memoryLogger().logger,
      });
      try {
        await queue.startWorker((taskId) => taskRunner.process(taskId));
        const tasks: TaskRecord[] = [];
        for (let index = 0; index < 12; index += 1) tasks.push(await createTask());
        await Promise.all(
          tasks.map(async (task, index) => {
            await queue.enqueue(task.id);
            await new Promise((resolve) => setTimeout(resolve, index * 3));
            await service.cancel(task.id);
          }),
        );
        for (const task of tasks) {
          const done = await waitFor(`task ${task.id} to be canceled`, async () => {
            const current = await record(task.id);
            return current.state === 'canceled' ? current : undefined;
          });
          assert.equal(done.outcome, 'canceled');
          await logOf(task.id);
        }
        // Those the worker took first were stopped during their build; none ever ran.
        assert.equal(runner.runs.length, 0);
        t.diagnostic(
          `${builder.builds.length} of ${tasks.length} were taken by the worker before their cancel`,
        );
        await waitFor('the queue to be empty', async () => {
          const counts = await queue.counts();
          return Object.values(counts).every((count) => count === 0) ? true : undefined;
        });
      } finally {
        await queue.close();
      }
    });
  });

  describe('redelivery', () => {
    it('leaves a task this daemon is still running alone; the run finishes normally', async () => {
      const { taskRunner, createTask, record, logOf, runner } = setup();
      runner.gate = new Gate();
      const task = await createTask();
      const running = runner.nextRun();
      const processing = taskRunner.process(task.id);
      await running;
      // BullMQ hands the job out again (its lock lapsed while Redis was away).
      await taskRunner.process(task.id);
      assert.equal((await record(task.id)).state, 'running', 'the run is still going');
      assert.equal(runner.runs.length, 1);
      assert.deepEqual(runner.interrupted, []);
      runner.gate.open();
      await processing;
      const done = await record(task.id);
      assert.equal(done.state, 'complete');
      assert.equal(done.outcome, 'success');
      assert.deepEqual((await logOf(task.id)).end, { state: 'complete', outcome: 'success' });
    });

    for (const state of ['building', 'running'] as const) {
      it(`ends a task left ${state} but not active here as error, and has its runner clean up`, async () => {
        const { taskRunner, store, createTask, record, logOf, runner, builder } = setup();
        const task = await createTask();
        assert.equal(await store.transition(task.id, ['queued'], state, { daemonId: 'daemon-a' }), true);
        await taskRunner.process(task.id);
        const done = await record(task.id);
        assert.equal(done.state, 'complete');
        assert.equal(done.outcome, 'error');
        assert.equal(done.error, 'daemon restarted during the run');
        assert.deepEqual((await logOf(task.id)).end, {
          state: 'complete',
          outcome: 'error',
          error: 'daemon restarted during the run',
        });
        assert.deepEqual(
          runner.interrupted.map((entry) => entry.runId),
          [task.runId],
        );
        assert.equal(builder.builds.length, 0);
        assert.equal(runner.runs.length, 0);
      });
    }

    it('does nothing for a job whose task already ended, or does not exist', async () => {
      const { taskRunner, store, createTask, record, logged, builder } = setup();
      const task = await createTask();
      await store.transition(task.id, ['queued'], 'canceled', {
        outcome: 'canceled',
        error: 'canceled on request',
      });
      await taskRunner.process(task.id);
      assert.equal((await record(task.id)).state, 'canceled');
      await taskRunner.process('nosuchtask');
      assert.equal(builder.builds.length, 0);
      assert.deepEqual(
        logged.atLevel('warn').map((entry) => [entry.taskId, entry.msg]),
        [['nosuchtask', 'a queued job names a task that does not exist; dropping it']],
      );
    });

    it('does not run a task someone else moved out of `building` during its build', async () => {
      const { taskRunner, store, createTask, record, builder, runner } = setup();
      builder.gate = new Gate();
      const task = await createTask();
      const building = builder.nextBuild();
      const processing = taskRunner.process(task.id);
      await building;
      await store.transition(task.id, ['building'], 'complete', {
        outcome: 'error',
        error: 'ended elsewhere',
      });
      builder.gate.open();
      await processing;
      assert.equal((await record(task.id)).error, 'ended elsewhere');
      assert.equal(runner.runs.length, 0);
    });
  });

  describe('shutdown', () => {
    it('stopAll during a run ends the task complete/error "the daemon stopped during the run", not canceled', async () => {
      const { taskRunner, createTask, record, logOf, runner } = setup();
      runner.gate = new Gate();
      const task = await createTask([{ instances: 2 }]);
      const running = runner.nextRun();
      const processing = taskRunner.process(task.id);
      const run = await running;
      taskRunner.stopAll();
      assert.equal(run.signal.aborted, true);
      await processing;
      const done = await record(task.id);
      assert.equal(done.state, 'complete');
      assert.equal(done.outcome, 'error');
      assert.equal(done.error, 'the daemon stopped during the run');
      assert.deepEqual((await logOf(task.id)).end, {
        state: 'complete',
        outcome: 'error',
        error: 'the daemon stopped during the run',
      });
    });

    it('stopAll during a build ends the task the same way, and nothing runs', async () => {
      const { taskRunner, createTask, record, logOf, builder, runner } = setup();
      builder.gate = new Gate();
      const task = await createTask();
      const building = builder.nextBuild();
      const processing = taskRunner.process(task.id);
      await building;
      taskRunner.stopAll();
      await processing;
      const done = await record(task.id);
      assert.equal(done.outcome, 'error');
      assert.equal(done.error, 'the daemon stopped during the run');
      assert.equal((await logOf(task.id)).end.error, 'the daemon stopped during the run');
      assert.equal(runner.runs.length, 0);
    });
  });

  describe('recoverInterrupted at start-up', () => {
    it("ends this daemon's building/running tasks that no worker here carries, and nothing else", async () => {
      const { taskRunner, store, createTask, record, logOf, runner } = setup({ daemonId: 'daemon-a' });
      const mineBuilding = await createTask();
      await store.transition(mineBuilding.id, ['queued'], 'building', { daemonId: 'daemon-a' });
      const mineRunning = await createTask();
      await store.transition(mineRunning.id, ['queued'], 'running', { daemonId: 'daemon-a' });
      const otherDaemons = await createTask();
      await store.transition(otherDaemons.id, ['queued'], 'running', { daemonId: 'daemon-b' });
      const queued = await createTask();
      // A run this process is carrying right now.
      runner.gate = new Gate();
      const live = await createTask();
      const running = runner.nextRun();
      const processing = taskRunner.process(live.id);
      await running;

      const recovered = await taskRunner.recoverInterrupted();
      assert.deepEqual(recovered.sort(), [mineBuilding.id, mineRunning.id].sort());
      for (const id of recovered) {
        const done = await record(id);
        assert.equal(done.state, 'complete');
        assert.equal(done.outcome, 'error');
        assert.equal(done.error, 'daemon restarted during the run');
        assert.deepEqual((await logOf(id)).end, {
          state: 'complete',
          outcome: 'error',
          error: 'daemon restarted during the run',
        });
      }
      assert.deepEqual(
        runner.interrupted.map((entry) => entry.runId).sort(),
        [mineBuilding.runId, mineRunning.runId].sort(),
      );
      assert.equal((await record(otherDaemons.id)).state, 'running', "another daemon's task is left alone");
      assert.equal((await record(queued.id)).state, 'queued');
      assert.equal((await record(live.id)).state, 'running', 'the live run is left alone');
      runner.gate.open();
      await processing;
      assert.equal((await record(live.id)).outcome, 'success');
    });
  });
});

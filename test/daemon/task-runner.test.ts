import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BuildError, DependencyError } from '../../core/errors.ts';
import type { ResolvedGroup, ResolvedRun } from '../../core/run.ts';
import type { TaskRecord, TaskState, TaskType } from '../../core/task.ts';
import { logStart, type LogEntryWithOffset } from '../../core/task-log.ts';
import { ArtifactStore } from '../../daemon/artifact-store.ts';
import { LogBus } from '../../daemon/log-bus.ts';
import { OutputsStore } from '../../daemon/outputs-store.ts';
import { redisOptions } from '../../daemon/redis-connection.ts';
import { TaskQueue } from '../../daemon/task-queue.ts';
import { TaskRunner } from '../../daemon/task-runner.ts';
import { TaskService } from '../../daemon/task-service.ts';
import { TaskStore, type TransitionPatch } from '../../daemon/task-store.ts';
import type { Composition } from '../../plan/composition.ts';
import { componentsOf, FakeBuilder, FakeRunner, Gate } from '../helpers/fake-components.ts';
import { memoryLogger } from '../helpers/memory-logger.ts';
import { scratchDir, waitFor } from '../helpers/processes.ts';
import { startTestRedis } from '../helpers/redis-server.ts';
import { syncStateKey } from '../../core/contract/sync-wire.ts';
import { startSyncService } from '../../sync/sync-service.ts';
import { RawWsClient } from '../sync/raw-ws-client.ts';

/** One run of a task made by hand: its name and its groups (defaults filled in). */
interface RunSpec {
  name: string;
  groups: Partial<ResolvedGroup>[];
}

interface TaskOptions {
  type?: TaskType;
  runner?: string;
  /** The first run's outputs directory. */
  outputsDir?: string;
}

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

  const setup = (
    options: { daemonId?: string; builders?: FakeBuilder[]; progressIntervalMs?: number } = {},
  ) => {
    const prefix = `tr${randomBytes(4).toString('hex')}`;
    const root = path.join(scratch.dir, prefix);
    const store = new HeldTaskStore(redis.client, prefix);
    const logBus = new LogBus(redis.client, prefix);
    const builders = options.builders ?? [
      new FakeBuilder('exec:node', { bundleRoot: path.join(root, 'cache') }),
    ];
    const builder = builders[0]!;
    const runner = new FakeRunner();
    const logged = memoryLogger();
    const daemonId = options.daemonId ?? 'daemon-a';
    const artifacts = new ArtifactStore({
      redis: redis.client,
      prefix,
      images: { imageExists: async () => false },
    });
    const taskRunner = new TaskRunner({
      store,
      logBus,
      builders: new Map(builders.map((b) => [b.id, b])),
      runners: new Map([[runner.id, runner]]),
      artifacts,
      tempRoot: path.join(root, 'temp'),
      daemonId,
      logger: logged.logger,
      ...(options.progressIntervalMs === undefined ? {} : { progressIntervalMs: options.progressIntervalMs }),
    });
    const service = new TaskService({
      store,
      // These tests call process() as the worker would; the real queue is in task-queue.test.ts and in the
      // racing-cancels test below.
      queue: { enqueue: async () => undefined, removeWaiting: async () => false },
      logBus,
      taskRunner,
      outputs: new OutputsStore(path.join(root, 'outputs')),
      artifacts,
      plansRoot: path.join(root, 'plans'),
      known: componentsOf(builders, [runner]),
      archiveLimits: { maxBytes: 1 << 20, maxEntries: 100 },
      logger: logged.logger,
    });
    let count = 0;
    /** A task of several runs, as submission would record it; a single run named `default` has the task's id. */
    const createRunsTask = async (runs: RunSpec[], options: TaskOptions = {}): Promise<TaskRecord> => {
      count += 1;
      const id = `t${count}`;
      const single = runs.length === 1 && runs[0]!.name === 'default';
      const resolvedRuns: ResolvedRun[] = runs.map((run) => {
        const groups: ResolvedGroup[] = run.groups.map((group, index) => ({
          id: `g${index}`,
          instances: 1,
          builder: 'exec:node',
          buildConfig: {},
          resources: {},
          testParams: {},
          dependencies: [],
          ...group,
        }));
        return {
          id: run.name,
          plan: 'placebo',
          testCase: 'ok',
          builder: 'exec:node',
          runner: options.runner ?? 'local:exec',
          totalInstances: groups.reduce((sum, group) => sum + group.instances, 0),
          runConfig: {},
          timeoutMs: 60_000,
          disableMetrics: true,
          groups,
        };
      });
      const runRecords = resolvedRuns.map((run, index) => {
        const runId = single ? id : `${id}-${run.id}`;
        return {
          id: runId,
          name: run.id,
          instances: run.totalInstances,
          outputsDir:
            index === 0 && options.outputsDir !== undefined
              ? options.outputsDir
              : path.join(root, 'outputs', runId),
        };
      });
      return store.create({
        id,
        type: options.type ?? 'run',
        plan: 'placebo',
        testCase: 'ok',
        builder: 'exec:node',
        runner: options.runner ?? 'local:exec',
        instances: options.type === 'build' ? 0 : runRecords.reduce((sum, run) => sum + run.instances, 0),
        createdBy: 'test',
        composition: { global: { plan: 'placebo', case: 'ok' } } as unknown as Composition,
        resolved: {
          plan: 'placebo',
          testCase: 'ok',
          builder: 'exec:node',
          runner: options.runner ?? 'local:exec',
          runs: resolvedRuns,
        },
        runs: options.type === 'build' ? [] : runRecords,
        planDir: path.join(root, 'plans', id),
      });
    };
    const createTask = (groups: Partial<ResolvedGroup>[] = [{}], options: TaskOptions = {}) =>
      createRunsTask([{ name: 'default', groups }], options);
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
      artifacts,
      createTask,
      createRunsTask,
      record,
      logOf,
      daemonId,
    };
  };

  describe("a run's progress", () => {
    it('is on the record and in the log while it runs: instances by phase, barriers of its sync service', async () => {
      const { taskRunner, createTask, record, logOf, runner } = setup({ progressIntervalMs: 50 });
      const sync = await startSyncService();
      after(() => sync.close());
      runner.gate = new Gate();
      const task = await createTask([{ instances: 2 }]);
      const started = runner.nextRun();
      const processing = taskRunner.process(task.id);
      const input = await started;
      input.progress?.syncServiceAt({ host: sync.host, port: sync.port });
      input.log.instancePhase?.('g0', 0, 'started');
      input.log.instancePhase?.('g0', 1, 'started');
      const client = await RawWsClient.connect(sync.port);
      after(() => client.close());
      const ready = syncStateKey({ runId: task.id, plan: 'placebo', testCase: 'ok' }, 'ready');
      client.send({ id: 'b', barrier: { state: ready, target: 2 } });
      await client.request({ id: 's', signal_entry: { state: ready } });
      const waiting = await waitFor('the barrier on the record', async () => {
        const progress = (await record(task.id)).progress?.[0];
        return progress?.states[0]?.waiting === 1 ? progress : undefined;
      });
      assert.deepEqual(waiting.groups, [{ group: 'g0', instances: 2, started: 2, running: 2, ended: {} }]);
      assert.deepEqual(waiting.states, [{ name: 'ready', count: 1, target: 2, waiting: 1 }]);
      runner.gate.open();
      await processing;
      const done = await record(task.id);
      assert.deepEqual(done.progress?.[0]?.groups, [
        { group: 'g0', instances: 2, started: 2, running: 0, ended: { success: 2 } },
      ]);
      const { entries } = await logOf(task.id);
      const progressEntries = entries.filter((entry) => entry.kind === 'progress');
      assert.ok(progressEntries.length >= 2, 'a progress entry per change');
      assert.ok(
        progressEntries.every((entry) => entry.kind === 'progress' && entry.run === task.id),
        'each names its run',
      );
    });
  });

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
        artifacts,
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
        artifacts,
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

  describe('a task of several runs', () => {
    // Three runs of 2, 3 and 4 instances with different params; the last has two groups of the same build.
    const threeRuns = (): RunSpec[] => [
      { name: 'small', groups: [{ id: 'peers', instances: 2, testParams: { size: '1' } }] },
      { name: 'medium', groups: [{ id: 'peers', instances: 3, testParams: { size: '2' } }] },
      {
        name: 'large',
        groups: [
          { id: 'peers', instances: 2, testParams: { size: '3' } },
          { id: 'seeds', instances: 2, testParams: { size: '3', role: 'seed' } },
        ],
      },
    ];
    const summary = (task: TaskRecord) =>
      task.runs.map((run) => [run.name, run.state, run.outcome, run.error ?? null]);
    const logMessages = async (logBus: LogBus, id: string): Promise<string[]> =>
      (await logBus.read(id, logStart)).flatMap((entry) => (entry.kind === 'log' ? [entry.msg] : []));

    it("runs them one after another from one build, each with its own id, outputs and outcome; the task's is the worst", async () => {
      const { taskRunner, createRunsTask, record, logOf, logBus, builder, runner, artifacts } = setup();
      runner.outcomes.set('medium/peers/1', 'failure');
      const task = await createRunsTask(threeRuns());
      await taskRunner.process(task.id);
      const done = await record(task.id);

      assert.equal(builder.builds.length, 1, 'one build serves every run');
      assert.deepEqual(
        runner.runs.map((run) => [run.runId, run.run.id, run.run.totalInstances, run.outputsDir]),
        task.runs.map((run) => [run.id, run.name, run.instances, run.outputsDir]),
      );
      assert.deepEqual(
        task.runs.map((run) => run.id),
        [`${task.id}-small`, `${task.id}-medium`, `${task.id}-large`],
      );
      assert.deepEqual(
        runner.runs.map((run) =>
          run.run.groups.map((group) => [group.id, group.instances, group.testParams]),
        ),
        [
          [['peers', 2, { size: '1' }]],
          [['peers', 3, { size: '2' }]],
          [
            ['peers', 2, { size: '3' }],
            ['seeds', 2, { size: '3', role: 'seed' }],
          ],
        ],
      );
      const shared = runner.runs[0]!.artifacts.get('peers');
      for (const run of runner.runs)
        for (const artifact of run.artifacts.values()) assert.equal(artifact, shared, 'the same artifact');
      assert.equal(new Set(done.runs.map((run) => run.outputsDir)).size, 3, 'each run has its own outputs');
      for (const run of done.runs) assert.ok(existsSync(run.outputsDir), `${run.name} has its outputs dir`);
      for (const run of runner.runs) assert.equal(existsSync(run.tempDir), false, 'temp dirs are removed');

      assert.deepEqual(summary(done), [
        ['small', 'complete', 'success', null],
        ['medium', 'complete', 'failure', '1 of 3 instances did not succeed (1 failure)'],
        ['large', 'complete', 'success', null],
      ]);
      assert.deepEqual(
        done.runs.map((run) => run.result?.groups),
        [
          { peers: { total: 2, ok: 2, outcomes: { success: 2 } } },
          { peers: { total: 3, ok: 2, outcomes: { success: 2, failure: 1 } } },
          {
            peers: { total: 2, ok: 2, outcomes: { success: 2 } },
            seeds: { total: 2, ok: 2, outcomes: { success: 2 } },
          },
        ],
      );
      for (const run of done.runs) {
        assert.ok(run.startedAt && run.endedAt && run.startedAt <= run.endedAt, 'each run has its times');
      }
      assert.ok(done.runs[0]!.endedAt! <= done.runs[1]!.startedAt!, 'the second starts after the first ends');

      assert.equal(done.state, 'complete');
      assert.equal(done.outcome, 'failure');
      assert.equal(done.error, 'run medium: 1 of 3 instances did not succeed (1 failure)');
      assert.equal(done.runId, `${task.id}-small`, "the task's run id is its first run's");
      assert.deepEqual(done.result, done.runs[0]!.result);
      assert.equal(done.outputsDir, done.runs[0]!.outputsDir);
      assert.deepEqual((await logOf(task.id)).end, {
        state: 'complete',
        outcome: 'failure',
        error: 'run medium: 1 of 3 instances did not succeed (1 failure)',
      });
      const runLines = (await logMessages(logBus, task.id)).filter((msg) => msg.startsWith('run '));
      assert.deepEqual(runLines, [
        `run small (${task.id}-small) started: 2 instances`,
        `run small (${task.id}-small) ended: success`,
        `run medium (${task.id}-medium) started: 3 instances`,
        `run medium (${task.id}-medium) ended: failure (1 of 3 instances did not succeed (1 failure))`,
        `run large (${task.id}-large) started: 4 instances`,
        `run large (${task.id}-large) ended: success`,
      ]);

      assert.equal(done.artifacts.length, 2, 'peers and seeds, with the one artifact');
      const [peers, seeds] = done.artifacts;
      assert.equal(peers?.artifact, seeds?.artifact);
      assert.deepEqual(
        done.artifacts.map((entry) => [entry.group, entry.builder]),
        [
          ['peers', 'exec:node'],
          ['seeds', 'exec:node'],
        ],
      );
      const stored = await artifacts.get(peers!.artifact);
      assert.equal(stored?.kind, 'bundle');
      assert.equal(stored?.task, task.id);
      assert.equal(stored?.path, (shared as { path: string }).path);
      assert.equal(peers!.artifact, `bundle:${path.basename(path.dirname(stored!.path!))}`);
    });

    it('builds each distinct build config once across runs, and only those', async () => {
      const { taskRunner, createRunsTask, record, builder, runner } = setup();
      const task = await createRunsTask([
        { name: 'a', groups: [{ id: 'x', buildConfig: { entry: 'a.ts' } }] },
        { name: 'b', groups: [{ id: 'x', buildConfig: { entry: 'b.ts' } }] },
        { name: 'c', groups: [{ id: 'y', buildConfig: { entry: 'a.ts' } }] },
      ]);
      await taskRunner.process(task.id);
      assert.equal((await record(task.id)).outcome, 'success');
      assert.deepEqual(
        builder.builds.map((build) => build.buildConfig),
        [{ entry: 'a.ts' }, { entry: 'b.ts' }],
      );
      assert.equal(runner.runs[0]!.artifacts.get('x'), runner.runs[2]!.artifacts.get('y'));
      assert.notEqual(runner.runs[0]!.artifacts.get('x'), runner.runs[1]!.artifacts.get('x'));
    });

    it('an error ends its run as error and the runs after it as canceled, saying why', async () => {
      const { taskRunner, createRunsTask, record, logOf, runner } = setup();
      runner.failures.set('medium', new DependencyError('the sync service did not come up within 10000 ms'));
      const task = await createRunsTask(threeRuns());
      await taskRunner.process(task.id);
      const done = await record(task.id);
      assert.deepEqual(summary(done), [
        ['small', 'complete', 'success', null],
        ['medium', 'complete', 'error', 'the sync service did not come up within 10000 ms'],
        [
          'large',
          'canceled',
          'canceled',
          'not run: run medium ended in error (the sync service did not come up within 10000 ms)',
        ],
      ]);
      assert.equal(done.runs[2]!.startedAt, undefined, 'the last run never started');
      assert.deepEqual(
        runner.runs.map((run) => run.run.id),
        ['small', 'medium'],
      );
      assert.equal(done.state, 'complete');
      assert.equal(done.outcome, 'error');
      assert.equal(done.error, 'run medium: the sync service did not come up within 10000 ms');
      assert.deepEqual((await logOf(task.id)).end, {
        state: 'complete',
        outcome: 'error',
        error: done.error,
      });
    });

    it('a failed build: the first run carries the error, the others do not run', async () => {
      const { taskRunner, createRunsTask, record, builder, runner } = setup();
      builder.failure = new BuildError('exec:node: esbuild could not resolve "left-pad"');
      const task = await createRunsTask(threeRuns());
      await taskRunner.process(task.id);
      const done = await record(task.id);
      const notRun = 'not run: run small ended in error (exec:node: esbuild could not resolve "left-pad")';
      assert.deepEqual(summary(done), [
        ['small', 'complete', 'error', 'exec:node: esbuild could not resolve "left-pad"'],
        ['medium', 'canceled', 'canceled', notRun],
        ['large', 'canceled', 'canceled', notRun],
      ]);
      assert.equal(done.outcome, 'error');
      assert.deepEqual(
        done.states.map((entry) => entry.state),
        ['queued', 'building', 'complete'],
      );
      assert.equal(runner.runs.length, 0);
    });

    it('a cancel during the second run cancels it and the rest; the first keeps its outcome', async () => {
      const { taskRunner, service, createRunsTask, record, logOf, runner } = setup();
      const first = new Gate();
      runner.gate = first;
      const firstStarted = runner.nextRun();
      const task = await createRunsTask(threeRuns());
      const processing = taskRunner.process(task.id);
      await firstStarted;
      // The first run waits on the first gate; the second will wait on its own.
      runner.gate = new Gate();
      const secondStarted = runner.nextRun();
      first.open();
      const second = await secondStarted;
      assert.equal(second.run.id, 'medium');
      await service.cancel(task.id);
      assert.equal(second.signal.aborted, true);
      await processing;
      const done = await record(task.id);
      assert.deepEqual(summary(done), [
        ['small', 'complete', 'success', null],
        ['medium', 'canceled', 'canceled', 'canceled on request'],
        ['large', 'canceled', 'canceled', 'canceled on request'],
      ]);
      assert.deepEqual(
        done.runs[1]!.result?.instances.map((instance) => instance.outcome),
        ['canceled', 'canceled', 'canceled'],
      );
      assert.equal(done.runs[2]!.result, undefined);
      assert.equal(runner.runs.length, 2, 'the last run never started');
      assert.equal(done.state, 'canceled');
      assert.equal(done.outcome, 'canceled');
      assert.deepEqual((await logOf(task.id)).end, {
        state: 'canceled',
        outcome: 'canceled',
        error: 'run medium: canceled on request',
      });
    });

    it('a shutdown during a run ends it as error and the rest as canceled', async () => {
      const { taskRunner, createRunsTask, record, runner } = setup();
      runner.gate = new Gate();
      const started = runner.nextRun();
      const task = await createRunsTask(threeRuns());
      const processing = taskRunner.process(task.id);
      await started;
      taskRunner.stopAll();
      await processing;
      const done = await record(task.id);
      assert.deepEqual(
        summary(done).map(([name, , outcome]) => [name, outcome]),
        [
          ['small', 'error'],
          ['medium', 'canceled'],
          ['large', 'canceled'],
        ],
      );
      assert.equal(done.runs[0]!.error, 'the daemon stopped during the run');
      assert.equal(done.outcome, 'error');
    });

    it('after a restart, ends the run that was going as error and the later ones as canceled, cleaning up each', async () => {
      const { taskRunner, store, createRunsTask, record, runner } = setup();
      const task = await createRunsTask(threeRuns());
      await store.transition(task.id, ['queued'], 'running', { daemonId: 'daemon-a' });
      const [small, medium, large] = task.runs;
      await store.progress(task.id, ['running'], {
        runs: [
          { ...small!, state: 'complete', outcome: 'success', startedAt: '2026-01-01T00:00:00.000Z' },
          { ...medium!, state: 'running', startedAt: '2026-01-01T00:01:00.000Z' },
          large!,
        ],
      });
      assert.deepEqual(await taskRunner.recoverInterrupted(), [task.id]);
      const done = await record(task.id);
      assert.deepEqual(summary(done), [
        ['small', 'complete', 'success', null],
        ['medium', 'complete', 'error', 'daemon restarted during the run'],
        [
          'large',
          'canceled',
          'canceled',
          'not run: run medium ended in error (daemon restarted during the run)',
        ],
      ]);
      assert.equal(done.error, 'run medium: daemon restarted during the run');
      assert.deepEqual(
        runner.interrupted.map((entry) => entry.runId),
        [medium!.id, large!.id],
      );
    });
  });

  describe('prebuilt artifacts', () => {
    const prebuilt = async (artifacts: ArtifactStore, dir: string): Promise<{ id: string; file: string }> => {
      const file = path.join(dir, 'prebuilt', randomBytes(8).toString('hex'), 'bundle.mjs');
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, '// built earlier\n');
      const record = await artifacts.record(
        { kind: 'bundle', path: file, cached: false },
        { builder: 'exec:node', plan: 'placebo', task: 'earlier' },
      );
      return { id: record.id, file };
    };

    it('a group that names an artifact is not built; its run starts from it', async () => {
      const { taskRunner, createTask, record, builder, runner, artifacts } = setup();
      const { id, file } = await prebuilt(artifacts, scratch.dir);
      const task = await createTask([{ id: 'single', artifact: id, instances: 2 }]);
      await taskRunner.process(task.id);
      const done = await record(task.id);
      assert.equal(done.outcome, 'success');
      assert.equal(builder.builds.length, 0, 'nothing was built');
      assert.deepEqual(runner.runs[0]!.artifacts.get('single'), { kind: 'bundle', path: file, cached: true });
      assert.deepEqual(done.artifacts, [{ group: 'single', builder: 'exec:node', artifact: id }]);
    });

    it('an artifact gone since it was built ends its run as error saying so, and the rest are not run', async () => {
      const { taskRunner, createRunsTask, record, builder, runner, artifacts } = setup();
      const { id, file } = await prebuilt(artifacts, scratch.dir);
      await rm(file);
      const task = await createRunsTask([
        { name: 'a', groups: [{ id: 'single', artifact: id }] },
        { name: 'b', groups: [{ id: 'single', artifact: id }] },
      ]);
      await taskRunner.process(task.id);
      const done = await record(task.id);
      const message =
        `group single: artifact ${id} no longer exists (its bundle is gone from the daemon's cache); ` +
        'build it again ("testground build") or leave run.artifact unset';
      assert.deepEqual(summary(done), [
        ['a', 'complete', 'error', message],
        ['b', 'canceled', 'canceled', `not run: run a ended in error (${message})`],
      ]);
      assert.equal(builder.builds.length, 0);
      assert.equal(runner.runs.length, 0);
    });

    const summary = (task: TaskRecord) =>
      task.runs.map((run) => [run.name, run.state, run.outcome, run.error ?? null]);
  });

  describe('build tasks', () => {
    it('build every distinct group, record the artifacts, list them per group, and run nothing', async () => {
      const { taskRunner, createTask, record, logOf, builder, runner, artifacts } = setup();
      const task = await createTask(
        [{ id: 'a' }, { id: 'b', buildConfig: { entry: 'other.ts' } }, { id: 'c' }],
        { type: 'build' },
      );
      assert.deepEqual(task.runs, []);
      await taskRunner.process(task.id);
      const done = await record(task.id);
      assert.equal(done.state, 'complete');
      assert.equal(done.outcome, 'success');
      assert.deepEqual(
        done.states.map((entry) => entry.state),
        ['queued', 'building', 'complete'],
      );
      assert.deepEqual((await logOf(task.id)).end, { state: 'complete', outcome: 'success' });
      assert.equal(builder.builds.length, 2);
      assert.equal(runner.runs.length, 0);
      assert.deepEqual(
        done.artifacts.map((entry) => entry.group),
        ['a', 'b', 'c'],
      );
      assert.equal(done.artifacts[0]!.artifact, done.artifacts[2]!.artifact);
      assert.notEqual(done.artifacts[0]!.artifact, done.artifacts[1]!.artifact);
      for (const entry of done.artifacts) {
        const stored = await artifacts.get(entry.artifact);
        assert.ok(stored, `${entry.artifact} is recorded`);
        assert.equal(stored.task, task.id);
        assert.equal(stored.plan, 'placebo');
        assert.equal(await artifacts.exists(stored), true, 'and is on disk');
      }
    });

    it('a failing build ends the task as error; a cancel during it as canceled', async () => {
      const { taskRunner, service, createTask, record, logOf, builder } = setup();
      builder.failure = new BuildError('exec:node: index.ts: Unexpected "}"');
      const failing = await createTask([{}], { type: 'build' });
      await taskRunner.process(failing.id);
      const failed = await record(failing.id);
      assert.equal(failed.outcome, 'error');
      assert.equal(failed.error, 'exec:node: index.ts: Unexpected "}"');

      builder.failure = undefined;
      builder.gate = new Gate();
      const building = builder.nextBuild();
      const held = await createTask([{}], { type: 'build' });
      const processing = taskRunner.process(held.id);
      await building;
      await service.cancel(held.id);
      await processing;
      const canceled = await record(held.id);
      assert.equal(canceled.state, 'canceled');
      assert.equal(canceled.outcome, 'canceled');
      assert.equal(canceled.error, 'canceled on request');
      assert.deepEqual((await logOf(held.id)).end, {
        state: 'canceled',
        outcome: 'canceled',
        error: 'canceled on request',
      });
    });
  });
});

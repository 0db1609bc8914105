import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { packPlanDirectory } from '../../cli/pack-plan.ts';
import { ConflictError, NotFoundError, ValidationError } from '../../core/errors.ts';
import { logStart } from '../../core/task-log.ts';
import { ArtifactStore } from '../../daemon/artifact-store.ts';
import { LogBus } from '../../daemon/log-bus.ts';
import { OutputsStore } from '../../daemon/outputs-store.ts';
import { redisOptions } from '../../daemon/redis-connection.ts';
import { TaskQueue } from '../../daemon/task-queue.ts';
import { TaskRunner } from '../../daemon/task-runner.ts';
import { TaskService, type TaskServiceDeps } from '../../daemon/task-service.ts';
import { TaskStore } from '../../daemon/task-store.ts';
import { resolveWithRuns } from '../helpers/app.ts';
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

  const setup = (
    t: { after: (fn: () => Promise<void>) => void },
    options: { resolve?: TaskServiceDeps['resolve'] } = {},
  ) => {
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
    const artifacts = new ArtifactStore({
      redis: redis.client,
      prefix,
      images: { imageExists: async () => false },
    });
    const taskRunner = new TaskRunner({
      store,
      logBus,
      builders: new Map([[builder.id, builder]]),
      runners: new Map([[runner.id, runner]]),
      artifacts,
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
      artifacts,
      plansRoot,
      known: componentsOf(
        [new FakeBuilder('exec:node'), new FakeBuilder('docker:node')],
        [new FakeRunner('local:exec'), new FakeRunner('local:docker')],
      ),
      archiveLimits: { maxBytes: 8 << 20, maxEntries: 1_000 },
      logger,
      ...(options.resolve ? { resolve: options.resolve } : {}),
    });
    const submit = (testCase = 'ok', instances = 2, runIds?: string[]) =>
      service.submitRun({
        compositionText: composition(testCase, instances),
        archivePath,
        createdBy: 'alice',
        ...(runIds ? { runIds } : {}),
      });
    return {
      store,
      logBus,
      queue,
      builder,
      runner,
      taskRunner,
      outputs,
      artifacts,
      plansRoot,
      service,
      submit,
    };
  };

  it('supersede cancels the older queued tasks of the same repo, branch, plan and case, and only those', async (t) => {
    const { service } = setup(t);
    const submitWith = (
      metadata: { repo?: string; branch?: string; commit?: string },
      supersede = false,
      testCase = 'ok',
    ) =>
      service.submitRun({
        compositionText: composition(testCase, 1),
        archivePath,
        createdBy: 'ci',
        metadata,
        supersede,
      });
    const main = { repo: 'org/repo', branch: 'main', commit: 'a1' };
    const older = await submitWith(main);
    const otherBranch = await submitWith({ ...main, branch: 'dev' });
    const otherCase = await submitWith(main, false, 'failure');
    const newer = await submitWith({ ...main, commit: 'b2' }, true);

    assert.deepEqual(newer.supersedes, [older.id]);
    const record = await service.get(newer.id);
    assert.deepEqual(record.supersedes, [older.id], 'recorded on the new task');
    assert.deepEqual(record.metadata, { repo: 'org/repo', branch: 'main', commit: 'b2' });
    const superseded = await service.get(older.id);
    assert.equal(superseded.state, 'canceled');
    assert.equal(superseded.outcome, 'canceled');
    assert.equal(superseded.error, `superseded by task ${newer.id} (same repo, branch, plan and case)`);
    assert.equal((await service.get(otherBranch.id)).state, 'queued', 'another branch is left alone');
    assert.equal((await service.get(otherCase.id)).state, 'queued', 'another test case is left alone');

    const unnamed = await submitWith({}, true);
    assert.deepEqual(unnamed.supersedes, [], 'without a repo and a branch nothing is matched');
    assert.equal((await service.get(otherBranch.id)).state, 'queued');
  });

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
      task.resolved.runs.map((run) => [run.id, run.groups.map((group) => [group.id, group.instances])]),
      [['default', [['single', 2]]]],
    );
    assert.deepEqual(
      task.runs.map((run) => [run.id, run.name, run.state, run.instances]),
      [[task.id, 'default', 'pending', 2]],
      'a composition without [[runs]] is one run whose id is the task id',
    );
    assert.equal(task.runId, task.id);
    assert.equal(task.type, 'run');
    assert.deepEqual(task.warnings, []);
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

  describe('several runs, artifacts and warnings (the composition side stood in by resolveWithRuns)', () => {
    const threeRuns = resolveWithRuns([
      { id: 'small', instances: 2, testParams: { size: '1' } },
      { id: 'medium', instances: 3, testParams: { size: '2' } },
      { id: 'large', instances: 4, testParams: { size: '3' } },
    ]);
    const refusal = (error: unknown): { message: string; details: { path: string; message: string }[] } => {
      assert.ok(error instanceof ValidationError, String(error));
      return error;
    };

    it('records each run in order with its id, instances and outputs directory', async (t) => {
      const { outputs, submit } = setup(t, { resolve: threeRuns });
      const task = await submit();
      assert.deepEqual(
        task.runs.map((run) => [run.id, run.name, run.instances, run.state, run.outputsDir]),
        ['small', 'medium', 'large'].map((name, index) => [
          `${task.id}-${name}`,
          name,
          index + 2,
          'pending',
          outputs.runDir('local:exec', 'placebo', `${task.id}-${name}`),
        ]),
      );
      assert.equal(task.instances, 9, 'instances over all runs');
      assert.equal(task.runId, `${task.id}-small`);
      assert.equal(task.outputsDir, task.runs[0]!.outputsDir);
      assert.deepEqual(
        task.resolved.runs.map((run) => [run.id, run.groups[0]?.testParams.size]),
        [
          ['small', '1'],
          ['medium', '2'],
          ['large', '3'],
        ],
      );
    });

    it('run ids pick and order the runs; an unknown name is refused, listing the known ones', async (t) => {
      const { queue, plansRoot, submit } = setup(t, { resolve: threeRuns });
      const picked = await submit('ok', 2, ['large', 'small']);
      assert.deepEqual(
        picked.runs.map((run) => run.name),
        ['large', 'small'],
      );
      assert.deepEqual(
        picked.resolved.runs.map((run) => run.id),
        ['large', 'small'],
      );
      assert.equal(picked.instances, 6);
      await assert.rejects(submit('ok', 2, ['small', 'huge']), (error: unknown) => {
        assert.deepEqual(refusal(error).details, [
          {
            path: 'run_ids',
            message: '"huge" is not a run of this composition; its runs are: small, medium, large',
          },
        ]);
        return true;
      });
      assert.equal((await queue.counts()).waiting, 1, 'only the first was queued');
      assert.equal((await readdir(plansRoot)).length, 1, 'the refused one left no plan behind');
    });

    it("keeps the resolver's warnings on the task and logs each as a warn line before the build", async (t) => {
      const warning = {
        path: 'global.build.selectors',
        message: 'ignored: Go build tags have no meaning for exec:node',
      };
      const { logBus, submit } = setup(t, { resolve: resolveWithRuns([{ id: 'default' }], [warning]) });
      const task = await submit();
      assert.deepEqual(task.warnings, [warning]);
      const entries = await logBus.read(task.id, logStart);
      assert.deepEqual(
        entries.map((entry) => (entry.kind === 'log' ? [entry.kind, entry.level, entry.msg] : [entry.kind])),
        [['state'], ['log', 'warn', `${warning.path}: ${warning.message}`]],
      );
    });

    it('refuses a group naming an unknown artifact, or one of a kind the runner cannot start, naming both', async (t) => {
      const unknown = setup(t, {
        resolve: resolveWithRuns([{ id: 'default', artifact: 'bundle:0badc0de' }]),
      });
      await assert.rejects(unknown.submit(), (error: unknown) => {
        const { details } = refusal(error);
        assert.equal(details.length, 1);
        assert.equal(details[0]!.path, 'groups[0].run.artifact');
        assert.match(
          details[0]!.message,
          /^artifact "bundle:0badc0de" \(run\.artifact, or --use-build\) is not known/,
        );
        return true;
      });
      assert.deepEqual(await readdir(unknown.plansRoot).catch(() => []), []);

      const imageId = `sha256:${'ab'.repeat(32)}`;
      const image = setup(t, { resolve: resolveWithRuns([{ id: 'default', artifact: imageId }]) });
      await image.artifacts.record(
        { kind: 'image', imageId, cached: false },
        { builder: 'docker:node', plan: 'placebo', task: 'earlier' },
      );
      await assert.rejects(image.submit(), (error: unknown) => {
        assert.deepEqual(refusal(error).details, [
          {
            path: 'groups[0].run.artifact',
            message:
              `artifact "${imageId}" is an image (built by docker:node), but runner "local:exec" starts ` +
              // The fake docker:node of this test makes bundles.
              'bundles; use an artifact built by exec:node, docker:node',
          },
        ]);
        return true;
      });

      const fits = setup(t, { resolve: resolveWithRuns([{ id: 'default', artifact: 'bundle:1234abcd' }]) });
      const bundle = await fits.artifacts.record(
        { kind: 'bundle', path: '/cache/exec-node/1234abcd/bundle.mjs', cached: false },
        { builder: 'exec:node', plan: 'placebo', task: 'earlier' },
      );
      assert.equal(bundle.id, 'bundle:1234abcd', "a bundle's id is the name of its cache directory");
      const accepted = await fits.submit();
      assert.equal(accepted.resolved.runs[0]?.groups[0]?.artifact, 'bundle:1234abcd');
    });

    it('refuses a run name that cannot be part of a run id', async (t) => {
      const { submit } = setup(t, { resolve: resolveWithRuns([{ id: 'two words' }]) });
      await assert.rejects(submit(), (error: unknown) => {
        const { details } = refusal(error);
        assert.equal(details[0]?.path, 'runs[0].id');
        assert.match(details[0]!.message, /^"two words" cannot name a run/);
        return true;
      });
    });

    it('submitBuild queues a build task: no runs and no instances, just what to build', async (t) => {
      const { service, queue } = setup(t, { resolve: threeRuns });
      const task = await service.submitBuild({
        compositionText: composition('ok', 2),
        archivePath,
        createdBy: 'bob',
      });
      assert.equal(task.type, 'build');
      assert.deepEqual(task.runs, []);
      assert.equal(task.instances, 0);
      assert.equal(task.runId, task.id);
      assert.equal(task.outputsDir, '');
      assert.equal(task.resolved.runs.length, 3, 'it builds what every run needs');
      assert.equal((await queue.counts()).waiting, 1);
    });
  });
});

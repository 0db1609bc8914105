/**
 * The retention collector over a real home, with the real TaskService, TaskStore, queue and task runner on
 * a real redis-server (fake builder and runner): `testground gc --dry-run` lists and `testground gc` removes
 * what is past retention, never what a queued, building or running task needs, and a periodic collection
 * keeps the home under its size limit while tasks keep arriving.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import request from 'supertest';
import { gcReportSchema, submittedSchema } from '../../api/schemas.ts';
import type { TaskRecord, TaskState } from '../../core/task.ts';
import type { ImageInfo } from '../../docker/container-engine.ts';
import { diskUsage } from '../../daemon/disk-usage.ts';
import { RetentionCollector, type RetentionReport } from '../../daemon/retention-collector.ts';
import { buildTestApp, packPlacebo, placeboComposition, type TestApp } from '../helpers/app.ts';
import { Gate } from '../helpers/fake-components.ts';
import { runCli, scratchDir, waitFor } from '../helpers/processes.ts';

/** Plan images "in the engine": listed with their labels, removed on request (or refused, when in use). */
class FakeImages {
  readonly images: ImageInfo[];
  readonly removed: string[] = [];
  readonly inUse = new Set<string>();

  constructor(images: ImageInfo[]) {
    this.images = images;
  }

  async listImages(): Promise<ImageInfo[]> {
    return this.images.filter((image) => !this.removed.includes(image.id));
  }

  async removeImage(ref: string): Promise<void> {
    if (this.inUse.has(ref)) throw new Error(`conflict: unable to remove ${ref}: image is being used`);
    this.removed.push(ref);
  }
}

const longAgo = '2020-01-01T00:00:00.000Z';
const planImage = (id: string, plan: string, created = longAgo): ImageInfo => ({
  id,
  tags: [`testground-plan/${plan}:x`],
  labels: { 'testground.role': 'plan-image', 'testground.daemon': 'test', 'testground.plan': plan },
  created,
  size: 1000,
});

const submit = async (api: TestApp, global: Record<string, unknown> = {}): Promise<string> => {
  const response = await request(api.app)
    .post('/api/v1/runs')
    .field('composition', placeboComposition(global))
    .attach('plan', await packPlacebo(), 'plan.tar.gz');
  assert.equal(response.status, 202, JSON.stringify(response.body));
  return submittedSchema.parse(response.body).task_id;
};

const stateOf = async (api: TestApp, id: string): Promise<TaskState | undefined> =>
  (await api.store.get(id))?.state;

const listen = async (api: TestApp): Promise<{ url: string; server: Server }> => {
  const server = api.app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
};

describe('retention', () => {
  it('gc --dry-run lists and gc removes what is past retention, keeping what unfinished tasks need', async (t) => {
    const images = new FakeImages([
      planImage('sha256:other-plan', 'other'),
      planImage('sha256:placebo', 'placebo'),
    ]);
    const api = await buildTestApp(t, {
      retention: {
        policy: {
          outputs: { maxAgeMs: 1 },
          snapshots: { maxAgeMs: 1 },
          cache: { maxAgeMs: 1 },
          images: { maxAgeMs: 1 },
        },
        images,
      },
    });
    api.runner.writesOutputs = true;

    // An ended task: everything it left is past retention.
    const ended = await submit(api, { build_config: { entry: 'ended.ts' } });
    await waitFor('the first task to end', async () =>
      (await stateOf(api, ended)) === 'complete' ? true : undefined,
    );
    const endedTask = (await api.store.get(ended))!;
    const endedBundle = endedTask.artifacts[0]!.artifact;
    // A running task, a task building the placebo plan, and a queued one (the worker takes two at a time).
    api.runner.gate = new Gate();
    const running = await submit(api);
    await waitFor('the run to start', async () =>
      (await stateOf(api, running)) === 'running' ? true : undefined,
    );
    api.builder.gate = new Gate();
    const building = await submit(api, { build_config: { entry: 'other.ts' } });
    await waitFor('the build to start', async () =>
      (await stateOf(api, building)) === 'building' ? true : undefined,
    );
    const queued = await submit(api);
    const runningTask = (await api.store.get(running))!;
    const runningBundle = runningTask.artifacts[0]!.artifact;
    await new Promise((resolve) => setTimeout(resolve, 20));

    const { url, server } = await listen(api);
    t.after(() => new Promise((resolve) => server.close(resolve)));
    const dry = await runCli(['--endpoint', url, 'gc', '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    const wouldGo = [
      `would remove outputs ${ended} `,
      `would remove snapshots ${ended} `,
      `would remove cache ${endedBundle} `,
      'would remove images sha256:other-plan ',
    ];
    for (const line of wouldGo) assert.ok(dry.stdout.includes(line), `"${line}" in:\n${dry.stdout}`);
    for (const line of [
      `kept outputs ${running}: task ${running} is running`,
      `kept snapshots ${running}: task ${running} is running`,
      `kept snapshots ${building}: task ${building} is building`,
      `kept snapshots ${queued}: task ${queued} is queued`,
      `kept cache ${runningBundle}: task ${running} is running`,
      'kept images sha256:placebo: plan placebo is being built',
    ]) {
      assert.ok(dry.stdout.includes(line), `"${line}" in:\n${dry.stdout}`);
    }
    assert.match(dry.stdout, /would remove 4 entries/);
    // A dry run removes nothing.
    assert.ok(existsSync(endedTask.outputsDir));
    assert.ok(existsSync(endedTask.planDir));
    assert.deepEqual(images.removed, []);

    const collected = await runCli(['--endpoint', url, 'gc']);
    assert.equal(collected.code, 0, collected.stderr);
    for (const line of wouldGo) {
      const removedLine = line.replace('would remove', 'removed');
      assert.ok(collected.stdout.includes(removedLine), `"${removedLine}" in:\n${collected.stdout}`);
    }
    assert.ok(!existsSync(endedTask.outputsDir));
    assert.ok(!existsSync(endedTask.planDir));
    assert.ok(!existsSync(path.join(api.dirs.cache, endedBundle.slice('bundle:'.length))));
    assert.equal(await api.artifacts.get(endedBundle), undefined, 'the removed bundle is forgotten');
    assert.deepEqual(images.removed, ['sha256:other-plan']);
    // What the unfinished tasks need is all still there.
    for (const id of [running, building, queued]) {
      assert.ok(existsSync((await api.store.get(id))!.planDir), `snapshot of ${id}`);
    }
    assert.ok(existsSync(runningTask.outputsDir));
    assert.ok(existsSync(path.join(api.dirs.cache, runningBundle.slice('bundle:'.length), 'bundle.mjs')));

    // Once they end, they go too.
    api.builder.gate.open();
    api.runner.gate.open();
    await waitFor('every task to end', async () => {
      const states = await Promise.all([running, building, queued].map((id) => stateOf(api, id)));
      return states.every((state) => state === 'complete') ? true : undefined;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const after = gcReportSchema.parse((await request(api.app).post('/api/v1/gc')).body);
    assert.deepEqual(after.kept, []);
    assert.equal(after.usage.outputs.entries, 0);
    assert.equal(after.usage.snapshots.entries, 0);
    assert.equal(after.usage.cache.entries, 0);
    assert.deepEqual(images.removed, ['sha256:other-plan', 'sha256:placebo']);
  });

  it('a periodic collection keeps the home under its size limit while tasks keep arriving', async (t) => {
    const limit = 256 * 1024;
    const api = await buildTestApp(t, {
      retention: {
        policy: { outputs: {}, snapshots: {}, cache: {}, images: {}, homeMaxBytes: limit },
      },
    });
    api.runner.writesOutputs = true;
    const home = async (): Promise<number> =>
      (await diskUsage(api.dirs.outputs)).bytes +
      (await diskUsage(api.dirs.plans)).bytes +
      (await diskUsage(api.dirs.cache)).bytes;
    const reports: RetentionReport[] = [];
    api.retention!.start(50, (report) => reports.push(report));

    const ids: string[] = [];
    let peak = 0;
    const quietReports: RetentionReport[] = [];
    for (let burst = 0; burst < 12; burst += 1) {
      // Tasks arrive while the collector runs; a different build config now and then grows the cache too.
      const arrived: string[] = [];
      for (let index = 0; index < 4; index += 1) {
        arrived.push(await submit(api, { build_config: { entry: `entry-${(burst + index) % 5}.ts` } }));
        peak = Math.max(peak, await home());
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      ids.push(...arrived);
      await waitFor('the burst to end', async () => {
        const states = await Promise.all(arrived.map((id) => stateOf(api, id)));
        return states.every((state) => state === 'complete') ? true : undefined;
      });
      // The first collection to start after the burst ended sees every task of it.
      const seen = reports.length;
      await waitFor('a collection after the burst', async () =>
        reports.length >= seen + 2 ? true : undefined,
      );
      quietReports.push(reports[seen + 1]!);
    }

    // Without the collector the home would hold every task's snapshot and outputs.
    const removed = reports.flatMap((report) => report.removed);
    assert.ok(removed.length > 48, `${removed.length} entries removed`);
    assert.ok(
      quietReports.every((report) => report.homeBytes <= limit),
      `home after each burst's collection: ${quietReports.map((report) => report.homeBytes).join(', ')}`,
    );
    // While tasks arrive, a collection's measurement afterwards includes tasks that arrived (and some that
    // ended) meanwhile; the next one removes those.
    t.diagnostic(
      `home after each collection (needed by unfinished tasks): ${reports.map((report) => `${report.homeBytes} (${report.neededBytes})`).join(', ')}`,
    );
    const final = await home();
    assert.ok(final <= limit, `home ${final} bytes, limit ${limit}`);
    // Least recently used go first: the newest task's outputs are still there.
    assert.ok(existsSync((await api.store.get(ids.at(-1)!))!.outputsDir));
    t.diagnostic(`home: peak ${peak} bytes between collections, ${final} at the end (limit ${limit})`);
  });

  it('keeps an image an unfinished task names, and reports an image the engine refuses to remove', async (t) => {
    const scratch = await scratchDir('retention');
    t.after(() => scratch.remove());
    const dirs = {
      outputs: path.join(scratch.dir, 'outputs'),
      snapshots: path.join(scratch.dir, 'tasks'),
      bundles: path.join(scratch.dir, 'cache'),
      uploads: path.join(scratch.dir, 'uploads'),
    };
    for (const dir of Object.values(dirs)) await mkdir(dir, { recursive: true });
    // An upload a dead request left two hours ago goes; one arriving now stays.
    await writeFile(path.join(dirs.uploads, 'left'), 'x');
    const twoHoursAgo = new Date(Date.now() - 7_200_000);
    await utimes(path.join(dirs.uploads, 'left'), twoHoursAgo, twoHoursAgo);
    await writeFile(path.join(dirs.uploads, 'arriving'), 'x');
    // A snapshot whose task record is gone (a Redis that lost its data) is removed; one being submitted is not.
    await mkdir(path.join(dirs.snapshots, 'orphan'));
    await writeFile(path.join(dirs.snapshots, 'orphan', 'manifest.toml'), 'name = "x"\n');
    await mkdir(path.join(dirs.snapshots, 'arriving'));
    const queued = {
      id: 'queuedtask',
      state: 'queued',
      plan: 'p',
      states: [],
      artifacts: [],
      resolved: { runs: [{ groups: [{ artifact: 'sha256:named' }] }] },
    } as unknown as TaskRecord;
    const images = new FakeImages([
      planImage('sha256:named', 'p'),
      planImage('sha256:busy', 'p'),
      planImage('sha256:fresh', 'p', new Date().toISOString()),
    ]);
    images.inUse.add('sha256:busy');
    const collector = new RetentionCollector({
      dirs,
      tasks: {
        list: async (filter) => (filter.state === 'queued' ? [queued] : []),
        states: async (ids) => ids.map(() => undefined),
      },
      isSubmitting: (id) => id === 'arriving',
      images,
      daemonId: 'test',
      policy: {
        outputs: {},
        snapshots: { maxAgeMs: 60_000 },
        cache: {},
        images: { maxAgeMs: 60_000 },
      },
      logger: pino({ level: 'silent' }),
      now: () => new Date(Date.now() + 120_000),
    });
    const report = await collector.collect({ dryRun: false });
    assert.deepEqual(report.removed.map((entry) => `${entry.kind} ${entry.id} ${entry.reason}`).sort(), [
      'images sha256:fresh age',
      'snapshots orphan age',
      'snapshots upload:left unreferenced',
    ]);
    assert.deepEqual(report.kept, [
      { kind: 'snapshots', id: 'arriving', why: 'task arriving is being submitted' },
      { kind: 'images', id: 'sha256:named', why: 'task queuedtask is queued' },
    ]);
    assert.equal(report.failures.length, 1, JSON.stringify(report.failures));
    assert.match(report.failures[0]!.message, /image is being used/);
    assert.deepEqual(images.removed, ['sha256:fresh']);
    assert.ok(existsSync(path.join(dirs.snapshots, 'arriving')));
    assert.ok(existsSync(path.join(dirs.uploads, 'arriving')));
    assert.ok(!existsSync(path.join(dirs.uploads, 'left')));
  });
});

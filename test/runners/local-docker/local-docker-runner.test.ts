/**
 * LocalDockerRunner in-process against the real engine: a sync service that exits before it listens
 * ends the run with its output (instances are created while it starts: theirs go too), an instance's
 * container goes as soon as it ends, and a run's objects are labelled once and for all (kept here with
 * keep_containers, then removed by run id) while a stalled instance is stopped at the run timeout.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import type { ResolvedGroup, ResolvedRun } from '../../../core/run.ts';
import type { DockerEngine } from '../../../docker/docker-engine.ts';
import {
  daemonLabel,
  groupLabel,
  instanceLabel,
  labelFilter,
  planLabel,
  roleLabel,
  runIdLabel,
} from '../../../docker/labels.ts';
import { RuntimeImageProvider, type RuntimeImage } from '../../../builders/runtime-image.ts';
import { LocalDockerRunner } from '../../../runners/local-docker/local-docker-runner.ts';
import type { RunInput } from '../../../runners/runner.ts';
import { SyncServiceBundle } from '../../../runners/sync-service-bundle.ts';
import {
  buildTestImage,
  connectEngine,
  removeScope,
  testRuntimeDaemonId,
  testScope,
} from '../../docker/docker-fixtures.ts';
import { MemoryTaskLog } from '../../helpers/memory-task-log.ts';

const logger = pino({ level: 'silent' });
const suffix = randomBytes(4).toString('hex');
// The run objects of these tests carry this daemon id. Images it labels stay: the sync service image is
// the machine's cache, and another test file's daemon may be using it right now.
const daemonId = `tests-runner-${suffix}`;
// The broken sync service's image is this test file's alone: everything labelled with this id goes.
const brokenDaemonId = `tests-runner-broken-${suffix}`;
// The test that sweeps its daemon's leftovers runs beside the others (the suite is concurrent): under a
// daemon id of its own, its sweep cannot take the objects of their runs, which are in progress.
const sweepingDaemonId = `tests-runner-sweeping-${suffix}`;
const scope = testScope('runner');
let engine: DockerEngine;
let runtimeImages: RuntimeImageProvider;
let runtime: RuntimeImage;
let scratch: string;
let instanceImage: string;

before(async () => {
  engine = await connectEngine();
  runtimeImages = new RuntimeImageProvider(engine, { daemonId: testRuntimeDaemonId });
  runtime = await runtimeImages.ensure({ log: () => undefined });
  scratch = await mkdtemp(path.join(os.tmpdir(), 'tg-local-docker-runner-'));
  // Group `ok` records success at once; any other group never ends by itself.
  const script = `if (process.env.TEST_GROUP_ID === 'ok') console.log(JSON.stringify({ event: { type: 'finish', outcome: 'ok' } })); else setInterval(() => {}, 1000);`;
  instanceImage = await buildTestImage(engine, {
    base: runtime.imageId,
    entrypoint: ['node', '-e', script],
    tag: `testground-test/runner-instance:${suffix}`,
    labels: scope.labels,
  });
});

after(async () => {
  if (engine) {
    await removeScope(engine, labelFilter({ [daemonLabel]: daemonId }));
    await removeScope(engine, labelFilter({ [daemonLabel]: brokenDaemonId }));
    await removeScope(engine, labelFilter({ [daemonLabel]: sweepingDaemonId }));
    await removeScope(engine, scope.filter);
  }
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

const group = (id: string): ResolvedGroup => ({
  id,
  instances: 1,
  builder: 'docker:node',
  buildConfig: {},
  resources: {},
  testParams: {},
  dependencies: [],
});

function runInput(
  runId: string,
  groups: ResolvedGroup[],
  overrides: Partial<ResolvedRun> = {},
): RunInput & { log: MemoryTaskLog } {
  return {
    runId,
    run: {
      id: 'default',
      plan: 'runner-test',
      testCase: 'case',
      builder: 'docker:node',
      runner: 'local:docker',
      totalInstances: groups.reduce((sum, g) => sum + g.instances, 0),
      runConfig: {},
      timeoutMs: 60_000,
      disableMetrics: true,
      groups,
      ...overrides,
    },
    artifacts: new Map(groups.map((g) => [g.id, { kind: 'image', imageId: instanceImage, cached: false }])),
    outputsDir: path.join(scratch, runId, 'outputs'),
    tempDir: path.join(scratch, runId, 'temp'),
    startTime: new Date(),
    log: new MemoryTaskLog(),
    signal: new AbortController().signal,
  };
}

const newRunId = (): string => `t${randomBytes(5).toString('hex')}`;

/** A runner on the test engine with the real sync service bundle, its objects labelled with `id`. */
function newRunner(id: string): LocalDockerRunner {
  return new LocalDockerRunner({
    engine,
    runtime: runtimeImages,
    syncService: new SyncServiceBundle(path.join(scratch, 'sync-service')),
    daemonId: id,
    logger,
  });
}

describe('LocalDockerRunner', { concurrency: true }, () => {
  it('ends the run with an error naming the sync service output when the service exits before it listens', async () => {
    const broken = path.join(scratch, 'broken-sync-service.mjs');
    await writeFile(
      broken,
      "console.log('starting up'); console.error('cannot bind 0.0.0.0:5050: address in use'); process.exit(1);\n",
    );
    const runner = new LocalDockerRunner({
      engine,
      runtime: runtimeImages,
      syncService: { path: async () => broken },
      daemonId: brokenDaemonId,
      logger,
    });
    const runId = newRunId();
    await assert.rejects(runner.run(runInput(runId, [group('ok')])), (error: Error) => {
      assert.match(
        error.message,
        new RegExp(`the sync service container tg-${runId}-sync exited before it listened`),
      );
      // stdout and stderr are separate streams: their lines may arrive in either order.
      const output = error.message.slice(error.message.indexOf('its output: '));
      assert.match(output, /starting up/);
      assert.match(output, /cannot bind 0\.0\.0\.0:5050: address in use/);
      return true;
    });
    const filter = labelFilter({ [runIdLabel]: runId });
    assert.deepEqual(await engine.listContainers(filter, { all: true }), [], 'its container is removed');
    assert.deepEqual(await engine.listNetworks(filter), [], 'its networks are removed');
  });

  it('labels every object of a run, stops a stalled instance at the run timeout, and keeps the objects when asked', async () => {
    const runner = newRunner(sweepingDaemonId);
    const runId = newRunId();
    const input = runInput(runId, [group('ok'), group('stall')], {
      timeoutMs: 8_000,
      runConfig: { keep_containers: 'true' },
    });
    const { instances } = await runner.run(input);
    const byGroup = Object.fromEntries(instances.map((instance) => [instance.group, instance]));
    assert.equal(byGroup.ok?.outcome, 'success', input.log.text());
    assert.equal(byGroup.stall?.outcome, 'timeout', input.log.text());
    assert.match(byGroup.stall?.reason ?? '', /killed \(run timeout 8000 ms\)$/);
    assert.match(
      input.log.text(),
      /sync service ready \(testground-sync-service:5050, published on 127\.0\.0\.1:\d+\)/,
    );
    assert.match(input.log.text(), /keeping the containers and networks/);

    const filter = labelFilter({ [runIdLabel]: runId });
    const runLabelKeys = [runIdLabel, daemonLabel, planLabel, roleLabel, groupLabel, instanceLabel];
    const containers = await engine.listContainers(filter, { all: true });
    const labelsOf = (role: string): Record<string, string>[] =>
      containers
        .filter((container) => container.labels[roleLabel] === role)
        // Containers also inherit their image's labels (the runtime's node version): compare ours only.
        .map((container) =>
          Object.fromEntries(Object.entries(container.labels).filter(([key]) => runLabelKeys.includes(key))),
        )
        .sort((a, b) => (a[groupLabel] ?? '').localeCompare(b[groupLabel] ?? ''));
    const common = { [runIdLabel]: runId, [daemonLabel]: sweepingDaemonId, [planLabel]: 'runner-test' };
    assert.deepEqual(labelsOf('sync-service'), [{ ...common, [roleLabel]: 'sync-service' }]);
    assert.deepEqual(labelsOf('instance'), [
      { ...common, [roleLabel]: 'instance', [groupLabel]: 'ok', [instanceLabel]: '0' },
      { ...common, [roleLabel]: 'instance', [groupLabel]: 'stall', [instanceLabel]: '0' },
    ]);
    assert.equal(containers.length, 3);
    const networks = await engine.listNetworks(filter);
    assert.deepEqual(networks.map((network) => [network.name, network.labels]).sort(), [
      [`tg-${runId}`, { ...common, [roleLabel]: 'network' }],
      [`tg-${runId}-control`, { ...common, [roleLabel]: 'control-network' }],
    ]);

    // A kept run is still this daemon's leftover once it is no longer active, and goes by its labels.
    assert.deepEqual(await runner.removeLeftovers(new Set([runId])), { containers: 0, networks: 0 });
    assert.deepEqual(await runner.removeLeftovers(new Set()), { containers: 3, networks: 2 });
    assert.deepEqual(await engine.listContainers(filter, { all: true }), []);
    assert.deepEqual(await engine.listNetworks(filter), []);
  });

  it('removes an instance container as soon as it ends, while the rest of the run goes on', async () => {
    const runner = newRunner(daemonId);
    const runId = newRunId();
    const input = runInput(runId, [group('ok'), group('stall')], { timeoutMs: 8_000 });
    let ended = false;
    const running = runner.run(input).finally(() => (ended = true));
    const instancesOf = async (groupId: string): Promise<number> =>
      (
        await engine.listContainers(labelFilter({ [runIdLabel]: runId, [groupLabel]: groupId }), {
          all: true,
        })
      ).length;
    // `ok` is created, ends at once and goes; `stall` stays until the run timeout kills it.
    let okSeen = false;
    let okGoneWhileStalled = false;
    while (!ended) {
      const [ok, stall] = await Promise.all([instancesOf('ok'), instancesOf('stall')]);
      if (ok > 0) okSeen = true;
      if (okSeen && ok === 0 && stall === 1 && !ended) okGoneWhileStalled = true;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const { instances } = await running;
    assert.deepEqual(
      instances.map((instance) => [instance.group, instance.outcome]),
      [
        ['ok', 'success'],
        ['stall', 'timeout'],
      ],
      input.log.text(),
    );
    assert.ok(okGoneWhileStalled, 'the ended instance was removed before the run ended');
    assert.deepEqual(await engine.listContainers(labelFilter({ [runIdLabel]: runId }), { all: true }), []);
  });

  it('clamps a group asking for more CPUs and memory than the host has, with a warning, and runs it', async () => {
    const runner = newRunner(daemonId);
    const host = await engine.info();
    const greedy: ResolvedGroup = {
      ...group('ok'),
      resources: { cpus: host.cpus + 62, memoryBytes: 2 ** 50 },
    };
    const input = runInput(newRunId(), [greedy]);
    const started = performance.now();
    const { instances } = await runner.run(input);
    assert.equal(instances[0]?.outcome, 'success', input.log.text());
    assert.ok(performance.now() - started < 30_000, 'no wait for a container that is never created');
    assert.match(
      input.log.text(),
      new RegExp(
        `WARN local:docker: group ok asks for ${host.cpus + 62} CPUs \\(resources\\.cpu\\) but the host has ${host.cpus}; using ${host.cpus}`,
      ),
    );
    assert.match(
      input.log.text(),
      /WARN local:docker: group ok asks for 1024 TiB of memory \(resources\.memory\) but the host has [\d.]+ GiB \(\d+ bytes\); using [\d.]+ GiB/,
    );
  });

  it('ends the run at once, not at its timeout, when the engine will not create one of its instances', async () => {
    const runner = newRunner(daemonId);
    const input = runInput(newRunId(), [group('stall'), group('missing')], { timeoutMs: 120_000 });
    const missingImage = `testground-test/no-such-image:${suffix}`;
    input.artifacts = new Map([
      ['stall', { kind: 'image', imageId: instanceImage, cached: false }],
      ['missing', { kind: 'image', imageId: missingImage, cached: false }],
    ]);
    const started = performance.now();
    await assert.rejects(runner.run(input), (error: Error) => {
      assert.match(error.message, /no-such-image/);
      return true;
    });
    assert.ok(performance.now() - started < 30_000, `took ${performance.now() - started} ms`);
  });
});

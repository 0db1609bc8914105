/**
 * docker:node against the real engine: placebo becomes an image that runs its `ok` case, an unchanged
 * plan is not rebuilt, and a plan that does not compile is a BuildError.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DockerNodeBuilder } from '../../builders/docker-node.ts';
import { BuildError } from '../../core/errors.ts';
import type { DockerEngine } from '../../docker/docker-engine.ts';
import { daemonLabel, labelFilter, planLabel, roleLabel } from '../../docker/labels.ts';
import { RuntimeImageProvider } from '../../builders/runtime-image.ts';
import { packContext } from '../../docker/build-context.ts';
import { parseEventLine } from '../../core/contract/events.ts';
import {
  connectEngine,
  removeScope,
  runContainer,
  testScope,
  testRuntimeDaemonId,
} from '../docker/docker-fixtures.ts';
import { MemoryTaskLog } from '../helpers/memory-task-log.ts';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const fixtures = path.join(repoRoot, 'test/fixtures/bundle-plans');
const scope = testScope('docker-node');
// Images carry this daemon id, so `after` finds exactly the images this file built.
const daemonId = `tests-${randomBytes(4).toString('hex')}`;
// Part of the content hash: every run of this file builds afresh instead of finding last run's image.
const buildConfig = { test_nonce: daemonId };
let engine: DockerEngine;
let builder: DockerNodeBuilder;
let scratch: string;

before(async () => {
  engine = await connectEngine();
  scratch = await mkdtemp(path.join(os.tmpdir(), 'tg-docker-node-test-'));
  builder = new DockerNodeBuilder({
    engine,
    runtimeImages: new RuntimeImageProvider(engine, { daemonId: testRuntimeDaemonId }),
    sdkEntry: path.join(repoRoot, 'sdk/index.ts'),
    tempDir: scratch,
    daemonId,
  });
});

after(async () => {
  if (engine) {
    await removeScope(engine, scope.filter);
    await removeScope(engine, labelFilter({ [daemonLabel]: daemonId }));
  }
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

const buildInput = (planDir: string, planName: string, log: MemoryTaskLog) => ({
  planDir,
  planName,
  buildConfig,
  log,
  signal: AbortSignal.timeout(120_000),
});

/** Runs one instance of `image` (no sync service needed) and returns its messages; it must succeed. */
async function instanceMessages(imageId: string, name: string, testCase: string): Promise<string[]> {
  const run = await runContainer(engine, {
    name: `${scope.runId}-${name}`,
    image: imageId,
    env: {
      TEST_PLAN: name,
      TEST_CASE: testCase,
      TEST_RUN: scope.runId,
      TEST_INSTANCE_COUNT: '1',
      TEST_GROUP_ID: 'single',
      TEST_GROUP_INSTANCE_COUNT: '1',
      TEST_INSTANCE_PARAMS: '',
      TEST_OUTPUTS_PATH: '/temp',
      TEST_TEMP_PATH: '/temp',
      TEST_SIDECAR: 'false',
      TEST_SUBNET: '127.1.0.0/16',
      TEST_START_TIME: new Date().toISOString(),
      TEST_DISABLE_METRICS: 'true',
    },
    labels: scope.labels,
  });
  assert.equal(run.exitCode, 0, `${run.stdout}\n${run.stderr}`);
  const events = run.stdout.split('\n').flatMap((line) => parseEventLine(line) ?? []);
  assert.equal(events.at(-1)?.kind, 'success', run.stdout);
  return events.flatMap((event) => (event.kind === 'message' ? [event.message] : []));
}

describe('DockerNodeBuilder', () => {
  it('builds placebo into a labelled image, reuses it unchanged, and the image runs the ok case', async () => {
    const log = new MemoryTaskLog();
    const first = await builder.build(buildInput(path.join(repoRoot, 'plans/placebo'), 'placebo', log));
    assert.equal(first.kind, 'image');
    assert.equal(first.cached, false);
    if (first.kind !== 'image') return;
    assert.match(log.text(), /runtime image: /);
    assert.match(log.text(), /docker:node: bundling index\.ts/);
    assert.match(log.text(), /docker build: Step 1\/\d+ : FROM sha256:/);

    const image = await engine.listImages(labelFilter({ [daemonLabel]: daemonId }));
    assert.equal(image.length, 1);
    assert.equal(image[0]?.id, first.imageId);
    assert.match(image[0]?.tags[0] ?? '', /^testground-plan\/placebo:[0-9a-f]{24}$/);
    assert.equal(image[0]?.labels[roleLabel], 'plan-image');
    assert.equal(image[0]?.labels[planLabel], 'placebo');

    const againLog = new MemoryTaskLog();
    const again = await builder.build(buildInput(path.join(repoRoot, 'plans/placebo'), 'placebo', againLog));
    assert.deepEqual(again, { kind: 'image', imageId: first.imageId, cached: true });
    assert.match(againLog.text(), /plan unchanged, reusing image testground-plan\/placebo:/);

    const outputs = path.join(scratch, 'outputs');
    await mkdir(outputs);
    // The instance runs as root, the directory may belong to someone else: let it write.
    await chmod(outputs, 0o777);
    const run = await runContainer(engine, {
      name: `${scope.runId}-placebo`,
      image: first.imageId,
      env: {
        TEST_PLAN: 'placebo',
        TEST_CASE: 'ok',
        TEST_RUN: scope.runId,
        TEST_INSTANCE_COUNT: '1',
        TEST_GROUP_ID: 'single',
        TEST_GROUP_INSTANCE_COUNT: '1',
        TEST_INSTANCE_PARAMS: '',
        TEST_OUTPUTS_PATH: '/outputs',
        TEST_TEMP_PATH: '/temp',
        TEST_SIDECAR: 'false',
        TEST_SUBNET: '127.1.0.0/16',
        TEST_START_TIME: new Date().toISOString(),
        TEST_DISABLE_METRICS: 'true',
      },
      labels: scope.labels,
      mounts: [{ source: outputs, target: '/outputs' }],
    });
    assert.equal(run.exitCode, 0, run.stderr);
    const events = run.stdout.split('\n').flatMap((line) => parseEventLine(line) ?? []);
    assert.deepEqual(
      events.map((event) => event.kind),
      ['start', 'message', 'success'],
      run.stdout,
    );
    assert.match(run.stdout, /"run_id":"test-docker-node-[0-9a-f]+"/);
    assert.equal(await readFile(path.join(outputs, 'run.out'), 'utf8'), run.stdout);
  });

  it('a plan with a TypeScript syntax error is a BuildError naming the file and line', async () => {
    const planDir = path.join(scratch, 'broken-plan');
    await rm(planDir, { recursive: true, force: true });
    await mkdir(planDir, { recursive: true });
    await writeFile(path.join(planDir, 'manifest.toml'), 'name = "broken"\n');
    await writeFile(
      path.join(planDir, 'package.json'),
      '{ "name": "broken", "type": "module", "main": "index.ts" }\n',
    );
    await writeFile(
      path.join(planDir, 'index.ts'),
      "const answer: number = ;\nconsole.log('unreachable');\n",
    );
    await assert.rejects(
      builder.build(buildInput(planDir, 'broken', new MemoryTaskLog())),
      (error: Error) => {
        assert.ok(error instanceof BuildError, `${error.name}: ${error.message}`);
        assert.match(error.message, /^docker:node: bundling failed: .*index\.ts:1:\d+: /);
        return true;
      },
    );
  });

  it('rejects a base_image that is not an image reference', async () => {
    const input = { ...buildInput(path.join(repoRoot, 'plans/placebo'), 'placebo', new MemoryTaskLog()) };
    await assert.rejects(builder.build({ ...input, buildConfig: { base_image: 42 } }), (error: Error) => {
      assert.ok(error instanceof BuildError);
      assert.match(error.message, /build_config\.base_image: .*got 42/);
      return true;
    });
  });

  it("runs a plan whose npm packages need their own files (node-gyp addon via bindings, prebuilds) from /app's node_modules", async () => {
    const log = new MemoryTaskLog();
    // unix-dgram is built by node-gyp, an install script: the plan opts in (as its manifest does).
    const built = await builder.build({
      ...buildInput(path.join(fixtures, 'native-cjs'), 'native-cjs', log),
      buildConfig: { ...buildConfig, npm_scripts: true },
    });
    assert.equal(built.kind, 'image');
    if (built.kind !== 'image') return;
    assert.match(
      log.text(),
      /loaded from node_modules beside the bundle at run time: bufferutil, unix-dgram/,
    );
    assert.doesNotMatch(log.text(), /native addon/, 'the host-built runtime image carries the host libc');
    // The runtime image here is built from the host's node and libraries: the host-built addon matches it.
    assert.deepEqual(await instanceMessages(built.imageId, 'native-cjs', 'ok'), [
      'unix-dgram: opened and closed a unix datagram socket through its node-gyp addon',
      'bufferutil: mask from its native addon gave 0,3,2,5',
      'own CommonJS: read at run time from beside own.cjs',
      'dynamic require: bufferutil 4.1.0',
    ]);
  });

  it('bundles the version build.dependencies names instead of the pinned one', async () => {
    const log = new MemoryTaskLog();
    const built = await builder.build({
      ...buildInput(path.join(fixtures, 'pinned'), 'pinned', log),
      dependencies: [{ module: 'is-number', version: '7.0.0' }],
    });
    assert.equal(built.kind, 'image');
    if (built.kind !== 'image') return;
    assert.match(
      log.text(),
      /docker:node: build dependency override is-number → 7\.0\.0 \(package\.json had 6\.0\.0\)/,
    );
    assert.deepEqual((await instanceMessages(built.imageId, 'pinned', 'versions')).slice(0, 2), [
      'is-number 7.0.0',
      "is-odd's is-number 7.0.0",
    ]);
  });

  it('warns that host-built addons need a matching libc when the plan builds on a base image', async () => {
    // A base image of our own (the runtime image under another name), as a pulled node image would be. It
    // must not pass for a runtime image (whose label it would inherit) while it exists.
    const runtime = await new RuntimeImageProvider(engine, { daemonId: testRuntimeDaemonId }).ensure({
      log: () => undefined,
    });
    const base = `testground-test-base:${daemonId}`;
    await engine.buildImage(
      {
        context: {
          tar: packContext([
            {
              type: 'content',
              name: 'Dockerfile',
              content: `FROM ${runtime.imageId}\nLABEL ${roleLabel}=test-base\n`,
            },
          ]),
        },
        tags: [base],
        labels: scope.labels,
      },
      () => undefined,
    );
    const log = new MemoryTaskLog();
    let built: Awaited<ReturnType<typeof builder.build>> | undefined;
    try {
      built = await builder.build({
        ...buildInput(path.join(fixtures, 'native-cjs'), 'native-cjs', log),
        buildConfig: { ...buildConfig, base_image: base, npm_scripts: true },
      });
      assert.match(log.text(), new RegExp(`runtime image: using ${base} \\(present locally\\)`));
      assert.match(
        log.text(),
        /WARN docker:node: native addons in node_modules \(unix-dgram\) were compiled on this host for Node v20\.\S+ \(ABI \d+\); they load in testground-test-base:\S+ only if its libc is as new as the host's/,
      );
      assert.equal(built.kind, 'image');
    } finally {
      // The plan image first: the engine keeps a base that still has a child.
      if (built?.kind === 'image') await engine.removeImage(built.imageId, { force: true });
      await engine.removeImage(base, { force: true });
    }
  });
});

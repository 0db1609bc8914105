/**
 * docker:generic against the real engine: plans/generic-docker builds from its own Dockerfile on the local
 * runtime image and runs; a broken Dockerfile is a BuildError with the builder's message; a Dockerfile
 * path leaving the plan is refused.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DockerGenericBuilder } from '../../builders/docker-generic.ts';
import { BuildError } from '../../core/errors.ts';
import type { DockerEngine } from '../../docker/docker-engine.ts';
import { daemonLabel, labelFilter, planLabel, roleLabel } from '../../docker/labels.ts';
import { RuntimeImageProvider, type RuntimeImage } from '../../builders/runtime-image.ts';
import { parseEventLine } from '../../core/contract/events.ts';
import {
  connectEngine,
  removeScope,
  runContainer,
  testRuntimeImage,
  testScope,
  testRuntimeDaemonId,
} from '../docker/docker-fixtures.ts';
import { MemoryTaskLog } from '../helpers/memory-task-log.ts';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const scope = testScope('docker-generic');
const daemonId = `tests-${randomBytes(4).toString('hex')}`;
let engine: DockerEngine;
let builder: DockerGenericBuilder;
let runtime: RuntimeImage;
let scratch: string;

before(async () => {
  engine = await connectEngine();
  runtime = await testRuntimeImage(engine);
  scratch = await mkdtemp(path.join(os.tmpdir(), 'tg-docker-generic-test-'));
  builder = new DockerGenericBuilder({
    engine,
    runtimeImages: new RuntimeImageProvider(engine, { daemonId: testRuntimeDaemonId }),
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

const input = (planDir: string, buildConfig: Record<string, unknown>, log = new MemoryTaskLog()) => ({
  planDir,
  planName: path.basename(planDir),
  // `test_nonce` is part of the content hash: each run of this file builds afresh.
  buildConfig: { test_nonce: daemonId, ...buildConfig },
  log,
  signal: AbortSignal.timeout(120_000),
});

/** A copy of plans/generic-docker with `files` written over it. */
async function planVariant(name: string, files: Record<string, string>): Promise<string> {
  const dir = path.join(scratch, name);
  await cp(path.join(repoRoot, 'plans/generic-docker'), dir, { recursive: true });
  for (const [file, content] of Object.entries(files)) await writeFile(path.join(dir, file), content);
  return dir;
}

async function runOk(imageId: string, name: string): Promise<string[]> {
  const run = await runContainer(engine, {
    name: `${scope.runId}-${name}`,
    image: imageId,
    env: { TEST_PLAN: 'generic-docker', TEST_CASE: 'ok', TEST_RUN: scope.runId, TEST_GROUP_ID: 'single' },
    labels: scope.labels,
  });
  assert.equal(run.exitCode, 0, run.stderr);
  return run.stdout.split('\n').flatMap((line) => {
    const event = parseEventLine(line);
    return event ? [event.kind] : [];
  });
}

describe('DockerGenericBuilder', { concurrency: true }, () => {
  it('builds plans/generic-docker with BASE = the runtime image, reuses it unchanged, and it runs', async () => {
    const planDir = path.join(repoRoot, 'plans/generic-docker');
    const log = new MemoryTaskLog();
    const config = { build_args: { BASE: runtime.ref } };
    const built = await builder.build(input(planDir, config, log));
    assert.equal(built.kind, 'image');
    if (built.kind !== 'image') return;
    assert.equal(built.cached, false);
    assert.match(log.text(), new RegExp(`docker build: Step 3/\\d+ : FROM \\$\\{BASE\\}`));
    assert.match(log.text(), /docker build: Successfully built/);

    const [image] = (await engine.listImages(labelFilter({ [daemonLabel]: daemonId }))).filter(
      (candidate) => candidate.id === built.imageId,
    );
    assert.match(image?.tags[0] ?? '', /^testground-plan\/generic-docker:[0-9a-f]{24}$/);
    assert.equal(image?.labels[roleLabel], 'plan-image');
    assert.equal(image?.labels[planLabel], 'generic-docker');

    const again = await builder.build(input(planDir, config));
    assert.deepEqual(again, { kind: 'image', imageId: built.imageId, cached: true });
    assert.deepEqual(await runOk(built.imageId, 'with-base'), ['start', 'message', 'success']);
  });

  it('fills in TESTGROUND_NODE_RUNTIME when the Dockerfile asks for it and BASE is not set', async () => {
    const log = new MemoryTaskLog();
    const built = await builder.build(input(path.join(repoRoot, 'plans/generic-docker'), {}, log));
    assert.equal(built.kind, 'image');
    if (built.kind !== 'image') return;
    assert.match(log.text(), /runtime image: /);
    assert.deepEqual(await runOk(built.imageId, 'auto-base'), ['start', 'message', 'success']);
  });

  it('a failing Dockerfile step is a BuildError carrying the builder message', async () => {
    const planDir = await planVariant('broken-copy', {
      Dockerfile: `ARG BASE\nFROM \${BASE}\nCOPY not-in-the-plan.txt /plan/\n`,
    });
    const log = new MemoryTaskLog();
    await assert.rejects(
      builder.build(input(planDir, { build_args: { BASE: runtime.ref } }, log)),
      (error: Error) => {
        assert.ok(error instanceof BuildError, `${error.name}: ${error.message}`);
        assert.match(
          error.message,
          /^docker:generic: docker build of Dockerfile failed: .*not-in-the-plan\.txt/,
        );
        return true;
      },
    );
    assert.match(log.text(), /docker build: Step 3\/\d+ : COPY not-in-the-plan\.txt/);
  });

  it('an unparsable Dockerfile is a BuildError carrying the parser message', async () => {
    const planDir = await planVariant('broken-syntax', {
      'Broken.dockerfile': 'FROM scratch\nFROBNICATE all\n',
    });
    await assert.rejects(builder.build(input(planDir, { path: 'Broken.dockerfile' })), (error: Error) => {
      assert.ok(error instanceof BuildError, `${error.name}: ${error.message}`);
      assert.match(
        error.message,
        /^docker:generic: docker build of Broken\.dockerfile failed: .*frobnicate/i,
      );
      return true;
    });
  });

  it('refuses a Dockerfile path outside the plan, a missing one, a link out, and non-string build args', async () => {
    const planDir = await planVariant('paths', {});
    await writeFile(path.join(scratch, 'Outside.dockerfile'), 'FROM scratch\n');
    await symlink(path.join(scratch, 'Outside.dockerfile'), path.join(planDir, 'Linked.dockerfile'));
    const cases: [Record<string, unknown>, RegExp][] = [
      [
        { path: '../Outside.dockerfile' },
        /build_config\.path "\.\.\/Outside\.dockerfile" is outside the plan directory/,
      ],
      [{ path: '/etc/passwd' }, /build_config\.path "\/etc\/passwd" is outside the plan directory/],
      [{ path: 'Nope.dockerfile' }, /build_config\.path "Nope\.dockerfile": no such file/],
      [
        { path: 'Linked.dockerfile' },
        /build_config\.path "Linked\.dockerfile" is a link to .*outside the plan/,
      ],
      [
        { build_args: { BASE: 1, OTHER: 'x', FLAG: true } },
        /build_args\.BASE: expected a string, got 1; .*build_args\.FLAG/,
      ],
    ];
    for (const [config, message] of cases) {
      await assert.rejects(builder.build(input(planDir, config)), (error: Error) => {
        assert.ok(error instanceof BuildError, `${error.name}: ${error.message}`);
        assert.match(error.message, message);
        return true;
      });
    }
  });

  it('a path naming a directory means what it meant in the original: <dir>/Dockerfile, the plan under plan/, PLAN_PATH', async () => {
    // As libp2p/test-plans' ping/rust/Dockerfile: the context holds the plan under plan/, PLAN_PATH says where.
    const planDir = await planVariant('original-layout', {});
    await mkdir(path.join(planDir, 'rust'));
    await cp(path.join(planDir, 'index.mjs'), path.join(planDir, 'rust/main.mjs'));
    await writeFile(
      path.join(planDir, 'rust/Dockerfile'),
      [
        'ARG BASE',
        'FROM ${BASE}',
        'ARG PLAN_PATH="./"',
        'COPY ./plan/${PLAN_PATH}/main.mjs /plan/index.mjs',
        'ENTRYPOINT ["node", "/plan/index.mjs"]',
        '',
      ].join('\n'),
    );
    await mkdir(path.join(planDir, 'empty'));
    const log = new MemoryTaskLog();
    const built = await builder.build(
      input(planDir, { path: './rust/', build_args: { BASE: runtime.ref } }, log),
    );
    assert.equal(built.kind, 'image');
    if (built.kind !== 'image') return;
    assert.match(
      log.text(),
      /docker:generic: build_config\.path "\.\/rust\/" is a directory: building plan\/rust\/Dockerfile with the plan under plan\/ of the context and PLAN_PATH=\.\/rust\//,
    );
    assert.match(log.text(), /docker build: Step \d+\/\d+ : COPY \.\/plan\/\$\{PLAN_PATH\}\/main\.mjs/);
    assert.deepEqual(await runOk(built.imageId, 'original-layout'), ['start', 'message', 'success']);

    await assert.rejects(builder.build(input(planDir, { path: 'empty' })), (error: Error) => {
      assert.ok(error instanceof BuildError, `${error.name}: ${error.message}`);
      assert.match(error.message, /build_config\.path "empty" is a directory without a Dockerfile/);
      return true;
    });
  });
});

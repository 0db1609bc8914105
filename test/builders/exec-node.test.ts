import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { ExecNodeBuilder } from '../../builders/exec-node.ts';
import { parseEventLine } from '../../core/contract/events.ts';
import { BuildError } from '../../core/errors.ts';
import type { BuildDependency } from '../../core/run.ts';
import { MemoryTaskLog } from '../helpers/memory-task-log.ts';
import { repoRoot, scratchDir } from '../helpers/processes.ts';

const run = promisify(execFile);
const fixtures = path.join(repoRoot, 'test/fixtures/bundle-plans');

/** Runs a bundle as local:exec runs an instance (no sync service needed), and returns its messages. */
async function runInstance(bundle: string, testCase: string, cwd: string): Promise<string[]> {
  const { stdout } = await run(process.execPath, [bundle], {
    cwd,
    env: {
      PATH: process.env.PATH ?? '',
      TEST_PLAN: 'fixture',
      TEST_CASE: testCase,
      TEST_RUN: 'exec-node-test',
      TEST_INSTANCE_COUNT: '1',
      TEST_GROUP_ID: 'single',
      TEST_GROUP_INSTANCE_COUNT: '1',
      TEST_INSTANCE_PARAMS: '',
      TEST_OUTPUTS_PATH: cwd,
      TEST_TEMP_PATH: cwd,
      TEST_SIDECAR: 'false',
      TEST_DISABLE_METRICS: 'true',
    },
  });
  const events = stdout.split('\n').flatMap((line) => parseEventLine(line) ?? []);
  assert.equal(events.at(-1)?.kind, 'success', stdout);
  return events.flatMap((event) => (event.kind === 'message' ? [event.message] : []));
}

describe('exec:node builder', () => {
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  let builder: ExecNodeBuilder;
  before(async () => {
    scratch = await scratchDir('exec-node');
    builder = new ExecNodeBuilder({
      cacheDir: path.join(scratch.dir, 'cache'),
      sdkEntry: path.join(repoRoot, 'sdk/index.ts'),
    });
  });
  after(async () => {
    await scratch?.remove();
  });

  const plan = async (name: string, files: Record<string, string>): Promise<string> => {
    const dir = path.join(scratch.dir, name);
    for (const [file, content] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
      await writeFile(path.join(dir, file), content);
    }
    return dir;
  };
  const build = (
    planDir: string,
    buildConfig: Record<string, unknown> = {},
    options: { dependencies?: BuildDependency[]; log?: MemoryTaskLog } = {},
  ) =>
    builder.build({
      planDir,
      planName: 'p',
      buildConfig,
      ...(options.dependencies ? { dependencies: options.dependencies } : {}),
      log: options.log ?? new MemoryTaskLog(),
      signal: new AbortController().signal,
    });
  const bundleOf = (artifact: Awaited<ReturnType<typeof build>>): string => {
    assert.equal(artifact.kind, 'bundle');
    return artifact.kind === 'bundle' ? artifact.path : '';
  };

  it('bundles a TypeScript plan into one runnable ES module and reuses it while nothing changed', async () => {
    const dir = await plan('ts', {
      'index.ts': "const greeting: string = 'hello from ts';\nconsole.log(greeting);\n",
    });
    const first = await build(dir);
    assert.equal(first.kind, 'bundle');
    assert.equal(first.cached, false);
    assert.equal(
      (await run(process.execPath, [first.kind === 'bundle' ? first.path : ''])).stdout.trim(),
      'hello from ts',
    );
    const second = await build(dir);
    assert.deepEqual(second, { ...first, cached: true });
    const otherConfig = await build(dir, { some: 'config' });
    assert.equal(otherConfig.cached, false, 'a different build config is a different artifact');
    await writeFile(path.join(dir, 'index.ts'), "console.log('changed');\n");
    const changed = await build(dir);
    assert.equal(changed.cached, false);
    assert.notEqual(changed.kind === 'bundle' && changed.path, first.kind === 'bundle' && first.path);
  });

  it('finds the entry from package.json main, bundles CommonJS, and resolves testground-sdk', async () => {
    const dir = await plan('cjs', {
      'package.json': JSON.stringify({ name: 'cjs', main: 'lib/main.cjs' }),
      'lib/main.cjs':
        "const { parseRunParams } = require('testground-sdk');\nconst os = require('node:os');\nconsole.log(typeof parseRunParams, typeof os.cpus);\n",
    });
    const artifact = await build(dir);
    assert.equal(
      (await run(process.execPath, [artifact.kind === 'bundle' ? artifact.path : ''])).stdout.trim(),
      'function function',
    );
  });

  it("keeps import attributes on the plan's imports of its npm packages", async () => {
    const dir = await plan('import-attributes', {
      'package.json': JSON.stringify({
        name: 'import-attributes',
        type: 'module',
        main: 'index.js',
        dependencies: { 'local-data': 'file:./local-data' },
      }),
      'local-data/package.json': JSON.stringify({ name: 'local-data', version: '4.5.6' }),
      'index.js':
        "import data from 'local-data/package.json' with { type: 'json' };\nconsole.log(`version ${data.version}`);\n",
    });
    const artifact = await build(dir);
    assert.equal(artifact.kind, 'bundle');
    const { stdout } = await run(process.execPath, [artifact.kind === 'bundle' ? artifact.path : '']);
    assert.equal(stdout.trim(), 'version 4.5.6');
  });

  it('fails with a BuildError naming the file and the problem', async () => {
    const broken = await plan('broken', { 'index.ts': 'const = 1;\n' });
    await assert.rejects(
      build(broken),
      (error: unknown) => error instanceof BuildError && /index\.ts:1/.test(error.message),
    );
    const empty = await plan('empty', { 'README.md': 'no code\n' });
    await assert.rejects(
      build(empty),
      (error: unknown) => error instanceof BuildError && /no entry point/.test(error.message),
    );
  });

  it('rebuilds when a file the SDK imports changes, not only when the sdk folder does', async () => {
    // A stand-in SDK whose entry imports a "contract" file from outside its own folder, as sdk/ imports
    // core/contract/: the cache key must follow the bundle's real inputs.
    const sdkRoot = path.join(scratch.dir, 'fake-sdk-tree');
    await mkdir(path.join(sdkRoot, 'sdk'), { recursive: true });
    await mkdir(path.join(sdkRoot, 'contract'), { recursive: true });
    await writeFile(path.join(sdkRoot, 'contract/names.ts'), "export const greeting = 'contract v1';\n");
    await writeFile(path.join(sdkRoot, 'sdk/index.ts'), "export { greeting } from '../contract/names.ts';\n");
    const own = new ExecNodeBuilder({
      cacheDir: path.join(scratch.dir, 'cache-sdk-inputs'),
      sdkEntry: path.join(sdkRoot, 'sdk/index.ts'),
    });
    const dir = await plan('sdk-inputs', {
      'index.ts': "import { greeting } from 'testground-sdk';\nconsole.log(greeting);\n",
    });
    const buildOwn = () =>
      own.build({
        planDir: dir,
        planName: 'p',
        buildConfig: {},
        log: new MemoryTaskLog(),
        signal: new AbortController().signal,
      });
    const output = async (artifact: Awaited<ReturnType<typeof buildOwn>>) =>
      (await run(process.execPath, [artifact.kind === 'bundle' ? artifact.path : ''])).stdout.trim();

    const first = await buildOwn();
    assert.equal(await output(first), 'contract v1');
    assert.equal((await buildOwn()).cached, true, 'nothing changed: the bundle is reused');
    await writeFile(path.join(sdkRoot, 'contract/names.ts'), "export const greeting = 'contract v2';\n");
    const second = await buildOwn();
    assert.equal(second.cached, false, 'a changed input of the SDK makes a new bundle');
    assert.equal(await output(second), 'contract v2');
  });

  it('runs a plan whose npm packages need their own files: a node-gyp addon via bindings, prebuilds, __dirname, dynamic require', async () => {
    const log = new MemoryTaskLog();
    // unix-dgram is built by node-gyp, an install script: the plan opts in (as its manifest does).
    const bundle = bundleOf(await build(path.join(fixtures, 'native-cjs'), { npm_scripts: true }, { log }));
    assert.match(
      log.text(),
      /loaded from node_modules beside the bundle at run time: bufferutil, unix-dgram/,
    );
    const dir = path.dirname(bundle);
    assert.ok(existsSync(path.join(dir, 'node_modules/unix-dgram/build/Release/unix_dgram.node')));
    const text = await readFile(bundle, 'utf8');
    assert.doesNotMatch(text, /Unix datagrams not available/, 'unix-dgram stays out of the bundle');
    assert.match(text, /read at run time|greeting\.txt/, "the plan's own CommonJS file is in the bundle");

    assert.deepEqual(await runInstance(bundle, 'ok', scratch.dir), [
      'unix-dgram: opened and closed a unix datagram socket through its node-gyp addon',
      'bufferutil: mask from its native addon gave 0,3,2,5',
      'own CommonJS: read at run time from beside own.cjs',
      'dynamic require: bufferutil 4.1.0',
    ]);
  });

  it('builds with build.dependencies overriding a pinned package, direct and transitive, and keys the cache on them', async () => {
    const planDir = path.join(fixtures, 'pinned');
    const pinned = bundleOf(await build(planDir));
    assert.deepEqual((await runInstance(pinned, 'versions', scratch.dir)).slice(0, 2), [
      'is-number 6.0.0',
      "is-odd's is-number 6.0.0",
    ]);

    const log = new MemoryTaskLog();
    const overridden = await build(
      planDir,
      {},
      {
        log,
        dependencies: [
          { module: 'is-number', version: '7.0.0' },
          { module: 'left-pad', version: '1.3.0' },
        ],
      },
    );
    assert.equal(overridden.cached, false, 'other dependencies are another artifact');
    assert.notEqual(bundleOf(overridden), pinned);
    assert.match(
      log.text(),
      /exec:node: build dependency override is-number → 7\.0\.0 \(package\.json had 6\.0\.0\): installed is-number@7\.0\.0 at node_modules\/is-number/,
    );
    assert.match(
      log.text(),
      /WARN exec:node: build dependency left-pad → 1\.3\.0 changed nothing: the plan does not depend on left-pad/,
    );
    // is-odd asks for is-number ^6: only an npm override (not a rewritten dependency) reaches its copy.
    assert.deepEqual((await runInstance(bundleOf(overridden), 'versions', scratch.dir)).slice(0, 2), [
      'is-number 7.0.0',
      "is-odd's is-number 7.0.0",
    ]);
    const again = await build(
      planDir,
      {},
      {
        dependencies: [
          { module: 'is-number', version: '7.0.0' },
          { module: 'left-pad', version: '1.3.0' },
        ],
      },
    );
    assert.deepEqual(again, { ...overridden, cached: true });
    assert.equal((await build(planDir)).cached, true, 'without overrides, the pinned bundle again');

    const vendored = await build(
      planDir,
      {},
      {
        dependencies: [{ module: 'is-number', target: 'file:vendor/is-number' }],
      },
    );
    assert.deepEqual((await runInstance(bundleOf(vendored), 'versions', scratch.dir)).slice(0, 2), [
      'is-number 99.0.0-vendored',
      "is-odd's is-number 99.0.0-vendored",
    ]);
    const renamed = await build(
      planDir,
      {},
      {
        dependencies: [{ module: 'is-number', target: 'is-number', version: '7.0.0' }],
      },
    );
    assert.deepEqual((await runInstance(bundleOf(renamed), 'versions', scratch.dir))[0], 'is-number 7.0.0');
  });

  it('refuses a file: override outside the plan and a full-spec target with a version; warns when nothing installs', async () => {
    const planDir = path.join(fixtures, 'pinned');
    await assert.rejects(
      build(planDir, {}, { dependencies: [{ module: 'is-number', target: 'file:../native-cjs' }] }),
      (error: unknown) =>
        error instanceof BuildError &&
        /^dependencies\[0\]\.target: "file:\.\.\/native-cjs" is outside the plan directory/.test(
          error.message,
        ),
    );
    await assert.rejects(
      build(
        planDir,
        {},
        {
          dependencies: [
            { module: 'is-odd', version: '3.0.1' },
            { module: 'is-number', target: 'npm:is-number@7.0.0', version: '6.0.0' },
          ],
        },
      ),
      (error: unknown) =>
        error instanceof BuildError &&
        /^dependencies\[1\]: target "npm:is-number@7\.0\.0" is a full npm spec and version "6\.0\.0" would be ignored/.test(
          error.message,
        ),
    );
    const log = new MemoryTaskLog();
    const dir = await plan('no-deps', { 'index.ts': "console.log('no deps');\n" });
    await build(dir, {}, { log, dependencies: [{ module: 'is-number', version: '7.0.0' }] });
    assert.match(
      log.text(),
      /WARN exec:node: build dependency is-number ignored: the plan declares no npm dependencies/,
    );
  });
});

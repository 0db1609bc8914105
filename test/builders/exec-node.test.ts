import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { ExecNodeBuilder } from '../../builders/exec-node.ts';
import { BuildError } from '../../core/errors.ts';
import { MemoryTaskLog } from '../helpers/memory-task-log.ts';
import { repoRoot, scratchDir } from '../helpers/processes.ts';

const run = promisify(execFile);

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
  const build = (planDir: string, buildConfig: Record<string, unknown> = {}) =>
    builder.build({
      planDir,
      planName: 'p',
      buildConfig,
      log: new MemoryTaskLog(),
      signal: new AbortController().signal,
    });

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
});

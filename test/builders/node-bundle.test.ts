/**
 * A bundle holds the plan's own files, its npm dependencies and our SDK, never a file of the daemon's host:
 * an import that resolves outside the plan directory is a build error naming the import and where it led.
 */
import assert from 'node:assert/strict';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ExecNodeBuilder } from '../../builders/exec-node.ts';
import { BuildError } from '../../core/errors.ts';
import { MemoryTaskLog } from '../helpers/memory-task-log.ts';
import { repoRoot, scratchDir } from '../helpers/processes.ts';

describe('bundling stays inside the plan directory', () => {
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  let builder: ExecNodeBuilder;
  before(async () => {
    scratch = await scratchDir('node-bundle');
    builder = new ExecNodeBuilder({
      cacheDir: path.join(scratch.dir, 'cache'),
      sdkEntry: path.join(repoRoot, 'sdk/index.ts'),
    });
  });
  after(async () => {
    await scratch?.remove();
  });

  const plan = async (name: string, files: Record<string, string>): Promise<string> => {
    const dir = path.join(scratch.dir, 'plans', name);
    for (const [file, content] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
      await writeFile(path.join(dir, file), content);
    }
    return dir;
  };
  const refused = (planDir: string, pattern: RegExp) =>
    assert.rejects(
      builder.build({
        planDir,
        planName: 'p',
        buildConfig: {},
        log: new MemoryTaskLog(),
        signal: new AbortController().signal,
      }),
      (error: unknown) => {
        assert.ok(error instanceof BuildError, String(error));
        assert.match(error.message, pattern);
        return true;
      },
    );

  it('refuses a plan importing /etc/hostname, naming the import', async () => {
    const dir = await plan('etc-hostname', {
      'index.js': "import host from '/etc/hostname' with { type: 'text' };\nconsole.log(host);\n",
    });
    await refused(
      dir,
      /exec:node: bundling failed: .*index\.js:1:\d+: "\/etc\/hostname" resolves to \/etc\/hostname, outside the plan directory; a plan may bundle only its own files, its npm dependencies and testground-sdk/,
    );
  });

  it('refuses a relative path climbing out, and a link pointing out', async () => {
    const outside = path.join(scratch.dir, 'outside.js');
    await writeFile(outside, "export const secret = 'host file';\n");
    const climbing = await plan('climbing', {
      'index.js': "import { secret } from '../../outside.js';\nconsole.log(secret);\n",
    });
    await refused(
      climbing,
      /"\.\.\/\.\.\/outside\.js" resolves to .*outside\.js, outside the plan directory/,
    );
    const linked = await plan('linked', {
      'index.js': "import { secret } from './inside.js';\nconsole.log(secret);\n",
    });
    await symlink(outside, path.join(linked, 'inside.js'));
    await refused(linked, /"\.\/inside\.js" resolves to .*outside\.js, outside the plan directory/);
  });

  it("still bundles the plan's own files and testground-sdk", async () => {
    const dir = await plan('own-files', {
      'lib/greeting.js': "export const greeting = 'hello';\n",
      'index.js':
        "import { greeting } from './lib/greeting.js';\nimport { invokeMap } from 'testground-sdk';\nconsole.log(greeting, typeof invokeMap);\n",
    });
    const artifact = await builder.build({
      planDir: dir,
      planName: 'p',
      buildConfig: {},
      log: new MemoryTaskLog(),
      signal: new AbortController().signal,
    });
    assert.equal(artifact.kind, 'bundle');
  });

  const buildError = async (planDir: string): Promise<string> => {
    try {
      await builder.build({
        planDir,
        planName: 'p',
        buildConfig: { typecheck: false },
        log: new MemoryTaskLog(),
        signal: new AbortController().signal,
      });
    } catch (error) {
      assert.ok(error instanceof BuildError, String(error));
      return error.message;
    }
    assert.fail('the build succeeded');
  };

  it("names a syntax error by the plan's own path, not the daemon's cache", async () => {
    const dir = await plan('syntax', {
      'index.ts': "import { helper } from './lib/helper.ts';\nhelper();\n",
      'lib/helper.ts': 'export function helper(): void {\n  const x = ;\n}\n',
    });
    assert.equal(await buildError(dir), 'exec:node: bundling failed: lib/helper.ts:2:12: Unexpected ";"');
  });

  it('says to add an unresolved package to package.json', async () => {
    const dir = await plan('unresolved', {
      'index.ts':
        "import leftPad from 'left-pad';\nimport { sub } from '@scope/pkg/sub';\nconsole.log(leftPad, sub);\n",
    });
    assert.equal(
      await buildError(dir),
      'exec:node: bundling failed: ' +
        'index.ts:1:20: Could not resolve "left-pad": add "left-pad" to the plan\'s package.json dependencies; ' +
        'index.ts:2:20: Could not resolve "@scope/pkg/sub": add "@scope/pkg" to the plan\'s package.json dependencies',
    );
  });
});

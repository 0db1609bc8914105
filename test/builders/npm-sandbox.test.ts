/**
 * npm installs as plan code: a plan whose `preinstall` script dumps its environment and writes to /tmp
 * and to a file root owns. Without the opt-in the script is skipped (and the log says so); with it, it runs
 * as the plan user, sees none of the daemon's environment, and cannot write what root owns.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ExecNodeBuilder } from '../../builders/exec-node.ts';
import { NpmSandbox } from '../../builders/npm-sandbox.ts';
import { PlanUser, resolvePlanUser } from '../../builders/plan-user.ts';
import { BuildError } from '../../core/errors.ts';
import { MemoryTaskLog } from '../helpers/memory-task-log.ts';
import { repoRoot, scratchDir } from '../helpers/processes.ts';

const secret = `daemon-secret-${process.pid}-${Date.now()}`;
const rootOwned = `/etc/tg-npm-sandbox-test-${process.pid}`;

describe('npm installs run as plan code', () => {
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  let builder: ExecNodeBuilder;
  const saved = { token: process.env.TESTGROUND_TOKEN, redis: process.env.REDIS_URL };
  const tmpMarkers: string[] = [];

  before(async () => {
    assert.equal(process.getuid?.(), 0, 'this test needs root: installs switch to the plan user');
    scratch = await scratchDir('npm-sandbox');
    // What a daemon holds: the builder runs in this process, so this is the environment npm must not get.
    process.env.TESTGROUND_TOKEN = secret;
    process.env.REDIS_URL = `redis://:${secret}@127.0.0.1:6379`;
    const planUser = new PlanUser(resolvePlanUser('nobody'), { root: scratch.dir });
    builder = new ExecNodeBuilder({
      cacheDir: path.join(scratch.dir, 'cache'),
      sdkEntry: path.join(repoRoot, 'sdk/index.ts'),
      npm: new NpmSandbox({ planUser, cacheDir: path.join(scratch.dir, 'npm-cache') }),
    });
  });
  after(async () => {
    process.env.TESTGROUND_TOKEN = saved.token;
    process.env.REDIS_URL = saved.redis;
    if (saved.token === undefined) delete process.env.TESTGROUND_TOKEN;
    if (saved.redis === undefined) delete process.env.REDIS_URL;
    for (const marker of [...tmpMarkers, rootOwned]) await rm(marker, { force: true });
    await scratch?.remove();
  });

  /** A plan with one local npm dependency (so npm runs, offline) and `preinstall`. */
  const plan = async (name: string, preinstall: string): Promise<string> => {
    const dir = path.join(scratch.dir, name);
    await mkdir(path.join(dir, 'dep'), { recursive: true });
    await writeFile(path.join(dir, 'dep/package.json'), JSON.stringify({ name: 'dep', version: '1.0.0' }));
    await writeFile(
      path.join(dir, 'package.json'),
      JSON.stringify({
        name,
        type: 'module',
        main: 'index.js',
        scripts: { preinstall },
        dependencies: { dep: 'file:./dep' },
      }),
    );
    await writeFile(path.join(dir, 'index.js'), "console.log('ran');\n");
    return dir;
  };
  const build = (planDir: string, buildConfig: Record<string, unknown>, log = new MemoryTaskLog()) =>
    builder.build({ planDir, planName: 'p', buildConfig, log, signal: new AbortController().signal });
  const dump = (marker: string) =>
    `id -u > uid.txt; env > env.txt; cat /proc/$PPID/environ > parent-environ.txt 2>/dev/null; echo hi > ${marker}`;

  it('skips lifecycle scripts unless the plan opts in, and says which', async () => {
    const marker = `/tmp/tg-npm-sandbox-skipped-${process.pid}`;
    tmpMarkers.push(marker);
    const log = new MemoryTaskLog();
    const artifact = await build(await plan('skipped', dump(marker)), {}, log);
    assert.equal(artifact.kind, 'bundle');
    const dir = path.dirname(artifact.kind === 'bundle' ? artifact.path : '');
    assert.equal(existsSync(path.join(dir, 'env.txt')), false, 'the preinstall script did not run');
    assert.equal(existsSync(marker), false, 'nothing was written to /tmp');
    assert.match(
      log.text(),
      /WARN exec:node: npm lifecycle scripts are off, not run: the plan's preinstall; a plan that needs them sets npm_scripts = true/,
    );
  });

  it("runs them as the plan user with the opt-in: no daemon secret in its environment or its parent's", async () => {
    const marker = `/tmp/tg-npm-sandbox-opted-in-${process.pid}`;
    tmpMarkers.push(marker);
    const artifact = await build(await plan('opted-in', dump(marker)), { npm_scripts: true });
    const dir = path.dirname(artifact.kind === 'bundle' ? artifact.path : '');
    assert.equal((await readFile(path.join(dir, 'uid.txt'), 'utf8')).trim(), '65534');
    const env = await readFile(path.join(dir, 'env.txt'), 'utf8');
    const parent = await readFile(path.join(dir, 'parent-environ.txt'), 'utf8');
    assert.ok(env.includes('npm_lifecycle_event=preinstall'), env);
    for (const text of [env, parent]) {
      assert.ok(!text.includes(secret), 'a daemon secret reached the script');
      assert.ok(!/^(TESTGROUND_TOKEN|REDIS_URL)=/m.test(text), 'a daemon variable reached the script');
    }
    // Like any unprivileged user's file: nobody's, in the world-writable /tmp.
    assert.equal((await stat(marker)).uid, 65534);
    // What the build produced is the daemon's again: a later instance (also nobody) cannot change it.
    assert.equal((await stat(artifact.kind === 'bundle' ? artifact.path : '')).uid, 0);
    assert.equal((await stat(path.join(dir, 'env.txt'))).uid, 0);
    assert.equal((await stat(path.join(dir, 'env.txt'))).mode & 0o022, 0);
  });

  it('fails the build when an opted-in script writes what root owns', async () => {
    await assert.rejects(
      build(await plan('writes-etc', `echo owned > ${rootOwned}`), { npm_scripts: true }),
      (error: unknown) =>
        error instanceof BuildError &&
        /npm install of the plan's dependencies exited with code/.test(error.message),
    );
    assert.equal(existsSync(rootOwned), false);
  });
});

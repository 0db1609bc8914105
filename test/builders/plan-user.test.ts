/** Who plan code runs as: the configured user resolved once, the setpriv wrapper, and the way to its files. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { PlanUser, resolvePlanUser } from '../../builders/plan-user.ts';
import { ValidationError } from '../../core/errors.ts';
import { scratchDir } from '../helpers/processes.ts';

const run = promisify(execFile);
const passwd =
  'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n';

describe('PlanUser', () => {
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  before(async () => {
    scratch = await scratchDir('plan-user');
  });
  after(async () => {
    await scratch?.remove();
  });

  it('resolves a name, a uid or uid:gid, and refuses root and unknown names', () => {
    assert.deepEqual(resolvePlanUser('nobody', passwd), { uid: 65534, gid: 65534, name: 'nobody' });
    assert.deepEqual(resolvePlanUser('64000', passwd), { uid: 64000, gid: 64000, name: '64000' });
    assert.deepEqual(resolvePlanUser('64000:100', passwd), { uid: 64000, gid: 100, name: '64000:100' });
    assert.throws(
      () => resolvePlanUser('root', passwd),
      (error: unknown) =>
        error instanceof ValidationError && /TESTGROUND_PLAN_USER "root" is root/.test(error.message),
    );
    assert.throws(() => resolvePlanUser('0:0', passwd), /must not run as root/);
    assert.throws(
      () => resolvePlanUser('ghost', passwd),
      /TESTGROUND_PLAN_USER "ghost" is not a user of this host \(\/etc\/passwd\); give a user name, "uid" or "uid:gid"/,
    );
  });

  it('switches users only in a root daemon', () => {
    const options = { home: scratch.dir, onWarning: () => undefined };
    assert.equal(PlanUser.fromConfig('nobody', { ...options, daemonUid: 1000 }).isolated, false);
    const isolated = PlanUser.fromConfig(undefined, { ...options, daemonUid: 0 });
    assert.equal(isolated.identity?.uid, 65534, 'default nobody');
    assert.deepEqual(new PlanUser(undefined).command(['node', 'x']), ['node', 'x']);
  });

  it('runs a command as the plan user, without capabilities or supplementary groups and with no_new_privs', async () => {
    assert.equal(process.getuid?.(), 0, 'this test needs root');
    const user = new PlanUser(resolvePlanUser('nobody'), { root: scratch.dir });
    const [file, ...args] = user.command([
      'sh',
      '-c',
      'id -u; id -g; id -G; grep -E "^(CapEff|CapPrm|CapBnd|NoNewPrivs)" /proc/self/status',
    ]);
    const { stdout } = await run(file!, args, { env: user.environment({}) });
    assert.deepEqual(
      stdout.trim().split('\n').sort(),
      [
        '65534',
        '65534',
        '65534',
        'NoNewPrivs:\t1',
        'CapPrm:\t0000000000000000',
        'CapEff:\t0000000000000000',
        'CapBnd:\t0000000000000000',
      ].sort(),
    );
  });

  it('passes none of the daemon variables but a few harmless ones', () => {
    const saved = process.env.TESTGROUND_TOKEN;
    process.env.TESTGROUND_TOKEN = 'secret';
    try {
      const env = new PlanUser(undefined).environment({ HOME: '/x' });
      assert.equal(env.TESTGROUND_TOKEN, undefined);
      assert.equal(env.HOME, '/x');
      assert.equal(env.PATH, process.env.PATH);
    } finally {
      if (saved === undefined) delete process.env.TESTGROUND_TOKEN;
      else process.env.TESTGROUND_TOKEN = saved;
    }
  });

  it('opens the way to a file inside its root with search permission only, and names what it may not change', async () => {
    const warnings: string[] = [];
    const home = path.join(scratch.dir, 'home');
    const deep = path.join(home, 'outputs', 'run');
    await mkdir(deep, { recursive: true, mode: 0o700 });
    const user = new PlanUser(resolvePlanUser('nobody'), { root: home, onWarning: (m) => warnings.push(m) });
    await user.reach(deep);
    for (const dir of [deep, path.join(home, 'outputs'), home]) {
      assert.equal((await stat(dir)).mode & 0o777, 0o701, dir);
    }
    // scratch.dir is above the root and ours: changed, and said.
    assert.equal((await stat(scratch.dir)).mode & 0o001, 0o001);
    assert.deepEqual(warnings, [
      `gave others search permission (o+x, not read) on ${scratch.dir} so that the plan user nobody can reach ${deep}`,
    ]);
    const privateDir = path.join(home, 'redis');
    await mkdir(privateDir, { mode: 0o755 });
    await user.keepPrivate(privateDir);
    assert.equal((await stat(privateDir)).mode & 0o777, 0o700);
  });
});

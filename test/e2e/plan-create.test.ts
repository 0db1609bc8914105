/**
 * `testground plan create` on a clean home, then `run single` of the new plan on a real daemon: the skeleton
 * builds and passes as it is, with exec:node on local:exec and with docker:node on local:docker.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli, scratchDir, startDaemonProcess, type DaemonProcess } from '../helpers/processes.ts';

describe('plan create, then run single on a clean home', () => {
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  let daemon: DaemonProcess;
  let env: Record<string, string>;
  before(async () => {
    scratch = await scratchDir('plan-create');
    const home = path.join(scratch.dir, 'home');
    daemon = await startDaemonProcess({ home });
    env = { TESTGROUND_HOME: home, TESTGROUND_ENDPOINT: daemon.url };
  });
  after(async () => {
    await daemon?.stop();
    await scratch?.remove();
  });

  it('creates a plan that describe shows and that runs to success on local:exec', async () => {
    const created = await runCli(['plan', 'create', '-p', 'hello'], { cwd: scratch.dir, env });
    assert.equal(created.code, 0, created.stderr);
    const described = await runCli(['describe', '-p', 'hello'], { cwd: scratch.dir, env });
    assert.match(described.stdout, /^test case hello: 1 to 100 instances \(default 2\)$/m);
    const ran = await runCli(
      ['run', 'single', '-p', 'hello', '-t', 'hello', '-i', '3', '--tp', 'greeting=hi', '--wait'],
      { cwd: scratch.dir, env },
    );
    assert.equal(ran.code, 0, `${ran.stdout}\n${ran.stderr}`);
    for (const seq of [1, 2, 3]) assert.match(ran.stdout, new RegExp(`hi from instance ${seq} of 3`));
    assert.match(ran.stdout, /outcome success/);
  });

  it('runs to success on local:docker with docker:node', async () => {
    const ran = await runCli(
      [
        'run',
        'single',
        '-p',
        'hello',
        '-t',
        'hello',
        '-i',
        '2',
        '-b',
        'docker:node',
        '-r',
        'local:docker',
        '--wait',
      ],
      { cwd: scratch.dir, env },
    );
    assert.equal(ran.code, 0, `${ran.stdout}\n${ran.stderr}`);
    assert.match(ran.stdout, /hello from instance 2 of 2/);
  });
});

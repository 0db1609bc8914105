/**
 * Plan code never sees the daemon's secrets: a real daemon (root, so plan code runs as `nobody`) holding a
 * token and a canary variable in its environment builds and runs a plan whose npm `preinstall` script (it
 * opts in) and whose instance look for them everywhere they can: their own environment,
 * `/proc/<ppid>/environ`, and the environ of every process they can open. On local:exec and local:docker.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { walkDir } from '../../core/walk-dir.ts';
import { daemonLabel, labelFilter, planLabel } from '../../docker/labels.ts';
import { connectEngine, removeScope } from '../docker/docker-fixtures.ts';
import { taskIdOf } from '../helpers/daemon-api.ts';
import {
  repoRoot,
  runCli,
  scratchDir,
  startDaemonProcess,
  type DaemonProcess,
} from '../helpers/processes.ts';

const planDir = path.join(repoRoot, 'test/fixtures/plans/isolation-probe');
const nobody = 65534;

interface Probe {
  uid: number;
  env: Record<string, string>;
  parent: { pid: number; environ?: string[]; error?: string };
  readable: { pid: number; environ: string[] }[];
  unreadable: number;
  tmpMarker: string;
  tmp: string;
}

describe('plan code cannot see the daemon environment (real daemon as root, plan user nobody)', () => {
  const token = `token-${randomBytes(12).toString('hex')}`;
  const canary = `canary-${randomBytes(12).toString('hex')}`;
  let daemon: DaemonProcess;
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  const markers: string[] = [];

  before(async () => {
    assert.equal(process.getuid?.(), 0, 'this test needs root: the daemon switches plan code to nobody');
    scratch = await scratchDir('plan-isolation');
    daemon = await startDaemonProcess({
      home: path.join(scratch.dir, 'home'),
      env: { TESTGROUND_TOKEN: token, TESTGROUND_ISOLATION_CANARY: canary },
    });
  });
  after(async () => {
    await daemon?.stop();
    const daemonId = await readFile(path.join(scratch.dir, 'home', 'daemon-id'), 'utf8').catch(() => '');
    if (daemonId) {
      const engine = await connectEngine();
      await removeScope(
        engine,
        labelFilter({ [daemonLabel]: daemonId.trim(), [planLabel]: 'isolation-probe' }),
      );
    }
    // The docker:node build's probe stays in its image, so its /tmp file is found by name.
    const leftMarkers = (await readdir('/tmp')).filter((name) => name.startsWith('tg-isolation-probe-'));
    for (const marker of [...markers, ...leftMarkers.map((name) => path.join('/tmp', name))]) {
      await rm(marker, { force: true });
    }
    await scratch?.remove();
  });

  const run = async (args: string[]): Promise<string> => {
    const result = await runCli(
      [
        '--endpoint',
        daemon.url,
        'run',
        'single',
        '--plan',
        planDir,
        '--testcase',
        'probe',
        '--instances',
        '1',
        '--wait',
        ...args,
      ],
      { env: { TESTGROUND_TOKEN: token } },
    );
    assert.equal(
      result.code,
      0,
      `stdout:\n${result.stdout}\nstderr:\n${result.stderr}\ndaemon:\n${daemon.log()}`,
    );
    return taskIdOf(result.stdout);
  };

  /** The probe files named `name` under `dir`. */
  const probesUnder = async (dir: string, name: string): Promise<Probe[]> => {
    const entries = await walkDir(dir);
    const files = entries.filter((entry) => entry.kind === 'file' && path.basename(entry.name) === name);
    return Promise.all(files.map(async (file) => JSON.parse(await readFile(file.absolute, 'utf8')) as Probe));
  };

  const assertSawNoSecret = async (probe: Probe, where: string): Promise<void> => {
    const seen = JSON.stringify({ env: probe.env, parent: probe.parent, readable: probe.readable });
    for (const secret of [token, canary]) {
      assert.ok(!seen.includes(secret), `${where}: plan code saw a secret of the daemon's environment`);
    }
    assert.equal(probe.uid, nobody, `${where}: plan code runs as nobody`);
    // Whatever it wrote to /tmp is nobody's, like any unprivileged user's file, and is removed here.
    if (probe.tmp === 'written') {
      markers.push(probe.tmpMarker);
      assert.equal((await stat(probe.tmpMarker)).uid, nobody, `${where}: its /tmp file belongs to nobody`);
    }
  };

  it('local:exec: the preinstall script and the instance run as nobody and read no secret, not even through /proc/<ppid>/environ', async () => {
    const taskId = await run(['--builder', 'exec:node', '--runner', 'local:exec']);
    const [built] = await probesUnder(path.join(daemon.home, 'cache', 'exec-node'), 'build-probe.json');
    assert.ok(built, 'the preinstall script ran (the plan opts in) and left its probe in the bundle');
    await assertSawNoSecret(built, 'preinstall');

    const [instance] = await probesUnder(path.join(daemon.home, 'outputs'), 'probe.json').then((all) =>
      all.length === 1 ? all : assert.fail(`expected one instance probe for ${taskId}, found ${all.length}`),
    );
    assert.ok(instance);
    // Its parent is the daemon: the file exists, and nobody may not open it.
    assert.equal(instance.parent.error, 'EACCES', JSON.stringify(instance.parent));
    assert.ok(instance.unreadable > 0, 'the daemon and its other processes are out of reach');
    await assertSawNoSecret(instance, 'local:exec instance');
  });

  it('local:docker: the instance reads no secret through /proc/<ppid>/environ or any process it can see', async () => {
    const before = (await probesUnder(path.join(daemon.home, 'outputs'), 'probe.json')).length;
    await run(['--builder', 'docker:node', '--runner', 'local:docker']);
    const probes = await probesUnder(path.join(daemon.home, 'outputs'), 'probe.json');
    assert.equal(probes.length, before + 1);
    const instance = probes.find((probe) => probe.uid !== nobody || probe.parent.pid === 0);
    assert.ok(instance, JSON.stringify(probes.map((probe) => probe.parent)));
    // The first process of its own pid namespace: its parent is outside, pid 0, which /proc does not list.
    assert.equal(instance.parent.pid, 0);
    assert.equal(instance.parent.error, 'ENOENT');
    const seen = JSON.stringify({ env: instance.env, parent: instance.parent, readable: instance.readable });
    for (const secret of [token, canary])
      assert.ok(!seen.includes(secret), 'a container saw a daemon secret');
  });
});

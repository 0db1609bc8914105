import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exitCodes } from '../../cli/exit-codes.ts';
import {
  isRunning,
  runCli,
  scratchDir,
  startDaemonProcess,
  waitFor,
  type DaemonProcess,
} from '../helpers/processes.ts';
import { labelFilter, runIdLabel } from '../../docker/labels.ts';
import { connectEngine } from '../docker/docker-fixtures.ts';
import { placeboComposition } from '../helpers/app.ts';
import { runSingle, taskIdOf, waitForState } from '../helpers/daemon-api.ts';

describe('a daemon stopped or killed ends its work honestly when it stops or starts again', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  // One daemon process for what only a process shows: the token and upload limit it reads from its
  // environment (everything else about the API is tested in-process, test/helpers/app.ts), then its exit.
  describe('a daemon configured by its environment', () => {
    const token = 'process-test-token';
    let daemon: DaemonProcess;
    let home: string;
    before(async () => {
      const scratch = await scratchDir('sigterm');
      cleanups.push(scratch.remove);
      home = path.join(scratch.dir, 'home');
      daemon = await startDaemonProcess({
        home,
        env: { TESTGROUND_TOKEN: token, TESTGROUND_MAX_UPLOAD: '1MiB' },
      });
      cleanups.push(daemon.stop);
    });

    it('refuses requests without the token, and the CLI passes it when given', async () => {
      assert.equal((await fetch(`${daemon.url}/api/v1/health`)).status, 200, 'health needs no token');
      assert.equal((await fetch(`${daemon.url}/api/v1/tasks`)).status, 401);
      const without = await runCli(['--endpoint', daemon.url, 'tasks'], { env: { TESTGROUND_TOKEN: '' } });
      assert.equal(without.code, exitCodes.rejected, without.stderr);
      assert.match(without.stderr, /token/);
      const withToken = await runCli(['--endpoint', daemon.url, '--token', token, 'tasks']);
      assert.equal(withToken.code, exitCodes.success, withToken.stderr);
      assert.match(withToken.stdout, /^ID\s+PLAN\/CASE/);
    });

    it('answers 413 to an upload over TESTGROUND_MAX_UPLOAD', async () => {
      const form = new FormData();
      form.set('composition', placeboComposition());
      form.set('plan', new Blob([Buffer.alloc(2 * 1024 * 1024, 7)]), 'plan.tar.gz');
      const response = await fetch(`${daemon.url}/api/v1/runs`, {
        method: 'POST',
        body: form,
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(response.status, 413);
      const body = (await response.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'too_large');
      assert.match(body.error.message, /1048576 bytes/);
    });

    it('stops gracefully on SIGTERM: exit code 0, and its embedded redis-server stopped', async () => {
      const redisPid = Number(await readFile(path.join(home, 'redis', 'redis.pid'), 'utf8'));
      assert.ok(isRunning(redisPid), 'the daemon owns a running redis-server');
      assert.equal(await daemon.stop(), 0, daemon.log());
      await waitFor('the embedded redis-server to stop', async () =>
        isRunning(redisPid) ? undefined : true,
      );
    });
  });

  it('after a SIGKILL mid-run, a restarted daemon ends the task as error, stops its instances, and runs queued tasks', async () => {
    const scratch = await scratchDir('sigkill');
    cleanups.push(scratch.remove);
    const home = path.join(scratch.dir, 'home');
    let daemon: DaemonProcess = await startDaemonProcess({
      home,
      env: { TESTGROUND_WORKER_CONCURRENCY: '1' },
    });
    const stalled = taskIdOf(
      (await runSingle(daemon.url, 'placebo', 'stall', ['--instances', '2', '--timeout', '5m'])).stdout,
    );
    await waitForState(daemon.url, stalled, 'running');
    const queued = taskIdOf((await runSingle(daemon.url, 'placebo', 'ok', ['--instances', '1'])).stdout);
    const pidsFile = path.join(home, 'temp', stalled, 'instance.pids');
    // The run's sync service process and its two instances.
    const pids = await waitFor('the sync service and both instances to be started', async () => {
      const found = (await readFile(pidsFile, 'utf8').catch(() => ''))
        .trim()
        .split('\n')
        .filter(Boolean)
        .map(Number);
      return found.length === 3 ? found : undefined;
    });

    daemon.child.kill('SIGKILL');
    await new Promise((resolve) => daemon.child.once('exit', resolve));
    for (const pid of pids) assert.ok(isRunning(pid), 'SIGKILL of the daemon leaves its instances behind');

    daemon = await startDaemonProcess({ home, env: { TESTGROUND_WORKER_CONCURRENCY: '1' } });
    cleanups.push(daemon.stop);
    const interrupted = await waitForState(daemon.url, stalled, 'complete');
    assert.equal(interrupted.outcome, 'error');
    assert.equal(interrupted.error, 'daemon restarted during the run');
    await waitFor('the left-behind instances to be stopped', async () =>
      pids.some(isRunning) ? undefined : true,
    );
    const next = await waitForState(daemon.url, queued, 'complete');
    assert.equal(next.outcome, 'success');
  });
  it('after a SIGKILL mid docker run, a restarted daemon ends the task as error, removes its containers and network, and runs queued tasks', async () => {
    const engine = await connectEngine();
    const scratch = await scratchDir('sigkill-docker');
    cleanups.push(scratch.remove);
    const home = path.join(scratch.dir, 'home');
    const docker = ['--builder', 'docker:node', '--runner', 'local:docker'];
    let daemon: DaemonProcess = await startDaemonProcess({
      home,
      env: { TESTGROUND_WORKER_CONCURRENCY: '1' },
    });
    const submit = async (testCase: string, extra: string[] = []): Promise<string> =>
      taskIdOf(
        (await runSingle(daemon.url, 'placebo', testCase, [...docker, '--instances', '2', ...extra])).stdout,
      );
    const objectsOf = async (runId: string): Promise<number> =>
      (await engine.listContainers(labelFilter({ [runIdLabel]: runId }), { all: true })).length +
      (await engine.listNetworks(labelFilter({ [runIdLabel]: runId }))).length;

    const stalled = await submit('stall', ['--timeout', '5m']);
    // Two instances and the sync service container, plus the data and control networks.
    await waitFor(
      "the stalled run's containers to be up",
      async () => ((await objectsOf(stalled)) === 5 ? true : undefined),
      90_000,
    );
    const queued = await submit('ok');

    daemon.child.kill('SIGKILL');
    await new Promise((resolve) => daemon.child.once('exit', resolve));
    assert.equal(await objectsOf(stalled), 5, 'SIGKILL of the daemon leaves its containers behind');

    daemon = await startDaemonProcess({ home, env: { TESTGROUND_WORKER_CONCURRENCY: '1' } });
    cleanups.push(daemon.stop);
    const interrupted = await waitForState(daemon.url, stalled, 'complete');
    assert.equal(interrupted.outcome, 'error');
    assert.equal(interrupted.error, 'daemon restarted during the run');
    assert.equal(await objectsOf(stalled), 0, 'its containers and networks are gone');
    const next = await waitForState(daemon.url, queued, 'complete', 90_000);
    assert.equal(next.outcome, 'success');
  });
});

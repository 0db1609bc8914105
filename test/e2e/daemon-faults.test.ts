import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { startEmbeddedRedis } from '../../daemon/embedded-redis.ts';
import {
  isRunning,
  scratchDir,
  startDaemonProcess,
  waitFor,
  type DaemonProcess,
} from '../helpers/processes.ts';
import { labelFilter, runIdLabel } from '../../docker/labels.ts';
import { connectEngine } from '../docker/docker-fixtures.ts';
import { runSingle, taskIdOf, taskOf, waitForState } from '../helpers/daemon-api.ts';

describe('the daemon survives faults and ends interrupted work honestly', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  /** A daemon on a redis-server the test can stop and start again (same data directory). */
  const daemonWithOwnRedis = async (
    name: string,
  ): Promise<{ daemon: DaemonProcess; redis: { stop: () => Promise<void>; start: () => Promise<void> } }> => {
    const scratch = await scratchDir(name);
    cleanups.push(scratch.remove);
    const redisDir = path.join(scratch.dir, 'redis');
    let server = await startEmbeddedRedis(redisDir, pino({ level: 'silent' }));
    cleanups.push(() => server.stop());
    const daemon = await startDaemonProcess({
      home: path.join(scratch.dir, 'home'),
      env: { REDIS_URL: `unix://${server.socketPath}` },
    });
    cleanups.push(daemon.stop);
    const redis = {
      stop: () => server.stop(),
      start: async () => {
        server = await startEmbeddedRedis(redisDir, pino({ level: 'silent' }));
      },
    };
    return { daemon, redis };
  };

  it('stops gracefully on SIGTERM: exit code 0, and its embedded redis-server stopped', async () => {
    const scratch = await scratchDir('sigterm');
    cleanups.push(scratch.remove);
    const home = path.join(scratch.dir, 'home');
    const daemon = await startDaemonProcess({ home });
    const redisPid = Number(await readFile(path.join(home, 'redis', 'redis.pid'), 'utf8'));
    assert.ok(isRunning(redisPid), 'the daemon owns a running redis-server');
    assert.equal(await daemon.stop(), 0, daemon.log());
    await waitFor('the embedded redis-server to stop', async () => (isRunning(redisPid) ? undefined : true));
  });

  it('keeps serving through a Redis restart and runs plans again afterwards', async () => {
    const { daemon, redis } = await daemonWithOwnRedis('redis-restart');

    const before = await runSingle(daemon.url, 'placebo', 'ok', ['--instances', '1', '--wait']);
    assert.equal(before.code, 0, before.stdout + before.stderr);

    await redis.stop();
    const down = await fetch(`${daemon.url}/api/v1/health`);
    assert.equal(down.status, 503, 'health reports the dependency down');
    const report = (await down.json()) as { checks: { redis: { ok: boolean } } };
    assert.equal(report.checks.redis.ok, false);

    await redis.start();
    await waitFor('health to recover', async () =>
      (await fetch(`${daemon.url}/api/v1/health`)).status === 200 ? true : undefined,
    );
    const afterRestart = await runSingle(daemon.url, 'placebo', 'ok', ['--instances', '1', '--wait']);
    assert.equal(afterRestart.code, 0, afterRestart.stdout + afterRestart.stderr);
    // The earlier task survived the restart (append-only file).
    assert.equal((await taskOf(daemon.url, taskIdOf(before.stdout))).outcome, 'success');
    assert.equal(daemon.child.exitCode, null, 'the daemon is still running');
  });

  it('a run in progress through a Redis outage longer than the job lock still ends honestly', async () => {
    const { daemon, redis } = await daemonWithOwnRedis('redis-outage');
    const id = taskIdOf(
      (await runSingle(daemon.url, 'placebo', 'stall', ['--instances', '1', '--timeout', '45s'])).stdout,
    );
    await waitForState(daemon.url, id, 'running');

    // Longer than BullMQ's 30 s lock: when Redis is back, the job is handed out again as stalled.
    await redis.stop();
    await new Promise((resolve) => setTimeout(resolve, 32_000));
    await redis.start();

    const task = await waitForState(daemon.url, id, 'complete', 90_000);
    assert.equal(task.outcome, 'failure', `${task.outcome}: ${task.error}`);
    assert.deepEqual(
      task.result?.instances.map((instance) => instance.outcome),
      ['timeout'],
    );
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
    // Two instances and the sync service container, plus the network.
    await waitFor(
      "the stalled run's containers to be up",
      async () => ((await objectsOf(stalled)) === 4 ? true : undefined),
      90_000,
    );
    const queued = await submit('ok');

    daemon.child.kill('SIGKILL');
    await new Promise((resolve) => daemon.child.once('exit', resolve));
    assert.equal(await objectsOf(stalled), 4, 'SIGKILL of the daemon leaves its containers behind');

    daemon = await startDaemonProcess({ home, env: { TESTGROUND_WORKER_CONCURRENCY: '1' } });
    cleanups.push(daemon.stop);
    const interrupted = await waitForState(daemon.url, stalled, 'complete');
    assert.equal(interrupted.outcome, 'error');
    assert.equal(interrupted.error, 'daemon restarted during the run');
    assert.equal(await objectsOf(stalled), 0, 'its containers and network are gone');
    const next = await waitForState(daemon.url, queued, 'complete', 90_000);
    assert.equal(next.outcome, 'success');
  });
});

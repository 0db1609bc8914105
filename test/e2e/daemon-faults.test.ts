import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { startEmbeddedRedis } from '../../daemon/embedded-redis.ts';
import { scratchDir, startDaemonProcess, waitFor, type DaemonProcess } from '../helpers/processes.ts';
import { runSingle, taskIdOf, taskOf, waitForState } from '../helpers/daemon-api.ts';

describe('the daemon survives a Redis outage and ends interrupted work honestly', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  /** A daemon on a redis-server the test can stop and start again (same data directory). */
  const daemonWithOwnRedis = async (
    name: string,
    env: Record<string, string> = {},
  ): Promise<{ daemon: DaemonProcess; redis: { stop: () => Promise<void>; start: () => Promise<void> } }> => {
    const scratch = await scratchDir(name);
    cleanups.push(scratch.remove);
    const redisDir = path.join(scratch.dir, 'redis');
    let server = await startEmbeddedRedis(redisDir, pino({ level: 'silent' }));
    cleanups.push(() => server.stop());
    const daemon = await startDaemonProcess({
      home: path.join(scratch.dir, 'home'),
      env: { REDIS_URL: `unix://${server.socketPath}`, ...env },
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
    // A 5 s job lock (30 s by default) keeps the test short; the outage outlasts it all the same.
    const { daemon, redis } = await daemonWithOwnRedis('redis-outage', { TESTGROUND_JOB_LOCK: '5s' });
    const id = taskIdOf(
      (await runSingle(daemon.url, 'placebo', 'stall', ['--instances', '1', '--timeout', '20s'])).stdout,
    );
    await waitForState(daemon.url, id, 'running');

    // Longer than the job lock: when Redis is back, the job is handed out again as stalled.
    await redis.stop();
    await new Promise((resolve) => setTimeout(resolve, 7_000));
    await redis.start();

    const task = await waitForState(daemon.url, id, 'complete', 90_000);
    assert.equal(task.outcome, 'failure', `${task.outcome}: ${task.error}`);
    assert.deepEqual(
      task.result?.instances.map((instance) => instance.outcome),
      ['timeout'],
    );
  });
});

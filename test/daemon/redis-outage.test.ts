import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { loadDaemonConfig } from '../../daemon/config.ts';
import { startDaemon, type RunningDaemon } from '../../daemon/main.ts';
import { memoryLogger } from '../helpers/memory-logger.ts';
import { scratchDir, waitFor } from '../helpers/processes.ts';

/** A redis-server without persistence: stopped and started again, it comes back empty. */
function startVolatileRedis(socketPath: string): ChildProcess {
  return spawn(
    'redis-server',
    ['--port', '0', '--unixsocket', socketPath, '--save', '', '--appendonly', 'no', '--loglevel', 'warning'],
    { stdio: 'ignore' },
  );
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

async function timed(
  url: string,
): Promise<{ status: number; body: unknown; ms: number; retryAfter: string | null }> {
  const started = performance.now();
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  const body: unknown = await response.json();
  return {
    status: response.status,
    body,
    ms: performance.now() - started,
    retryAfter: response.headers.get('retry-after'),
  };
}

describe('the API while Redis is away (in-process daemon, real redis-server)', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  });

  it('answers 503 redis_unavailable within 2 s, then notices that Redis came back empty', async () => {
    const scratch = await scratchDir('outage');
    cleanups.push(scratch.remove);
    const socketPath = path.join(scratch.dir, 'redis.sock');
    let server = startVolatileRedis(socketPath);
    cleanups.push(() => stopProcess(server));
    const config = loadDaemonConfig(
      { REDIS_URL: `unix://${socketPath}`, LOG_LEVEL: 'debug' },
      { home: path.join(scratch.dir, 'home'), listen: '127.0.0.1:0' },
    );
    const logged = memoryLogger();
    // The server needs a moment to open its socket; the daemon waits for its clients to connect.
    const daemon: RunningDaemon = await startDaemon(config, logged.logger);
    cleanups.push(() => daemon.close());
    const api = `${daemon.url}/api/v1`;
    assert.equal((await timed(`${api}/tasks`)).status, 200);
    const healthy = await timed(`${api}/health`);
    assert.equal(healthy.status, 200);
    assert.equal((healthy.body as { checks: { redis_data: { ok: boolean } } }).checks.redis_data.ok, true);

    // Hung (the process stopped, the connection open): bounded by the command timeout.
    server.kill('SIGSTOP');
    const hung = await timed(`${api}/tasks`);
    server.kill('SIGCONT');
    assert.equal(hung.status, 503);
    assert.deepEqual((hung.body as { error: { code: string } }).error.code, 'redis_unavailable');
    assert.match((hung.body as { error: { message: string } }).error.message, /no answer within 1500 ms/);
    assert.ok(hung.ms < 2_000, `answered in ${hung.ms.toFixed(0)} ms`);
    await waitFor('Redis to answer again', async () =>
      (await timed(`${api}/tasks`)).status === 200 ? true : undefined,
    );

    // Gone: answered at once.
    await stopProcess(server);
    for (const route of ['/tasks', '/tasks/abc', '/tasks/abc/logs']) {
      const answer = await timed(`${api}${route}`);
      assert.equal(answer.status, 503, route);
      assert.equal((answer.body as { error: { code: string } }).error.code, 'redis_unavailable', route);
      assert.ok(answer.ms < 2_000, `${route} answered in ${answer.ms.toFixed(0)} ms`);
      assert.equal(answer.retryAfter, '1', 'clients are told when to try again');
    }
    const down = await timed(`${api}/health`);
    assert.equal(down.status, 503);
    assert.ok(down.ms < 2_000);

    server = startVolatileRedis(socketPath);
    const back = await waitFor('the daemon to see Redis again', async () => {
      const answer = await timed(`${api}/health`);
      const checks = (answer.body as { checks: Record<string, { ok: boolean; message: string }> }).checks;
      return answer.status === 200 && checks.redis_data?.ok === false ? checks : undefined;
    });
    assert.match(back.redis_data!.message, /Redis lost its data/);
    assert.ok(
      logged.atLevel('error').some((entry) => /Redis lost its data/.test(entry.msg)),
      'the loss is logged as an error',
    );
    assert.equal((await timed(`${api}/tasks`)).status, 200, 'and the API serves again');
  });
});

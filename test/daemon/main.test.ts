import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { loadDaemonConfig } from '../../daemon/config.ts';
import { startDaemon } from '../../daemon/main.ts';
import { memoryLogger } from '../helpers/memory-logger.ts';
import { isRunning, runCli, scratchDir, waitFor } from '../helpers/processes.ts';

describe('startDaemon in process', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('serves, then close() runs every shutdown step once and is safe to call twice', async () => {
    const scratch = await scratchDir('main');
    cleanups.push(scratch.remove);
    const home = path.join(scratch.dir, 'home');
    const config = loadDaemonConfig({ LOG_LEVEL: 'debug' }, { home, listen: '127.0.0.1:0' });
    const logged = memoryLogger();
    const daemon = await startDaemon(config, logged.logger);
    cleanups.push(() => daemon.close());
    const redisPid = Number(await readFile(path.join(home, 'redis', 'redis.pid'), 'utf8'));
    assert.equal((await fetch(`${daemon.url}/api/v1/health`)).status, 200);

    const first = daemon.close();
    assert.equal(daemon.close(), first, 'a second call shares the first shutdown');
    await first;
    await daemon.close();
    await assert.rejects(fetch(`${daemon.url}/api/v1/health`), 'the server no longer listens');
    await waitFor('the embedded redis-server to stop', async () => (isRunning(redisPid) ? undefined : true));
    assert.deepEqual(
      logged.entries.filter((entry) => /^daemon st/.test(entry.msg)).map((entry) => entry.msg),
      ['daemon stopping', 'daemon stopped'],
    );
    assert.deepEqual(
      logged.atLevel('error').map((entry) => entry.msg),
      [],
      'no shutdown step failed',
    );
  });
  it('a start-up error ends the process non-zero with the reason, leaving no redis-server behind', async () => {
    const scratch = await scratchDir('main-fails');
    cleanups.push(scratch.remove);
    const home = path.join(scratch.dir, 'home');
    // The port is taken: the daemon fails after its embedded redis-server and Redis clients started.
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => taken.close(resolve)));
    const port = (taken.address() as net.AddressInfo).port;
    const started = performance.now();
    const result = await Promise.race([
      runCli(['daemon', '--listen', `127.0.0.1:${port}`, '--home', home]),
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('the daemon was still alive after 30 s')), 30_000).unref(),
      ),
    ]);
    assert.notEqual(result.code, 0);
    assert.match(result.stdout + result.stderr, /daemon could not start: .*EADDRINUSE/);
    assert.match(result.stderr, /EADDRINUSE/, 'the CLI prints the reason');
    assert.ok(performance.now() - started < 20_000);
    assert.equal(existsSync(path.join(home, 'redis', 'redis.pid')), false, 'its redis-server was stopped');
  });
});

/**
 * `testground daemon` as a process: a start-up error ends it with the reason, instead of leaving it alive
 * (held by its embedded redis-server and Redis clients) without listening.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { runCli, scratchDir } from '../helpers/processes.ts';

describe('a daemon that cannot start', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('exits non-zero with the reason, leaving no redis-server behind', async () => {
    const scratch = await scratchDir('start-fails');
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
    assert.ok(existsSync(path.join(home, 'redis')), 'it got as far as starting its redis-server');
    assert.equal(existsSync(path.join(home, 'redis', 'redis.pid')), false, 'which it stopped');
  });
});

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { loadDaemonConfig } from '../../daemon/config.ts';
import { startDaemon } from '../../daemon/main.ts';
import { memoryLogger } from '../helpers/memory-logger.ts';
import { isRunning, scratchDir, waitFor } from '../helpers/processes.ts';

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
});

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { formatTokenEntry, hashToken, newToken } from '../../core/token-file.ts';
import { checkExposure, isLoopbackHost, loadDaemonConfig } from '../../daemon/config.ts';
import { startDaemon } from '../../daemon/main.ts';
import { memoryLogger } from '../helpers/memory-logger.ts';
import { scratchDir } from '../helpers/processes.ts';

describe('a daemon off loopback needs tokens', () => {
  it('tells loopback addresses from the others', () => {
    for (const host of [
      '127.0.0.1',
      '127.8.9.10',
      'localhost',
      'LOCALHOST',
      '::1',
      '[::1]',
      '::ffff:127.0.0.1',
    ])
      assert.equal(isLoopbackHost(host), true, host);
    for (const host of [
      '0.0.0.0',
      '::',
      '[::]',
      '10.0.0.5',
      '192.168.1.2',
      'example.com',
      '128.0.0.1',
      '::ffff:10.0.0.1',
    ])
      assert.equal(isLoopbackHost(host), false, host);
  });

  it('refuses a non-loopback address without tokens, unless told it is meant', () => {
    assert.throws(
      () => checkExposure('0.0.0.0:8042', false, false),
      (error: Error) => {
        assert.match(
          error.message,
          /^refusing to start: listening on 0\.0\.0\.0:8042 \(not loopback\) without tokens would let anyone who reaches the port run code on this host; add tokens \("testground token add/,
        );
        assert.match(error.message, /--insecure-no-auth/);
        return true;
      },
    );
    checkExposure('0.0.0.0:8042', true, false);
    checkExposure('0.0.0.0:8042', false, true);
    checkExposure('127.0.0.1:8042', false, false);
    checkExposure('[::1]:8042', false, false);
  });

  it('reads the tokens file and the insecure flag from flags and the environment', () => {
    const fromEnv = loadDaemonConfig({
      TESTGROUND_TOKENS_FILE: 'rel/tokens',
      TESTGROUND_INSECURE_NO_AUTH: '1',
    });
    assert.equal(fromEnv.tokensFile, path.resolve('rel/tokens'));
    assert.equal(fromEnv.insecureNoAuth, true);
    const fromFlags = loadDaemonConfig(
      { TESTGROUND_TOKENS_FILE: '/a', TESTGROUND_INSECURE_NO_AUTH: '1' },
      { tokensFile: '/b', insecureNoAuth: false },
    );
    assert.equal(fromFlags.tokensFile, '/b');
    assert.equal(fromFlags.insecureNoAuth, false);
    assert.equal(loadDaemonConfig({}).insecureNoAuth, false);
    assert.equal(loadDaemonConfig({}).tokensFile, undefined);
  });

  it('startDaemon stops before it creates anything when it would be open to the network', async (t) => {
    const scratch = await scratchDir('exposure');
    t.after(scratch.remove);
    const home = path.join(scratch.dir, 'home');
    const config = loadDaemonConfig({}, { home, listen: '0.0.0.0:0' });
    await assert.rejects(
      startDaemon(config, memoryLogger().logger),
      /refusing to start: listening on 0\.0\.0\.0:0/,
    );
    assert.equal(existsSync(home), false, 'no home, no Redis, no listener');
  });

  it('with a tokens file it listens off loopback: /health is public, the rest needs a token', async (t) => {
    const scratch = await scratchDir('exposure');
    t.after(scratch.remove);
    const tokensFile = path.join(scratch.dir, 'tokens');
    const token = newToken();
    await writeFile(
      tokensFile,
      `${formatTokenEntry({ hash: hashToken(token), user: 'ops', role: 'admin' })}\n`,
    );
    const config = loadDaemonConfig(
      {},
      { home: path.join(scratch.dir, 'home'), listen: '0.0.0.0:0', tokensFile },
    );
    const logged = memoryLogger();
    const daemon = await startDaemon(config, logged.logger);
    t.after(() => daemon.close());
    const url = daemon.url.replace('0.0.0.0', '127.0.0.1');
    assert.equal((await fetch(`${url}/api/v1/health`)).status, 200);
    assert.equal((await fetch(`${url}/api/v1/tasks`)).status, 401);
    const listed = await fetch(`${url}/api/v1/tasks`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(listed.status, 200);
    const started = logged.entries.find((entry) => /^authentication on/.test(entry.msg));
    assert.deepEqual(
      { file: started?.file, tokens: started?.tokens, users: started?.users },
      { file: tokensFile, tokens: 1, users: ['ops'] },
    );
    assert.doesNotMatch(JSON.stringify(logged.entries), new RegExp(token), 'the token is never logged');
  });
});

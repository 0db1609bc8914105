import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import {
  defaultSyncServiceHost,
  defaultSyncServicePort,
  RunEnvError,
} from '../../core/contract/instance-env.ts';
import { parseRunParams } from '../../sdk/runenv.ts';
import {
  openSyncSocket,
  syncClientOptionsFor,
  syncClientOptionsFromEnv,
  syncServiceUrl,
} from '../../sdk/sync-connect.ts';
import { SyncConnectionError } from '../../sdk/sync-errors.ts';
import { startSyncService } from '../../sync/sync-service.ts';
import { instanceEnv } from './spawn-instance.ts';

const scope = { TEST_RUN: 'r', TEST_PLAN: 'p', TEST_CASE: 'c' };

describe('syncClientOptionsFromEnv', () => {
  it('reads the service address and the key scope, with the contract defaults', () => {
    assert.deepEqual(syncClientOptionsFromEnv(scope), {
      host: 'testground-sync-service',
      port: 5050,
      runId: 'r',
      plan: 'p',
      testCase: 'c',
    });
    assert.equal(defaultSyncServiceHost, 'testground-sync-service');
    assert.equal(defaultSyncServicePort, 5050);
    const custom = syncClientOptionsFromEnv({
      ...scope,
      SYNC_SERVICE_HOST: '10.0.0.2',
      SYNC_SERVICE_PORT: '6060',
    });
    assert.equal(custom.host, '10.0.0.2');
    assert.equal(custom.port, 6060);
  });

  it('treats empty variables as unset, as parseRunParams does', () => {
    const options = syncClientOptionsFromEnv({ ...scope, SYNC_SERVICE_HOST: '', SYNC_SERVICE_PORT: '' });
    assert.equal(options.host, 'testground-sync-service');
    assert.equal(options.port, 5050);
  });

  it('refuses what parseRunParams refuses, naming every variable', () => {
    for (const port of ['http', '0', '65536', '50.5', ' 5050']) {
      assert.throws(
        () => syncClientOptionsFromEnv({ ...scope, SYNC_SERVICE_PORT: port }),
        (error: unknown) => {
          assert.ok(error instanceof RunEnvError);
          assert.deepEqual(error.problems, [
            `SYNC_SERVICE_PORT must be a port number from 1 to 65535, got ${JSON.stringify(port)}`,
          ]);
          return true;
        },
        port,
      );
      assert.throws(() => parseRunParams(instanceEnv({ SYNC_SERVICE_PORT: port })), RunEnvError, port);
    }
    assert.throws(
      () => syncClientOptionsFromEnv({ TEST_RUN: 'r', SYNC_SERVICE_PORT: 'x' }),
      (error: unknown) => {
        assert.ok(error instanceof RunEnvError);
        assert.deepEqual(error.problems, [
          'TEST_PLAN is not set',
          'TEST_CASE is not set',
          'SYNC_SERVICE_PORT must be a port number from 1 to 65535, got "x"',
        ]);
        assert.match(error.message, /set them yourself when running a plan by hand/);
        return true;
      },
    );
  });

  it('gives the same options as a parsed run environment', () => {
    const env = instanceEnv({
      TEST_OUTPUTS_PATH: '/o',
      SYNC_SERVICE_HOST: 'sync',
      SYNC_SERVICE_PORT: '7070',
    });
    assert.deepEqual(syncClientOptionsFromEnv(env), syncClientOptionsFor(parseRunParams(env)));
  });
});

describe('openSyncSocket', () => {
  it('brackets IPv6 hosts in the URL', () => {
    assert.equal(syncServiceUrl('127.0.0.1', 5050), 'ws://127.0.0.1:5050');
    assert.equal(syncServiceUrl('::1', 5050), 'ws://[::1]:5050');
  });

  it('opens a socket to a running service', { timeout: 10_000 }, async () => {
    const service = await startSyncService();
    after(() => service.close());
    const ws = await openSyncSocket({ host: '127.0.0.1', port: service.port });
    assert.equal(ws.url, `ws://127.0.0.1:${service.port}`);
    ws.terminate();
  });

  it('stops retrying when its signal aborts', { timeout: 10_000 }, async () => {
    const probe = await startSyncService();
    const port = probe.port;
    await probe.close();
    const abort = new AbortController();
    const started = Date.now();
    setTimeout(() => abort.abort(new Error('gave up')), 200);
    await assert.rejects(
      openSyncSocket({ host: '127.0.0.1', port, connectTimeoutMs: 30_000, signal: abort.signal }),
      /gave up/,
    );
    assert.ok(Date.now() - started < 5_000);
  });

  it('fails with a SyncConnectionError after connectTimeoutMs', { timeout: 10_000 }, async () => {
    const probe = await startSyncService();
    const port = probe.port;
    await probe.close();
    await assert.rejects(
      openSyncSocket({ host: '127.0.0.1', port, connectTimeoutMs: 200 }),
      SyncConnectionError,
    );
  });
});

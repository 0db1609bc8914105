/**
 * The one API test that needs a process: the daemon reads its token and upload limit from the
 * environment and hands them to the API, and the real CLI sends the token. Everything else about the
 * API is tested in-process (test/helpers/app.ts).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exitCodes } from '../../cli/exit-codes.ts';
import { runCli, scratchDir, startDaemonProcess, type DaemonProcess } from '../helpers/processes.ts';
import { placeboComposition } from '../helpers/app.ts';

const token = 'process-test-token';

describe('a daemon process takes its token and upload limit from the environment', () => {
  let daemon: DaemonProcess;
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  before(async () => {
    scratch = await scratchDir('daemon-config');
    daemon = await startDaemonProcess({
      home: path.join(scratch.dir, 'home'),
      env: { TESTGROUND_TOKEN: token, TESTGROUND_MAX_UPLOAD: '1MiB' },
    });
  });
  after(async () => {
    await daemon?.stop();
    await scratch?.remove();
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
});

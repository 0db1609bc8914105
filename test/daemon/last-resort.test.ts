import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { isSurvivable } from '../../daemon/last-resort.ts';
import { repoRoot, scratchDir } from '../helpers/processes.ts';

/** Runs `body` in a real Node process with the daemon's last-resort handlers installed; what it printed. */
async function runWithHandlers(
  dir: string,
  name: string,
  body: string,
): Promise<{ code: number | null; stdout: string; log: string }> {
  const script = path.join(dir, `${name}.mts`);
  const module = pathToFileURL(path.join(repoRoot, 'daemon/last-resort.ts')).href;
  await writeFile(
    script,
    `import { pino } from ${JSON.stringify(import.meta.resolve('pino'))};
import { installLastResortHandlers } from ${JSON.stringify(module)};
const logger = pino({ base: null }, pino.destination(2));
installLastResortHandlers(process, logger, () => {
  console.log('stopping');
  process.exitCode = 1;
  setTimeout(() => process.exit(), 50);
});
${body}
`,
  );
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let log = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
    child.once('close', (code) => resolve({ code, stdout, log }));
  });
}

describe("the daemon's last-resort handlers (real processes)", () => {
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  before(async () => {
    scratch = await scratchDir('last-resort');
  });
  after(async () => {
    await scratch?.remove();
  });

  it('an I/O error nobody handled is logged and the process keeps serving', async () => {
    // A write stream without an error listener: its open failure is an uncaught exception.
    const result = await runWithHandlers(
      scratch.dir,
      'io-error',
      `import { createWriteStream } from 'node:fs';
createWriteStream('/nonexistent-testground-dir/run.out').write('x');
setTimeout(() => console.log('still serving'), 300);`,
    );
    assert.equal(result.code, 0, result.log);
    assert.equal(result.stdout, 'still serving\n');
    assert.match(result.log, /"msg":"an I\/O error no run handled; the daemon keeps serving"/);
    assert.match(result.log, /ENOENT/);
  });

  it('a stray rejection is logged and the process keeps serving', async () => {
    const result = await runWithHandlers(
      scratch.dir,
      'rejection',
      `void Promise.reject(new Error('a client closed mid-request'));
setTimeout(() => console.log('still serving'), 300);`,
    );
    assert.equal(result.code, 0, result.log);
    assert.equal(result.stdout, 'still serving\n');
    assert.match(result.log, /a client closed mid-request.*"msg":"unhandled rejection"/);
  });

  it('any other uncaught exception is fatal: logged, and the daemon is asked to stop', async () => {
    const result = await runWithHandlers(
      scratch.dir,
      'bug',
      `setTimeout(() => { throw new TypeError('a bug of ours'); }, 10);
setTimeout(() => console.log('still serving'), 2000);`,
    );
    assert.equal(result.code, 1, result.log);
    assert.equal(result.stdout, 'stopping\n');
    assert.match(result.log, /"level":60.*"msg":"uncaught exception; stopping the daemon"/);
  });

  it('tells failed system calls on files, pipes and sockets from everything else', () => {
    const io = Object.assign(new Error('EPERM: operation not permitted, write'), {
      code: 'EPERM',
      syscall: 'write',
    });
    assert.equal(isSurvivable(io), true);
    assert.equal(isSurvivable(Object.assign(new Error('x'), { code: 'ENOSPC', syscall: 'write' })), true);
    assert.equal(isSurvivable(Object.assign(new Error('x'), { code: 'ERR_INVALID_ARG_TYPE' })), false);
    assert.equal(isSurvivable(new TypeError('a bug')), false);
    assert.equal(isSurvivable('a string'), false);
  });
});

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runCli, scratchDir } from '../helpers/processes.ts';

describe('testground daemon off loopback without tokens', () => {
  it('exits non-zero with the reason, before it creates anything', async (t) => {
    const scratch = await scratchDir('exposure');
    t.after(scratch.remove);
    const home = path.join(scratch.dir, 'home');
    const result = await runCli(['daemon', '--listen', '0.0.0.0:0', '--home', home], {
      env: { TESTGROUND_TOKEN: '', TESTGROUND_TOKENS_FILE: '', TESTGROUND_INSECURE_NO_AUTH: '' },
    });
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      result.stderr,
      /refusing to start: listening on 0\.0\.0\.0:0 \(not loopback\) without tokens would let anyone who reaches the port run code on this host/,
    );
    assert.match(result.stderr, /--insecure-no-auth/);
    assert.equal(existsSync(home), false);
  });
});

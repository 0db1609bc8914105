import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ValidationError } from '../../core/errors.ts';
import { loadDaemonConfig } from '../../daemon/config.ts';

describe('TESTGROUND_PULL (when the daemon may pull a base image)', () => {
  it('is "never" by default: an air-gapped host is never made to wait for a registry', () => {
    assert.equal(loadDaemonConfig({}).pull, 'never');
    assert.equal(loadDaemonConfig({ TESTGROUND_PULL: '' }).pull, 'never');
  });

  it('takes never, missing and always, in any case', () => {
    assert.equal(loadDaemonConfig({ TESTGROUND_PULL: 'missing' }).pull, 'missing');
    assert.equal(loadDaemonConfig({ TESTGROUND_PULL: ' Always ' }).pull, 'always');
    assert.equal(loadDaemonConfig({ TESTGROUND_PULL: 'never' }).pull, 'never');
  });

  it('refuses anything else, naming the variable, the value and the accepted values', () => {
    assert.throws(
      () => loadDaemonConfig({ TESTGROUND_PULL: 'if-not-present' }),
      (error: unknown) =>
        error instanceof ValidationError &&
        error.message ===
          'invalid daemon configuration: TESTGROUND_PULL "if-not-present": expected one of never, missing, always',
    );
  });
});

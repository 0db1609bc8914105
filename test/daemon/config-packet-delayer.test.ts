import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ValidationError } from '../../core/errors.ts';
import { loadDaemonConfig } from '../../daemon/config.ts';

describe('TESTGROUND_PACKET_DELAYER (a prebuilt packet delayer, as the compose image ships one)', () => {
  it('is unset by default: the daemon compiles the delayer itself', () => {
    assert.equal(loadDaemonConfig({}).packetDelayer, undefined);
  });

  it('takes an absolute path', () => {
    const path = '/usr/local/libexec/testground/packet-delayer';
    assert.equal(loadDaemonConfig({ TESTGROUND_PACKET_DELAYER: path }).packetDelayer, path);
  });

  it('refuses a relative path, naming the variable and the value', () => {
    assert.throws(
      () => loadDaemonConfig({ TESTGROUND_PACKET_DELAYER: 'bin/packet-delayer' }),
      (error: unknown) =>
        error instanceof ValidationError &&
        /TESTGROUND_PACKET_DELAYER "bin\/packet-delayer": an absolute path/.test(error.message),
    );
  });
});

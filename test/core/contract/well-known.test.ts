import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  networkInitializedState,
  networkTopic,
  parseSyncServiceListening,
  runEventsTopic,
  syncServiceListeningLine,
} from '../../../core/contract/well-known.ts';

describe('well-known sync names', () => {
  it('are the names the official SDKs and sidecar use', () => {
    assert.equal(networkInitializedState, 'network-initialized');
    assert.equal(runEventsTopic, 'run_events');
    assert.equal(networkTopic('instance-3'), 'network:instance-3');
  });
});

describe('the sync service listening line', () => {
  it('reads back where the service said it listens', () => {
    for (const [host, port] of [
      ['127.0.0.1', 40_123],
      ['0.0.0.0', 5050],
      ['::1', 1],
      ['::', 65_535],
    ] as const) {
      const line = syncServiceListeningLine(host, port);
      assert.deepEqual(parseSyncServiceListening(`${line}\n`), { host, port }, line);
    }
  });

  it('brackets IPv6 hosts, as in a ws:// URL', () => {
    assert.equal(
      syncServiceListeningLine('127.0.0.1', 5050),
      'sync service listening on ws://127.0.0.1:5050',
    );
    assert.equal(syncServiceListeningLine('::1', 5050), 'sync service listening on ws://[::1]:5050');
  });

  it('finds the line among other output, and nothing before it is printed', () => {
    const output = `{"level":30,"msg":"starting"}\n${syncServiceListeningLine('127.0.0.1', 4321)}\n`;
    assert.deepEqual(parseSyncServiceListening(output), { host: '127.0.0.1', port: 4321 });
    assert.equal(parseSyncServiceListening('{"level":30,"msg":"sync service listening"}\n'), undefined);
    assert.equal(parseSyncServiceListening(''), undefined);
  });
});

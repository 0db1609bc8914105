import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeSyncResponse,
  encodeBarrierResponse,
  encodeCancelRequest,
  encodeErrorResponse,
  encodePublishResponse,
  encodeSignalEntryResponse,
  encodeSubscribeResponse,
  encodeSyncRequest,
  encodeTopicItem,
  readResponseSeq,
  runEventsKey,
  syncKeyPrefix,
  syncOperations,
  syncStateKey,
  syncTopicKey,
} from '../../../core/contract/sync-wire.ts';
import { parseSyncRequest } from '../../../sync/sync-protocol.ts';

describe('sync wire: responses', () => {
  it('encodes every response with all five keys, byte for byte as the original server', () => {
    assert.equal(
      encodeSignalEntryResponse('7', 3),
      '{"id":"7","error":"","publish":null,"subscribe":"","signal_entry":{"seq":3}}\n',
    );
    assert.equal(
      encodePublishResponse('8', 12),
      '{"id":"8","error":"","publish":{"seq":12},"subscribe":"","signal_entry":null}\n',
    );
    assert.equal(
      encodeBarrierResponse('9'),
      '{"id":"9","error":"","publish":null,"subscribe":"","signal_entry":null}\n',
    );
    assert.equal(
      encodeSubscribeResponse('10', encodeTopicItem('{"n": 1.0}')),
      '{"id":"10","error":"","publish":null,"subscribe":"{\\"n\\": 1.0}","signal_entry":null}\n',
    );
    assert.equal(
      encodeErrorResponse('"odd" id', 'it "failed"'),
      '{"id":"\\"odd\\" id","error":"it \\"failed\\"","publish":null,"subscribe":"","signal_entry":null}\n',
    );
  });

  it('decodes what it encodes', () => {
    const payload = '{"big":12345678901234567890,"x":"é"}';
    assert.deepEqual(decodeSyncResponse(encodeSubscribeResponse('s', encodeTopicItem(payload))), {
      id: 's',
      error: '',
      publish: null,
      subscribe: payload,
      signal_entry: null,
    });
    const published = decodeSyncResponse(encodePublishResponse('p', 4));
    assert.equal(readResponseSeq(published?.publish ?? null), 4);
    const signalled = decodeSyncResponse(encodeSignalEntryResponse('e', 1));
    assert.equal(readResponseSeq(signalled?.signal_entry ?? null), 1);
    assert.equal(decodeSyncResponse(encodeErrorResponse('x', 'nope'))?.error, 'nope');
  });

  it('decodes leniently: missing keys take their empty value, frames without a string id are dropped', () => {
    assert.deepEqual(decodeSyncResponse('{"id":"1"}'), {
      id: '1',
      error: '',
      publish: null,
      subscribe: '',
      signal_entry: null,
    });
    assert.deepEqual(decodeSyncResponse('{"id":"1","error":5,"subscribe":{"a":1}}'), {
      id: '1',
      error: '',
      publish: null,
      subscribe: '',
      signal_entry: null,
    });
    for (const text of ['', 'not json', '[]', 'null', '{"id":1}', '{"error":"x"}']) {
      assert.equal(decodeSyncResponse(text), undefined, text);
    }
  });

  it('reads only a positive integer seq', () => {
    assert.equal(readResponseSeq({ seq: 1 }), 1);
    for (const field of [null, {}, { seq: 0 }, { seq: -1 }, { seq: 1.5 }, { seq: '2' }]) {
      assert.equal(readResponseSeq(field), undefined, JSON.stringify(field));
    }
  });
});

describe('sync wire: requests', () => {
  it('encodes requests the service parses back', () => {
    assert.equal(
      encodeSyncRequest('0', { signal_entry: { state: 's' } }),
      '{"id":"0","signal_entry":{"state":"s"}}',
    );
    assert.deepEqual(parseSyncRequest(encodeSyncRequest('1', { barrier: { state: 's', target: 3 } })), {
      ok: true,
      request: { kind: 'barrier', id: '1', state: 's', target: 3 },
    });
    assert.deepEqual(
      parseSyncRequest(encodeSyncRequest('2', { publish: { topic: 't', payload: [1, 'x'] } })),
      {
        ok: true,
        request: { kind: 'publish', id: '2', topic: 't', payloadText: '[1,"x"]' },
      },
    );
    assert.deepEqual(parseSyncRequest(encodeSyncRequest('3', { subscribe: { topic: 't' } })), {
      ok: true,
      request: { kind: 'subscribe', id: '3', topic: 't' },
    });
    assert.deepEqual(parseSyncRequest(encodeCancelRequest('3')), {
      ok: true,
      request: { kind: 'cancel', id: '3' },
    });
  });

  it('names the operations the service accepts, one per request', () => {
    assert.deepEqual([...syncOperations], ['publish', 'subscribe', 'barrier', 'signal_entry']);
    const parsed = parseSyncRequest('{"id":"1"}');
    assert.deepEqual(parsed, {
      ok: false,
      id: '1',
      error:
        'malformed request: expected exactly one of publish, subscribe, barrier, signal_entry (or is_cancel: true), got none',
    });
  });
});

describe('sync wire: key names', () => {
  const scope = { runId: 'e217', plan: 'example', testCase: 'sync' };

  it('namespaces states, topics and run events by run, plan and test case', () => {
    assert.equal(syncKeyPrefix(scope), 'run:e217:plan:example:case:sync');
    assert.equal(syncStateKey(scope, 'ready'), 'run:e217:plan:example:case:sync:states:ready');
    assert.equal(syncTopicKey(scope, 'peers'), 'run:e217:plan:example:case:sync:topics:peers');
    assert.equal(runEventsKey(scope), 'run:e217:plan:example:case:sync:run_events');
  });
});

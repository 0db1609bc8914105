import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSyncRequest, parseSyncRequestWithSchema } from '../../sync/sync-protocol.ts';
import { readWellFormedRequest } from '../../sync/sync-request.ts';

/** Frames every client sends, in the spellings clients use. */
const goodFrames = [
  '{"id":"0","signal_entry":{"state":"run:r:plan:p:case:c:states:ready"}}',
  '{"id":"1","barrier":{"state":"s","target":3}}',
  '{"id":"2","barrier":{"state":"s","target":0}}',
  '{"id":"3","barrier":{"state":"s","target":-1}}',
  '{"id":"4","subscribe":{"topic":"t"}}',
  '{"id":"5","publish":{"topic":"t","payload":{"a":[1,2,{"b":null}]}}}',
  '{"id":"6","publish":{"topic":"t","payload":null}}',
  '{"id":"7","publish":{"topic":"t","payload":12345678901234567890}}',
  '{"id":"8","is_cancel":true}',
  '{"id":"9","is_cancel":false,"signal_entry":{"state":"s"}}',
  '{"id":"10","is_cancel":null,"subscribe":{"topic":"t"}}',
  '{"id":"","signal_entry":{"state":"s"}}',
  // What the official SDK sends: every operation key present, the unused ones null.
  '{"id":"11","publish":null,"subscribe":null,"barrier":null,"signal_entry":{"state":"s"},"is_cancel":false}',
  ' {"id" : "12" , "barrier" : {"target" : 2 , "state" : "s", "extra": 1}, "unknown": [] }\n',
  '{"id":"13","publish":{"topic":"t","payload":"x","other":1}}',
  '{"id":"\\u0031\\"4","signal_entry":{"state":"\\ud83d\\ude00"}}',
  '{"id":"15","barrier":{"state":"s","target":9007199254740991}}',
  '{"id":"16","barrier":{"state":"s","target":-0}}',
  '{"id":"17","barrier":{"state":"s","target":1e3}}',
  '{"id":"18","publish":{"topic":"t","payload":{"dup":1},"payload":{"dup":2}}}',
];

/** Frames the schema refuses, each for another reason. */
const badFrames = [
  'not json',
  '',
  '[1,2]',
  '"text"',
  'null',
  '{}',
  '{"id":7,"signal_entry":{"state":"s"}}',
  '{"id":null,"signal_entry":{"state":"s"}}',
  '{"id":"a"}',
  '{"id":"b","signal_entry":{"state":"s"},"subscribe":{"topic":"t"}}',
  '{"id":"c","barrier":{"state":"s","target":2.5}}',
  '{"id":"c","barrier":{"state":"s","target":9007199254740992}}',
  '{"id":"c","barrier":{"state":"s","target":"3"}}',
  '{"id":"c","barrier":{"state":"s"}}',
  '{"id":"c","barrier":{"target":3}}',
  '{"id":"d","publish":{"topic":"t"}}',
  '{"id":"d","publish":{"payload":1}}',
  '{"id":"d","publish":{"topic":"","payload":1}}',
  '{"id":"e","signal_entry":{"state":""}}',
  '{"id":"e","signal_entry":{"state":5}}',
  '{"id":"e","signal_entry":"s"}',
  '{"id":"e","signal_entry":["s"]}',
  '{"id":"e","signal_entry":{}}',
  '{"id":"f","subscribe":{"topic":null}}',
  '{"id":"f","subscribe":true}',
  '{"id":"g","is_cancel":"yes","signal_entry":{"state":"s"}}',
  '{"id":"g","is_cancel":1}',
  '{"id":"h","is_cancel":true,"barrier":{"state":""}}',
  '{"id":"i","is_cancel":false}',
  '{"id":"j","barrier":{"state":"s","target":1},"publish":{"topic":"t","payload":1}}',
];

/** Every combination of a few field values, so both readings meet many shapes nobody wrote by hand. */
function generatedFrames(): string[] {
  const values = [
    '"s"',
    '""',
    '0',
    '2',
    '2.5',
    '-3',
    'null',
    'true',
    'false',
    '[]',
    '{}',
    '["s"]',
    '{"a":1}',
  ];
  const frames: string[] = [];
  for (const id of ['"x"', '1', 'null']) {
    for (const isCancel of [undefined, 'true', 'false', 'null', '"no"']) {
      const head = `"id":${id}${isCancel === undefined ? '' : `,"is_cancel":${isCancel}`}`;
      for (const value of values) {
        frames.push(`{${head},"signal_entry":{"state":${value}}}`);
        frames.push(`{${head},"subscribe":{"topic":${value}}}`);
        frames.push(`{${head},"publish":{"topic":"t","payload":${value}}}`);
        frames.push(`{${head},"publish":{"topic":${value},"payload":1}}`);
        frames.push(`{${head},"barrier":{"state":"s","target":${value}}}`);
        frames.push(`{${head},"barrier":{"state":${value},"target":1}}`);
        frames.push(`{${head},"signal_entry":${value}}`);
        frames.push(`{${head},"barrier":${value}}`);
        frames.push(`{${head},"signal_entry":{"state":"s"},"subscribe":${value}}`);
      }
    }
  }
  return frames;
}

function fastReading(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return readWellFormedRequest(value, text);
}

describe('parseSyncRequest', () => {
  it('reads every well-formed frame on the fast path, exactly as the schema does', () => {
    for (const text of goodFrames) {
      const reference = parseSyncRequestWithSchema(text);
      assert.equal(reference.ok, true, `the schema refused a good frame: ${text}`);
      assert.notEqual(fastReading(text), undefined, `the fast path declined a good frame: ${text}`);
      assert.deepEqual(parseSyncRequest(text), reference, text);
    }
  });

  it('leaves every malformed frame to the schema, so the error messages stay the same', () => {
    for (const text of badFrames) {
      const reference = parseSyncRequestWithSchema(text);
      assert.equal(reference.ok, false, `the schema accepted a bad frame: ${text}`);
      assert.equal(fastReading(text), undefined, `the fast path accepted a bad frame: ${text}`);
      assert.deepEqual(parseSyncRequest(text), reference, text);
    }
  });

  it('agrees with the schema on every generated combination of field values', () => {
    const frames = generatedFrames();
    let accepted = 0;
    for (const text of frames) {
      const reference = parseSyncRequestWithSchema(text);
      const fast = fastReading(text);
      if (fast !== undefined) {
        accepted += 1;
        assert.deepEqual({ ok: true, request: fast }, reference, `the fast path disagrees on ${text}`);
      }
      assert.deepEqual(parseSyncRequest(text), reference, text);
    }
    // Both kinds occur, so the comparison covered both paths.
    assert.ok(
      accepted > 50 && accepted < frames.length - 50,
      `fast path took ${accepted} of ${frames.length}`,
    );
  });

  it('keeps the payload source text, spellings included, on the fast path', () => {
    const payload = '{ "n": 12345678901234567890, "f": 1.50, "s": "\\u00e9" }';
    const parsed = parseSyncRequest(`{"id":"p","publish":{"topic":"t","payload":${payload}}}`);
    assert.deepEqual(parsed, {
      ok: true,
      request: { kind: 'publish', id: 'p', topic: 't', payloadText: payload },
    });
  });
});

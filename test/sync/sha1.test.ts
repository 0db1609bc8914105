import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { sha1Base64 } from '../../sync/sha1.ts';

describe('sha1Base64', () => {
  it('matches node:crypto for every length across the block boundaries', () => {
    let text = '';
    for (let length = 0; length <= 200; length += 1) {
      assert.equal(sha1Base64(text), createHash('sha1').update(text).digest('base64'), `length ${length}`);
      text += String.fromCharCode(32 + ((length * 7) % 95));
    }
  });

  it('gives the accept value of RFC 6455 §1.3', () => {
    assert.equal(
      sha1Base64('dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11'),
      's3pPLMBiTxaQ9kYGzzhZRbK+xOo=',
    );
  });
});

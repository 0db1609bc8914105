import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { acceptUpgrade, findHeadEnd, isUpgradeRequest, parseHttpHead } from '../../sync/http-head.ts';

const upgrade = (extra = '', version = '13'): Buffer =>
  Buffer.from(
    'GET /any/path HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n' +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: ${version}\r\n${extra}\r\n`,
  );

describe('http-head', () => {
  it('finds the end of a head that arrives in pieces', () => {
    const head = upgrade();
    const cut = head.length - 3;
    assert.equal(findHeadEnd(head.subarray(0, cut)), -1);
    assert.equal(findHeadEnd(head, cut), head.length);
    assert.equal(findHeadEnd(Buffer.concat([head, Buffer.from([0x81, 0x80])])), head.length);
  });

  it('accepts an upgrade with the key of RFC 6455 §1.3 and echoes the first subprotocol offered', () => {
    const head = parseHttpHead(upgrade('Sec-WebSocket-Protocol: first, second\r\n'));
    assert.ok(head !== undefined && isUpgradeRequest(head));
    assert.equal(head.target, '/any/path');
    const accepted = acceptUpgrade(head);
    assert.ok(accepted.ok);
    assert.match(accepted.response, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.match(accepted.response, /\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/);
    assert.match(accepted.response, /\r\nSec-WebSocket-Protocol: first\r\n\r\n$/);
  });

  it('refuses an upgrade it cannot serve, naming the header and the value', () => {
    const wrongVersion = acceptUpgrade(parseHttpHead(upgrade('', '8'))!);
    assert.deepEqual(wrongVersion, { ok: false, reason: 'Sec-WebSocket-Version must be 13, got "8"' });
    const noKey = parseHttpHead(
      Buffer.from('GET / HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n'),
    )!;
    assert.deepEqual(acceptUpgrade(noKey), {
      ok: false,
      reason: 'Sec-WebSocket-Key must be 16 bytes in base64, got null',
    });
  });

  it('reads a plain request and refuses what is not HTTP/1.x', () => {
    const head = parseHttpHead(Buffer.from('GET /status HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nx-a: 2\r\n\r\n'));
    assert.ok(head !== undefined && !isUpgradeRequest(head));
    assert.equal(head.headers.get('x-a'), '1, 2');
    assert.equal(parseHttpHead(Buffer.from('hello\r\n\r\n')), undefined);
    assert.equal(parseHttpHead(Buffer.from('GET / HTTP/2\r\n\r\n')), undefined);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WsFrameReader, type WsPeer } from '../../../core/contract/ws-frame-reader.ts';
import {
  encodeCloseFrame,
  encodeMaskedFrame,
  encodeTextFrame,
} from '../../../core/contract/ws-frame-writer.ts';

type Event = ['message', string] | ['ping', string] | ['close', number, string] | ['error', number, string];

function reader(maxPayloadBytes = 1024, peer: WsPeer = 'client'): { reader: WsFrameReader; events: Event[] } {
  const events: Event[] = [];
  return {
    events,
    reader: new WsFrameReader(
      maxPayloadBytes,
      {
        onMessage: (text) => events.push(['message', text]),
        onPing: (payload) => events.push(['ping', payload.toString()]),
        onCloseFrame: (code, reason) => events.push(['close', code, reason]),
        onProtocolError: (code, reason) => events.push(['error', code, reason]),
      },
      peer,
    ),
  };
}

/** A client frame: masked with a fixed key unless `masked` is false. */
function frame(
  opcode: number,
  payload: Buffer | string,
  options: { fin?: boolean; masked?: boolean } = {},
): Buffer {
  const body = Buffer.from(payload);
  const { fin = true, masked = true } = options;
  const lengthBytes = body.length < 126 ? 0 : body.length < 65_536 ? 2 : 8;
  const key = Buffer.from([1, 2, 3, 4]);
  const head = Buffer.alloc(2 + lengthBytes + (masked ? 4 : 0));
  head[0] = (fin ? 0x80 : 0) | opcode;
  head[1] = (masked ? 0x80 : 0) | (lengthBytes === 0 ? body.length : lengthBytes === 2 ? 126 : 127);
  if (lengthBytes === 2) head.writeUInt16BE(body.length, 2);
  if (lengthBytes === 8) head.writeBigUInt64BE(BigInt(body.length), 2);
  if (!masked) return Buffer.concat([head, body]);
  key.copy(head, 2 + lengthBytes);
  return Buffer.concat([head, Buffer.from(body.map((byte, i) => byte ^ (key[i & 3] as number)))]);
}

describe('WsFrameReader', () => {
  it('reads frames cut anywhere, one byte at a time included', () => {
    const { reader: r, events } = reader();
    const bytes = Buffer.concat([frame(1, '{"id":"1"}'), frame(1, 'é😀')]);
    for (const byte of bytes) r.push(Buffer.from([byte]));
    assert.deepEqual(events, [
      ['message', '{"id":"1"}'],
      ['message', 'é😀'],
    ]);
  });

  it('reads 16-bit and 64-bit lengths', () => {
    const { reader: r, events } = reader(100_000);
    const medium = 'm'.repeat(300);
    const large = 'l'.repeat(70_000);
    r.push(Buffer.concat([frame(1, medium), frame(1, large)]));
    assert.deepEqual(events, [
      ['message', medium],
      ['message', large],
    ]);
  });

  it('joins a fragmented message and answers a ping sent between its fragments first', () => {
    const { reader: r, events } = reader();
    r.push(frame(1, 'hel', { fin: false }));
    r.push(frame(9, 'are you there'));
    r.push(frame(0, 'lo ', { fin: false }));
    r.push(frame(0, 'world'));
    assert.deepEqual(events, [
      ['ping', 'are you there'],
      ['message', 'hello world'],
    ]);
  });

  it('reports a close frame with its code, 1005 when it has none, and reads nothing after it', () => {
    const code = Buffer.alloc(2);
    code.writeUInt16BE(1000);
    const first = reader();
    first.reader.push(Buffer.concat([frame(8, code), frame(1, 'after')]));
    assert.deepEqual(first.events, [['close', 1000, '']]);
    const second = reader();
    second.reader.push(frame(8, ''));
    assert.deepEqual(second.events, [['close', 1005, '']]);
  });

  it('reads what a server sends (unmasked) when told the peer is a server, and refuses masked frames from it', () => {
    const fromServer = reader(1024, 'server');
    fromServer.reader.push(
      Buffer.concat([encodeTextFrame('x'.repeat(300)), encodeCloseFrame(1001, 'going away')]),
    );
    assert.deepEqual(fromServer.events, [
      ['message', 'x'.repeat(300)],
      ['close', 1001, 'going away'],
    ]);
    const masked = reader(1024, 'server');
    masked.reader.push(frame(1, 'hi'));
    assert.deepEqual(masked.events, [['error', 1002, 'server frames must not be masked (RFC 6455 §5.1)']]);
  });

  it('reads back what encodeMaskedFrame masks, short and long, each with a key of its own', () => {
    const { reader: r, events } = reader(1 << 20);
    const long = 'ü'.repeat(70_000);
    const first = encodeMaskedFrame(1, Buffer.from('short'));
    const second = encodeMaskedFrame(1, Buffer.from('short'));
    r.push(Buffer.concat([first, second, encodeMaskedFrame(1, Buffer.from(long))]));
    assert.deepEqual(events, [
      ['message', 'short'],
      ['message', 'short'],
      ['message', long],
    ]);
    assert.notDeepEqual(first.subarray(2, 6), second.subarray(2, 6));
  });

  const violations: [string, Buffer, number, RegExp][] = [
    ['an unmasked frame', frame(1, 'x', { masked: false }), 1002, /must be masked/],
    ['invalid UTF-8 in a text frame', frame(1, Buffer.from([0xc3, 0x28])), 1007, /not valid UTF-8/],
    ['a continuation with nothing to continue', frame(0, 'x'), 1002, /continuation frame/],
    ['a fragmented control frame', frame(9, 'x', { fin: false }), 1002, /must not be fragmented/],
    ['a control frame over 125 bytes', frame(9, 'x'.repeat(126)), 1002, /at most 125 bytes/],
    ['an unknown opcode', frame(3, 'x'), 1002, /unknown opcode 3/],
    ['a reserved close code', frame(8, Buffer.from([0x03, 0xec])), 1002, /invalid close code 1004/],
  ];
  for (const [name, bytes, code, reason] of violations) {
    it(`closes with ${code} on ${name}`, () => {
      const { reader: r, events } = reader();
      r.push(Buffer.concat([bytes, frame(1, 'never read')]));
      assert.equal(events.length, 1, JSON.stringify(events));
      const [kind, gotCode, gotReason] = events[0] as ['error', number, string];
      assert.equal(kind, 'error');
      assert.equal(gotCode, code);
      assert.match(gotReason, reason);
    });
  }

  it('refuses a message over maxPayload from its header, before the payload arrives', () => {
    const { reader: r, events } = reader(1024);
    r.push(frame(1, 'x'.repeat(2048)).subarray(0, 8));
    assert.deepEqual(events, [['error', 1009, 'message larger than 1024 bytes']]);
  });

  it('counts every fragment against maxPayload', () => {
    const { reader: r, events } = reader(10);
    r.push(frame(1, 'x'.repeat(6), { fin: false }));
    r.push(frame(0, 'x'.repeat(6)));
    assert.deepEqual(events, [['error', 1009, 'message larger than 10 bytes']]);
  });
});

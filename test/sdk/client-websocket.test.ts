import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { WsFrameReader } from '../../core/contract/ws-frame-reader.ts';
import {
  encodeCloseFrame,
  encodeControlFrame,
  encodeTextFrame,
} from '../../core/contract/ws-frame-writer.ts';
import {
  checkHandshakeResponse,
  openClientWebSocket,
  type ClientWebSocket,
} from '../../sdk/client-websocket.ts';

const guid = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

interface Peer {
  /** What the client sent after its handshake, read as a server reads it (masking required). */
  events: string[];
  /** The same bytes, raw. */
  raw: Buffer[];
  socket: net.Socket;
}

/** Each frame of `bytes` (all masked, as a client sends them): opcode and unmasked payload. */
function maskedFrames(bytes: Buffer): Array<[number, string]> {
  const frames: Array<[number, string]> = [];
  for (let at = 0; at < bytes.length;) {
    const length7 = (bytes[at + 1] as number) & 0x7f;
    const lengthBytes = length7 === 126 ? 2 : length7 === 127 ? 8 : 0;
    const length =
      length7 === 126
        ? bytes.readUInt16BE(at + 2)
        : length7 === 127
          ? Number(bytes.readBigUInt64BE(at + 2))
          : length7;
    assert.equal((bytes[at + 1] as number) & 0x80, 0x80, 'every client frame is masked');
    const key = bytes.subarray(at + 2 + lengthBytes, at + 6 + lengthBytes);
    const payload = Buffer.from(bytes.subarray(at + 6 + lengthBytes, at + 6 + lengthBytes + length));
    for (let i = 0; i < payload.length; i += 1) payload[i] = (payload[i] as number) ^ (key[i & 3] as number);
    frames.push([(bytes[at] as number) & 0x0f, payload.toString()]);
    at += 6 + lengthBytes + length;
  }
  return frames;
}

/**
 * A real TCP server playing the WebSocket server: it answers the handshake with `answer(key)` and records
 * what the client sends afterwards; `onOpen` runs once it answered.
 */
async function fakeServer(
  answer: (key: string) => string | Buffer,
  onOpen: (peer: Peer) => void = () => {},
): Promise<{ port: number; peers: Peer[] }> {
  const peers: Peer[] = [];
  const server = net.createServer((socket) => {
    let head = '';
    const peer: Peer = { events: [], raw: [], socket };
    const reader = new WsFrameReader(1 << 20, {
      onMessage: (text) => peer.events.push(`message ${text}`),
      onPing: (payload) => peer.events.push(`ping ${payload.toString()}`),
      onCloseFrame: (code, reason) => peer.events.push(`close ${code} ${reason}`),
      onProtocolError: (code, reason) => peer.events.push(`error ${code} ${reason}`),
    });
    const onHead = (chunk: Buffer): void => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onHead);
      const key = /sec-websocket-key: (\S+)/i.exec(head)?.[1] ?? '';
      socket.write(answer(key));
      socket.on('data', (data: Buffer) => {
        peer.raw.push(Buffer.from(data));
        reader.push(data);
      });
      peers.push(peer);
      onOpen(peer);
    };
    socket.on('data', onHead);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  after(() => {
    for (const peer of peers) peer.socket.destroy();
    server.close();
  });
  return { port: (server.address() as net.AddressInfo).port, peers };
}

function accepting(key: string): string {
  const accept = createHash('sha1')
    .update(key + guid)
    .digest('base64');
  return `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`;
}

function open(port: number, timeoutMs = 2_000): Promise<ClientWebSocket> {
  return openClientWebSocket('127.0.0.1', port, `ws://127.0.0.1:${port}`, timeoutMs);
}

function record(ws: ClientWebSocket): { events: string[]; closed: Promise<void> } {
  const events: string[] = [];
  let closed!: () => void;
  const done = new Promise<void>((resolve) => (closed = resolve));
  ws.listen({
    onMessage: (text) => events.push(`message ${text}`),
    onError: (error) => events.push(`error ${error.message}`),
    onClose: (code, reason) => {
      events.push(`close ${code} ${reason}`);
      closed();
    },
  });
  return { events, closed: done };
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i += 1) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.ok(check(), 'the expected frames did not arrive within 2 s');
}

describe('the SDK WebSocket client (sdk/client-websocket.ts)', () => {
  it('sends masked text frames, answers a ping with a masked pong, and keeps messages that came before listen()', async () => {
    const { port, peers } = await fakeServer(
      (key) => Buffer.concat([Buffer.from(accepting(key)), encodeTextFrame('hello from the service')]),
      (peer) => peer.socket.write(encodeControlFrame(0x9, Buffer.from('are you there'))),
    );
    const ws = await open(port);
    const { events } = record(ws);
    assert.deepEqual(events, ['message hello from the service']);
    ws.send('{"id":"0"}');
    ws.send('é'.repeat(40_000));
    // The fake server's reader requires masking: an unmasked frame would show as an error event.
    await until(() => (peers[0]?.events.length ?? 0) >= 2);
    assert.deepEqual(peers[0]?.events, ['message {"id":"0"}', `message ${'é'.repeat(40_000)}`]);
    assert.deepEqual(
      maskedFrames(Buffer.concat(peers[0]?.raw ?? [])).map(([opcode, payload]) => [
        opcode,
        payload.slice(0, 20),
      ]),
      [
        [0xa, 'are you there'],
        [0x1, '{"id":"0"}'],
        [0x1, 'é'.repeat(20)],
      ],
    );
    ws.terminate();
  });

  it('gives the server close frame its code and reason, and answers it', async () => {
    const { port, peers } = await fakeServer(accepting, (peer) =>
      setTimeout(() => peer.socket.end(encodeCloseFrame(1001, 'sync service shutting down')), 20),
    );
    const ws = await open(port);
    const { events, closed } = record(ws);
    await closed;
    assert.deepEqual(events, ['close 1001 sync service shutting down']);
    assert.ok(ws.isClosed);
    assert.deepEqual(peers[0]?.events, ['close 1001 ']);
  });

  it('closes with a handshake of its own: its close frame, the server answer, then the end', async () => {
    const { port, peers } = await fakeServer(accepting, (peer) => {
      peer.socket.on('data', () => {
        if (peer.events.some((event) => event.startsWith('close'))) peer.socket.end(encodeCloseFrame(1000));
      });
    });
    const ws = await open(port);
    const { events, closed } = record(ws);
    ws.close(1000, 'sync client closed');
    ws.send('after close: dropped');
    await closed;
    assert.deepEqual(peers[0]?.events, ['close 1000 sync client closed']);
    assert.deepEqual(events, ['close 1000 ']);
  });

  it('cuts the connection 1 s into a closing handshake the server never finishes, from either side', async () => {
    // One server sends its close frame and keeps the connection open; the other never answers ours.
    const lingering = await fakeServer(accepting, (peer) => peer.socket.write(encodeCloseFrame(1001, 'bye')));
    const silent = await fakeServer(accepting);
    const theirs = record(await open(lingering.port));
    const ours = await open(silent.port);
    const oursRecord = record(ours);
    const started = performance.now();
    ours.close(1000, 'done');
    await Promise.all([theirs.closed, oursRecord.closed]);
    const tookMs = performance.now() - started;
    assert.deepEqual(theirs.events, ['close 1001 bye']);
    assert.deepEqual(oursRecord.events, ['close 1000 done']);
    assert.ok(tookMs >= 900 && tookMs < 3_000, `closed after ${tookMs.toFixed(0)} ms`);
  });

  it('fails the connection when the server masks its frames, naming the rule', async () => {
    const masked = Buffer.from([0x81, 0x82, 1, 2, 3, 4, 0x69 ^ 1, 0x69 ^ 2]);
    const { port, peers } = await fakeServer((key) => Buffer.concat([Buffer.from(accepting(key)), masked]));
    const ws = await open(port);
    const { events, closed } = record(ws);
    await closed;
    assert.deepEqual(events, [
      'error the server broke the WebSocket protocol: server frames must not be masked (RFC 6455 §5.1)',
      'close 1002 server frames must not be masked (RFC 6455 §5.1)',
    ]);
    await until(() => (peers[0]?.events.length ?? 0) >= 1);
    assert.match(peers[0]?.events[0] ?? '', /^close 1002 server frames must not be masked/);
  });

  it('ends with 1006 when the connection drops without a close frame', async () => {
    const { port } = await fakeServer(accepting, (peer) => setTimeout(() => peer.socket.destroy(), 20));
    const { events, closed } = record(await open(port));
    await closed;
    assert.deepEqual(events, ['close 1006 ']);
  });

  it('refuses a server that does not upgrade, a wrong accept key, and one that never answers', async () => {
    const refusing = await fakeServer(() => 'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
    await assert.rejects(open(refusing.port), /unexpected server response: HTTP\/1\.1 400 Bad Request/);
    const wrongKey = await fakeServer(() => accepting('another key'));
    await assert.rejects(open(wrongKey.port), /invalid Sec-WebSocket-Accept header/);
    const silent = net.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    after(() => silent.close());
    const silentPort = (silent.address() as net.AddressInfo).port;
    await assert.rejects(open(silentPort, 200), /handshake with ws:\/\/127\.0\.0\.1:\d+ took over 200 ms/);
    const closed = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    after(() => closed.close());
    await assert.rejects(
      open((closed.address() as net.AddressInfo).port),
      /closed the connection during the WebSocket handshake|ECONNRESET/,
    );
  });

  it('checks the handshake answer by the RFC', () => {
    const key = 'dGhlIHNhbXBsZSBub25jZQ==';
    // RFC 6455 §1.3's own example.
    const good =
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=';
    assert.equal(checkHandshakeResponse(good, key), undefined);
    assert.equal(
      checkHandshakeResponse(good.replace('Upgrade: websocket', 'Upgrade: h2c'), key),
      'the server did not upgrade to websocket',
    );
    assert.equal(
      checkHandshakeResponse(`${good}\r\nSec-WebSocket-Extensions: permessage-deflate`, key),
      'the server chose an extension the client did not offer',
    );
  });
});

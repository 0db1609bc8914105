import assert from 'node:assert/strict';
import net from 'node:net';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { startSyncService, type SyncService } from '../../sync/sync-service.ts';

const testLimits = { timeout: 10_000 };

const handshake =
  'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

/** A masked client frame (the key is fixed: the tests read what the service answers, not the masking). */
function clientFrame(text: string | Buffer, opcode = 1): Buffer {
  const body = Buffer.from(text);
  assert.ok(body.length < 126);
  const key = [9, 8, 7, 6];
  return Buffer.concat([
    Buffer.from([0x80 | opcode, 0x80 | body.length, ...key]),
    Buffer.from(body.map((byte, i) => byte ^ (key[i & 3] as number))),
  ]);
}

/** Splits server frames (unmasked, short or 16-bit lengths in these tests). */
interface ServerFrame {
  opcode: number;
  text: string;
  bytes: Buffer;
}

function serverFrames(data: Buffer): ServerFrame[] {
  const frames: ServerFrame[] = [];
  let offset = 0;
  while (offset < data.length) {
    const length7 = (data[offset + 1] as number) & 0x7f;
    const header = length7 === 126 ? 4 : 2;
    const length = length7 === 126 ? data.readUInt16BE(offset + 2) : length7;
    const bytes = data.subarray(offset + header, offset + header + length);
    frames.push({ opcode: (data[offset] as number) & 0x0f, text: bytes.toString(), bytes });
    offset += header + length;
  }
  return frames;
}

/** A raw TCP client that records every chunk the service writes, so tests can see how writes were batched. */
class WireClient {
  readonly chunks: Buffer[] = [];
  private readonly socket: net.Socket;
  private waiter: (() => void) | undefined;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.waiter?.();
    });
  }

  static async connect(port: number, head = handshake): Promise<{ client: WireClient; response: string }> {
    const socket = net.connect({ port, host: '127.0.0.1' });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const client = new WireClient(socket);
    socket.write(head);
    await client.until(() => Buffer.concat(client.chunks).includes('\r\n\r\n'));
    const all = Buffer.concat(client.chunks);
    const end = all.indexOf('\r\n\r\n') + 4;
    client.chunks.length = 0;
    if (end < all.length) client.chunks.push(all.subarray(end));
    return { client, response: all.subarray(0, end).toString() };
  }

  send(...frames: Buffer[]): void {
    this.socket.write(Buffer.concat(frames));
  }

  async frames(count: number): Promise<ServerFrame[]> {
    await this.until(() => serverFrames(Buffer.concat(this.chunks)).length >= count);
    return serverFrames(Buffer.concat(this.chunks));
  }

  until(done: () => boolean): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiter = () => {
        if (!done()) return;
        this.waiter = undefined;
        resolve();
      };
    });
  }

  destroy(): void {
    this.socket.destroy();
  }
}

describe('sync service on the wire', () => {
  let service: SyncService;
  const clients: WireClient[] = [];

  beforeEach(async () => {
    service = await startSyncService();
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) client.destroy();
    await service.close();
  });

  const connect = async (): Promise<WireClient> => {
    const { client, response } = await WireClient.connect(service.port);
    assert.match(response, /^HTTP\/1\.1 101 /);
    clients.push(client);
    return client;
  };

  it('answers the requests of one read in one write', testLimits, async () => {
    const client = await connect();
    client.send(
      clientFrame('{"id":"1","signal_entry":{"state":"s"}}'),
      clientFrame('{"id":"2","signal_entry":{"state":"s"}}'),
      clientFrame('{"id":"3","publish":{"topic":"t","payload":1}}'),
    );
    const frames = await client.frames(3);
    assert.deepEqual(
      frames.map((frame) => JSON.parse(frame.text) as { id: string }).map((reply) => reply.id),
      ['1', '2', '3'],
    );
    assert.equal(client.chunks.length, 1, 'the three replies came in more than one write');
  });

  it('keeps reply order while the request schema loads for a malformed frame', testLimits, async () => {
    const client = await connect();
    client.send(
      clientFrame('{"id":"bad","barrier":{"state":"s"}}'),
      clientFrame('{"id":"1","signal_entry":{"state":"s"}}'),
      clientFrame('{"id":"2","signal_entry":{"state":"s"}}'),
    );
    const replies = (await client.frames(3)).map(
      (frame) => JSON.parse(frame.text) as Record<string, unknown>,
    );
    assert.deepEqual(
      replies.map((reply) => reply.id),
      ['bad', '1', '2'],
    );
    assert.match(replies[0]?.error as string, /barrier.target must be a number/);
    assert.deepEqual(replies[2]?.signal_entry, { seq: 2 });
  });

  it('answers a ping with a pong carrying the same payload', testLimits, async () => {
    const client = await connect();
    client.send(clientFrame('still there?', 0x9));
    const [pong] = await client.frames(1);
    assert.equal(pong?.opcode, 0xa);
    assert.equal(pong.text, 'still there?');
  });

  it('echoes a close frame with its code', testLimits, async () => {
    const client = await connect();
    client.send(clientFrame(Buffer.from([0x0f, 0xa0]), 0x8));
    const [close] = await client.frames(1);
    assert.equal(close?.opcode, 0x8);
    assert.equal(close.bytes.readUInt16BE(0), 4000);
  });

  it('refuses a bad upgrade with 400 and a reason naming the header', testLimits, async () => {
    const { client, response } = await WireClient.connect(
      service.port,
      handshake.replace('Sec-WebSocket-Version: 13', 'Sec-WebSocket-Version: 8'),
    );
    clients.push(client);
    assert.match(response, /^HTTP\/1\.1 400 Bad Request\r\n/);
    await client.until(() => Buffer.concat(client.chunks).includes('\n'));
    assert.equal(Buffer.concat(client.chunks).toString(), 'Sec-WebSocket-Version must be 13, got "8"\n');
  });

  it('closes with 1002 when a client sends an unmasked frame', testLimits, async () => {
    const client = await connect();
    const unmasked = Buffer.concat([Buffer.from([0x81, 2]), Buffer.from('{}')]);
    client.send(unmasked);
    const [close] = await client.frames(1);
    assert.equal(close?.opcode, 0x8);
    assert.equal(close.bytes.readUInt16BE(0), 1002);
  });
});

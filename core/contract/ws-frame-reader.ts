/**
 * Reads the frames a WebSocket peer sends (RFC 6455 §5): masked when the peer is a client, unmasked when
 * it is a server, possibly fragmented, with control frames in between. No I/O: bytes go in through
 * {@link WsFrameReader.push}, messages and control frames come out through the handler. Both ends of the
 * sync protocol speak WebSocket with it rather than through `ws`: the service to batch its writes per
 * socket per tick and skip Node's HTTP parser on every connection, the SDK because loading `ws` cost every
 * instance ~16 ms of CPU at start on the reference machine.
 */
import { maskInPlace } from './ws-mask.ts';
import { opBinary, opClose, opContinuation, opPing, opPong, opText } from './ws-opcodes.ts';

// Decodes and checks at once (faster than checking, then decoding, for the short messages the sync
// protocol sends); the contract imports nothing, Node's modules included, so this is the global one.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The text of `bytes`, or undefined when they are not valid UTF-8. */
function decodeUtf8(bytes: Buffer): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** What a reader reports, in the order the frames arrived. */
export interface WsFrameHandler {
  /** A complete text (or binary) message, decoded as UTF-8. */
  onMessage(text: string): void;
  onPing(payload: Buffer): void;
  /** The peer's close frame; `code` is 1005 when it carried none, `reason` empty when it gave none. */
  onCloseFrame(code: number, reason: string): void;
  /** The peer broke the protocol; the connection must be closed with `code`. Nothing is read after it. */
  onProtocolError(code: number, reason: string): void;
}

/** Close codes a peer may send (RFC 6455 §7.4.1, and the 3000–4999 range for applications). */
function isValidCloseCode(code: number): boolean {
  return (
    (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
    (code >= 3000 && code <= 4999)
  );
}

/** Who sends the frames read: a client masks every frame (RFC 6455 §5.1), a server none (§5.1 too). */
export type WsPeer = 'client' | 'server';

export class WsFrameReader {
  private readonly maxPayloadBytes: number;
  private readonly handler: WsFrameHandler;
  private readonly peer: WsPeer;
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Pieces of a fragmented message, and its opcode (0 when none is in progress). */
  private fragments: Buffer[] = [];
  private fragmentsBytes = 0;
  private fragmentedOpcode = 0;
  private stopped = false;

  constructor(maxPayloadBytes: number, handler: WsFrameHandler, peer: WsPeer = 'client') {
    this.maxPayloadBytes = maxPayloadBytes;
    this.handler = handler;
    this.peer = peer;
  }

  /** Reads every complete frame in what arrived so far; keeps the rest for the next push. */
  push(chunk: Buffer): void {
    if (this.stopped || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (!this.stopped && this.readFrame());
  }

  /** Ignores everything from now on (after a close frame or an error). */
  stop(): void {
    this.stopped = true;
    this.chunks = [];
    this.fragments = [];
  }

  /** Reads one frame when it is complete; false when more bytes are needed. */
  private readFrame(): boolean {
    if (this.buffered < 2) return false;
    let first = this.chunks[0] as Buffer;
    if (first.length < 14 && this.chunks.length > 1) {
      // A header cut across chunks: join them once (rare; headers are at most 14 bytes).
      first = Buffer.concat(this.chunks);
      this.chunks = [first];
    }
    const b0 = first[0] as number;
    const b1 = first[1] as number;
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    if ((b0 & 0x70) !== 0) return this.fail(1002, 'RSV bits must be 0: no extension was negotiated');
    const masked = (b1 & 0x80) !== 0;
    if (this.peer === 'client' && !masked) {
      return this.fail(1002, 'client frames must be masked (RFC 6455 §5.1)');
    }
    if (this.peer === 'server' && masked) {
      return this.fail(1002, 'server frames must not be masked (RFC 6455 §5.1)');
    }
    const maskBytes = masked ? 4 : 0;
    const length7 = b1 & 0x7f;
    let headerBytes = 2 + maskBytes;
    let length = length7;
    if (length7 === 126) {
      headerBytes = 4 + maskBytes;
      if (this.buffered < 4) return false;
      length = first.readUInt16BE(2);
    } else if (length7 === 127) {
      headerBytes = 10 + maskBytes;
      if (this.buffered < 10) return false;
      const high = first.readUInt32BE(2);
      const low = first.readUInt32BE(6);
      // Anything at or above 2^53 is far beyond any maxPayload; read it as "too large".
      length = high >= 0x200000 ? Number.MAX_SAFE_INTEGER : high * 2 ** 32 + low;
    }

    if (opcode >= 0x8) {
      if (!fin) return this.fail(1002, 'control frames must not be fragmented');
      if (length > 125) return this.fail(1002, 'control frames must carry at most 125 bytes');
      if (opcode > opPong) return this.fail(1002, `unknown opcode ${opcode}`);
    } else if (opcode === opContinuation) {
      if (this.fragmentedOpcode === 0)
        return this.fail(1002, 'continuation frame without a message to continue');
    } else if (opcode === opText || opcode === opBinary) {
      if (this.fragmentedOpcode !== 0) return this.fail(1002, 'new message before the last one ended');
    } else {
      return this.fail(1002, `unknown opcode ${opcode}`);
    }
    if (opcode < 0x8 && this.fragmentsBytes + length > this.maxPayloadBytes) {
      return this.fail(1009, `message larger than ${this.maxPayloadBytes} bytes`);
    }
    if (this.buffered < headerBytes + length) return false;

    const header = this.take(headerBytes);
    const payload = this.take(length);
    if (masked) maskInPlace(payload, header.subarray(headerBytes - 4, headerBytes));

    if (opcode >= 0x8) {
      this.control(opcode, payload);
      return true;
    }
    if (!fin) {
      if (opcode !== opContinuation) this.fragmentedOpcode = opcode;
      this.fragments.push(payload);
      this.fragmentsBytes += length;
      return true;
    }
    let message = payload;
    let messageOpcode = opcode;
    if (opcode === opContinuation) {
      this.fragments.push(payload);
      message = Buffer.concat(this.fragments, this.fragmentsBytes + length);
      messageOpcode = this.fragmentedOpcode;
      this.fragments = [];
      this.fragmentsBytes = 0;
      this.fragmentedOpcode = 0;
    }
    // Binary frames are read as text too, as the service always did; only text frames promise UTF-8.
    const text = messageOpcode === opText ? decodeUtf8(message) : message.toString('utf8');
    if (text === undefined) return this.fail(1007, 'text frame is not valid UTF-8');
    this.handler.onMessage(text);
    return true;
  }

  private control(opcode: number, payload: Buffer): void {
    if (opcode === opPing) {
      this.handler.onPing(payload);
      return;
    }
    if (opcode !== opClose) return;
    if (payload.length === 1) {
      this.fail(1002, 'a close frame payload must be empty or hold a 2-byte code');
      return;
    }
    const code = payload.length === 0 ? 1005 : payload.readUInt16BE(0);
    if (payload.length > 0 && !isValidCloseCode(code)) {
      this.fail(1002, `invalid close code ${code}`);
      return;
    }
    const reason = decodeUtf8(payload.subarray(2));
    if (reason === undefined) {
      this.fail(1007, 'close reason is not valid UTF-8');
      return;
    }
    this.stop();
    this.handler.onCloseFrame(code, reason);
  }

  /** Removes and returns the next `count` buffered bytes, copying only when they span chunks. */
  private take(count: number): Buffer {
    if (count === 0) return Buffer.alloc(0);
    this.buffered -= count;
    const first = this.chunks[0] as Buffer;
    if (first.length === count) {
      this.chunks.shift();
      return first;
    }
    if (first.length > count) {
      this.chunks[0] = first.subarray(count);
      return first.subarray(0, count);
    }
    const out = Buffer.allocUnsafe(count);
    let offset = 0;
    while (offset < count) {
      const chunk = this.chunks[0] as Buffer;
      const needed = count - offset;
      if (chunk.length <= needed) {
        chunk.copy(out, offset);
        offset += chunk.length;
        this.chunks.shift();
      } else {
        chunk.copy(out, offset, 0, needed);
        this.chunks[0] = chunk.subarray(needed);
        offset += needed;
      }
    }
    return out;
  }

  private fail(code: number, reason: string): false {
    this.stop();
    this.handler.onProtocolError(code, reason);
    return false;
  }
}

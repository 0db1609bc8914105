/**
 * Encodes WebSocket frames (RFC 6455 §5.2): unmasked as a server sends them, where several frames become
 * one buffer, so a socket gets one write per tick however many replies and topic items it is owed; masked,
 * with a fresh random key each, as a client sends them.
 */
import { maskInPlace } from './ws-mask.ts';
import { opClose, opText } from './ws-opcodes.ts';

/** A frame waiting to be written: a text message's string, or a whole frame already encoded. */
export type OutgoingFrame = string | Buffer;

const finText = 0x80 | opText;

function headerBytes(payloadBytes: number): number {
  return payloadBytes < 126 ? 2 : payloadBytes < 65_536 ? 4 : 10;
}

function writeHeader(
  out: Buffer,
  offset: number,
  firstByte: number,
  payloadBytes: number,
  maskBit = 0,
): number {
  out[offset] = firstByte;
  if (payloadBytes < 126) {
    out[offset + 1] = maskBit | payloadBytes;
    return offset + 2;
  }
  if (payloadBytes < 65_536) {
    out[offset + 1] = maskBit | 126;
    out.writeUInt16BE(payloadBytes, offset + 2);
    return offset + 4;
  }
  out[offset + 1] = maskBit | 127;
  out.writeUInt32BE(Math.floor(payloadBytes / 2 ** 32), offset + 2);
  out.writeUInt32BE(payloadBytes >>> 0, offset + 6);
  return offset + 10;
}

/** One text frame, complete, to be shared by every socket that is sent the same message. */
export function encodeTextFrame(text: string): Buffer {
  const payloadBytes = Buffer.byteLength(text);
  const out = Buffer.allocUnsafe(headerBytes(payloadBytes) + payloadBytes);
  out.write(text, writeHeader(out, 0, finText, payloadBytes));
  return out;
}

/** A control frame (close, pong): at most 125 bytes of payload. */
export function encodeControlFrame(opcode: number, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(2 + payload.length);
  payload.copy(out, writeHeader(out, 0, 0x80 | opcode, payload.length));
  return out;
}

/** A close frame with `code` and a reason, cut to fit in a control frame; no payload for 1005. */
export function encodeCloseFrame(code: number, reason = ''): Buffer {
  return encodeControlFrame(opClose, closePayload(code, reason));
}

// Masking keys come from the system's random source (RFC 6455 §10.3: a client's keys must be unpredictable),
// drawn a few hundred at a time; Web Crypto's global, as the contract imports no module.
const keyPool = Buffer.allocUnsafe(4 * 256);
let keyPoolAt = keyPool.length;

function nextMaskingKey(): Buffer {
  if (keyPoolAt === keyPool.length) {
    crypto.getRandomValues(keyPool);
    keyPoolAt = 0;
  }
  keyPoolAt += 4;
  return keyPool.subarray(keyPoolAt - 4, keyPoolAt);
}

/** One frame as a client sends it: `payload` masked with a fresh key (the caller's buffer is left alone). */
export function encodeMaskedFrame(opcode: number, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(headerBytes(payload.length) + 4 + payload.length);
  const keyAt = writeHeader(out, 0, 0x80 | opcode, payload.length, 0x80);
  nextMaskingKey().copy(out, keyAt);
  const body = out.subarray(keyAt + 4);
  payload.copy(body);
  maskInPlace(body, out.subarray(keyAt, keyAt + 4));
  return out;
}

/** The payload of a close frame: `code` and a reason cut to fit a control frame; none for 1005. */
export function closePayload(code: number, reason = ''): Buffer {
  if (code === 1005) return Buffer.alloc(0);
  const payload = Buffer.allocUnsafe(2 + Buffer.byteLength(reason));
  payload.writeUInt16BE(code, 0);
  payload.write(reason, 2);
  return payload.subarray(0, 125);
}

/** Every frame of `frames`, in order, in one buffer. */
export function encodeFrames(frames: readonly OutgoingFrame[]): Buffer {
  const sizes = new Array<number>(frames.length);
  let total = 0;
  for (let i = 0; i < frames.length; i += 1) {
    const frame = frames[i] as OutgoingFrame;
    if (typeof frame === 'string') {
      const payloadBytes = Buffer.byteLength(frame);
      sizes[i] = payloadBytes;
      total += headerBytes(payloadBytes) + payloadBytes;
    } else {
      total += frame.length;
    }
  }
  const out = Buffer.allocUnsafe(total);
  let offset = 0;
  for (let i = 0; i < frames.length; i += 1) {
    const frame = frames[i] as OutgoingFrame;
    if (typeof frame === 'string') {
      const payloadBytes = sizes[i] as number;
      offset = writeHeader(out, offset, finText, payloadBytes);
      offset += out.write(frame, offset);
    } else {
      offset += frame.copy(out, offset);
    }
  }
  return out;
}

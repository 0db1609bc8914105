/**
 * The WebSocket masking XOR (RFC 6455 §5.3), in place: a client masks what it sends, a server unmasks what
 * it reads; the operation is the same. Long payloads go four bytes at a time through an aligned 32-bit
 * view: in plain JS that is what keeps a 1 MiB publish cheap without a native addon, which a single-file
 * bundle could not carry anyway.
 */
export function maskInPlace(payload: Buffer, key: Uint8Array): void {
  if ((key[0]! | key[1]! | key[2]! | key[3]!) === 0) return;
  const length = payload.length;
  let i = 0;
  if (length >= 64) {
    for (const misaligned = (4 - (payload.byteOffset & 3)) & 3; i < misaligned; i += 1) {
      payload[i] = payload[i]! ^ key[i & 3]!;
    }
    const words = (length - i) >>> 2;
    const view = new Uint32Array(payload.buffer, payload.byteOffset + i, words);
    // The key rotated to start at byte i, read in the platform's byte order like the view.
    const word = new Uint32Array(
      Uint8Array.of(key[i & 3]!, key[(i + 1) & 3]!, key[(i + 2) & 3]!, key[(i + 3) & 3]!).buffer,
    )[0]!;
    for (let w = 0; w < words; w += 1) view[w] = view[w]! ^ word;
    i += words * 4;
  }
  for (; i < length; i += 1) payload[i] = payload[i]! ^ key[i & 3]!;
}

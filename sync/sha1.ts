/**
 * SHA-1 (FIPS 180-4) of a short ASCII string, as base64: all the WebSocket handshake needs (RFC 6455 §4.2.2),
 * and about 2 µs more per connection than `node:crypto`. Written here because `node:crypto` initialises OpenSSL in a
 * sync service that would otherwise never load it, about 1 MiB of its private memory. Not for secrets.
 */
export function sha1Base64(ascii: string): string {
  const length = ascii.length;
  const blocks = ((length + 8) >>> 6) + 1;
  const words: number[] = new Array<number>(blocks * 16).fill(0);
  for (let i = 0; i < length; i += 1) words[i >>> 2]! |= (ascii.charCodeAt(i) & 0xff) << (24 - (i & 3) * 8);
  words[length >>> 2]! |= 0x80 << (24 - (length & 3) * 8);
  words[blocks * 16 - 1] = length * 8;

  let h0 = 0x67452301;
  let h1 = 0xefcdab89;
  let h2 = 0x98badcfe;
  let h3 = 0x10325476;
  let h4 = 0xc3d2e1f0;
  const w: number[] = new Array<number>(80).fill(0);
  for (let block = 0; block < blocks; block += 1) {
    for (let t = 0; t < 16; t += 1) w[t] = words[block * 16 + t]!;
    for (let t = 16; t < 80; t += 1) {
      const x = w[t - 3]! ^ w[t - 8]! ^ w[t - 14]! ^ w[t - 16]!;
      w[t] = (x << 1) | (x >>> 31);
    }
    let a = h0;
    let b = h1;
    let c = h2;
    let d = h3;
    let e = h4;
    for (let t = 0; t < 80; t += 1) {
      const f =
        t < 20
          ? ((b & c) | (~b & d)) + 0x5a827999
          : t < 40
            ? (b ^ c ^ d) + 0x6ed9eba1
            : t < 60
              ? ((b & c) | (b & d) | (c & d)) + 0x8f1bbcdc
              : (b ^ c ^ d) + 0xca62c1d6;
      const temp = (((a << 5) | (a >>> 27)) + f + e + w[t]!) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = temp;
    }
    h0 = (h0 + a) | 0;
    h1 = (h1 + b) | 0;
    h2 = (h2 + c) | 0;
    h3 = (h3 + d) | 0;
    h4 = (h4 + e) | 0;
  }
  const digest = Buffer.allocUnsafe(20);
  digest.writeInt32BE(h0, 0);
  digest.writeInt32BE(h1, 4);
  digest.writeInt32BE(h2, 8);
  digest.writeInt32BE(h3, 12);
  digest.writeInt32BE(h4, 16);
  return digest.toString('base64');
}

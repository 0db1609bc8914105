/**
 * The one HTTP request a sync service connection starts with, read straight off the socket: a WebSocket
 * upgrade (RFC 6455 §4.2) or a plain GET. Node's HTTP parser and `ws`'s upgrade path cost about twice the
 * CPU per connection, and every instance of a run connects in the same second. Pure: no I/O.
 */
import { hash } from 'node:crypto';

/** A request head larger than this is refused (431), so a client cannot grow the buffer without bound. */
export const maxHeadBytes = 16 * 1024;

const headEnd = Buffer.from('\r\n\r\n');
const acceptGuid = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const webSocketKey = /^[+/0-9A-Za-z]{22}==$/;

/** A parsed request head: method, target and lower-cased header names (repeated headers joined with ", "). */
export interface HttpHead {
  method: string;
  target: string;
  headers: Map<string, string>;
}

/**
 * Where the head ends in `buffer`: the index just past the blank line, or -1 while it is incomplete.
 * Searches from `from` (minus the terminator's length), so a head arriving in pieces is scanned once.
 */
export function findHeadEnd(buffer: Buffer, from = 0): number {
  const at = buffer.indexOf(headEnd, Math.max(0, from - headEnd.length + 1));
  return at < 0 ? -1 : at + headEnd.length;
}

/** Parses `head` (the bytes up to and including the blank line); undefined when it is not HTTP/1.x. */
export function parseHttpHead(head: Buffer): HttpHead | undefined {
  const lines = head.toString('latin1').split('\r\n');
  const requestLine = /^([A-Z]+) (\S+) HTTP\/1\.[01]$/.exec(lines[0] ?? '');
  if (requestLine === null) return undefined;
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) return undefined;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const earlier = headers.get(name);
    headers.set(name, earlier === undefined ? value : `${earlier}, ${value}`);
  }
  return { method: requestLine[1] as string, target: requestLine[2] as string, headers };
}

/** Whether the client asks for a WebSocket (whether or not it asks correctly). */
export function isUpgradeRequest(head: HttpHead): boolean {
  return head.headers.get('upgrade')?.toLowerCase() === 'websocket';
}

/**
 * The 101 response accepting a WebSocket upgrade, or the reason it cannot be accepted. The first offered
 * subprotocol is echoed, as `ws` servers do, because clients that offer one refuse a reply without it.
 */
export function acceptUpgrade(
  head: HttpHead,
): { ok: true; response: string } | { ok: false; reason: string } {
  if (head.method !== 'GET') {
    return { ok: false, reason: `a WebSocket upgrade must use GET, got ${head.method}` };
  }
  const version = head.headers.get('sec-websocket-version');
  if (version !== '13') {
    return { ok: false, reason: `Sec-WebSocket-Version must be 13, got ${JSON.stringify(version ?? null)}` };
  }
  const key = head.headers.get('sec-websocket-key');
  if (key === undefined || !webSocketKey.test(key)) {
    return {
      ok: false,
      reason: `Sec-WebSocket-Key must be 16 bytes in base64, got ${JSON.stringify(key ?? null)}`,
    };
  }
  // One call into OpenSSL: a Hash object costs ~15 µs per handshake while the service is cold.
  const accept = hash('sha1', key + acceptGuid, 'base64');
  const protocol = head.headers.get('sec-websocket-protocol')?.split(',')[0]?.trim();
  return {
    ok: true,
    response:
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${accept}\r\n` +
      (protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : '') +
      '\r\n',
  };
}

/** A complete HTTP/1.1 response that closes its connection. */
export function httpResponse(
  status: number,
  reason: string,
  contentType: string,
  body: string,
  extraHeaders: Record<string, string> = {},
): string {
  let headers = '';
  for (const [name, value] of Object.entries(extraHeaders)) headers += `${name}: ${value}\r\n`;
  return (
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: ${contentType}\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n${headers}Connection: close\r\n\r\n${body}`
  );
}

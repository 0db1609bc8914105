/**
 * A WebSocket client connection (RFC 6455) on a plain TCP socket, with as much of the protocol as the sync
 * client uses: the opening handshake, text messages, ping/pong and the closing handshake. The SDK speaks it
 * itself, with the frame reader and writer the sync service uses (core/contract), rather than through
 * `ws`: loading `ws` cost every instance ~16 ms of CPU at start on the 2-core reference machine, a tenth of
 * what a bare `node` takes to start, for features (compression, a server, browser events) it never used.
 */
import { hash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { WsFrameReader } from '../core/contract/ws-frame-reader.ts';
import { closePayload, encodeMaskedFrame } from '../core/contract/ws-frame-writer.ts';
import { opClose, opPong, opText } from '../core/contract/ws-opcodes.ts';

/** The GUID every accepting server hashes with the client's key (RFC 6455 §1.3). */
const handshakeGuid = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const maxResponseHeadBytes = 16 * 1024;
/** The largest message taken from the service, as `ws` allowed a client by default. */
const maxMessageBytes = 100 * 1024 * 1024;
/**
 * How long the server gets to end the connection once the closing handshake began (by either side): a
 * server that never answers our close frame, or keeps the connection open after its own, is cut then.
 */
const closingGraceMs = 1_000;

export interface ClientWebSocketHandlers {
  /** A text message from the server. */
  onMessage(text: string): void;
  /** The connection is closed (1006: it ended without a close frame); called once, last. */
  onClose(code: number, reason: string): void;
  /** Why the connection failed; `onClose` follows. */
  onError(error: Error): void;
}

type State = 'open' | 'closing' | 'closed';

/** An open connection; {@link openClientWebSocket} makes one. */
export class ClientWebSocket {
  readonly url: string;
  private readonly socket: net.Socket;
  private readonly reader: WsFrameReader;
  private handlers: ClientWebSocketHandlers | undefined;
  private state: State = 'open';
  private closeCode = 1006;
  private closeReason = '';
  private closingTimer: NodeJS.Timeout | undefined;
  // What arrived before handlers were attached (a message right after the handshake).
  private early: Array<(handlers: ClientWebSocketHandlers) => void> = [];

  constructor(socket: net.Socket, url: string, rest: Buffer) {
    this.socket = socket;
    this.url = url;
    this.reader = new WsFrameReader(
      maxMessageBytes,
      {
        onMessage: (text) => this.emit((handlers) => handlers.onMessage(text)),
        onPing: (payload) => this.write(encodeMaskedFrame(opPong, payload)),
        onCloseFrame: (code, reason) => {
          this.closeCode = code;
          this.closeReason = reason;
          // Answer the server's close (RFC 6455 §5.5.1), then let the server end the TCP connection.
          if (this.state === 'open') this.write(encodeMaskedFrame(opClose, closePayload(code)));
          this.startClosing();
          this.socket.end();
        },
        onProtocolError: (code, reason) => {
          this.closeCode = code;
          this.closeReason = reason;
          this.write(encodeMaskedFrame(opClose, closePayload(code, reason)));
          this.emit((handlers) =>
            handlers.onError(new Error(`the server broke the WebSocket protocol: ${reason}`)),
          );
          this.socket.destroy();
        },
      },
      'server',
    );
    socket.on('data', (chunk: Buffer) => this.reader.push(chunk));
    socket.on('error', (error) => this.emit((handlers) => handlers.onError(error)));
    socket.on('close', () => {
      clearTimeout(this.closingTimer);
      this.state = 'closed';
      this.reader.stop();
      this.emit((handlers) => handlers.onClose(this.closeCode, this.closeReason));
    });
    if (rest.length > 0) this.reader.push(rest);
  }

  /** Attaches the handlers; what arrived before is handed to them now, in order. */
  listen(handlers: ClientWebSocketHandlers): void {
    this.handlers = handlers;
    const early = this.early;
    this.early = [];
    for (const event of early) event(handlers);
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  /** Sends a text message; a failed write shows as the connection's error and close. */
  send(text: string): void {
    if (this.state !== 'open') return;
    this.write(encodeMaskedFrame(opText, Buffer.from(text)));
  }

  /** Starts the closing handshake: the server answers, then ends the connection (within 1 s, or it is cut). */
  close(code: number, reason: string): void {
    if (this.state !== 'open') return;
    this.startClosing();
    this.closeCode = code;
    this.closeReason = reason;
    this.write(encodeMaskedFrame(opClose, closePayload(code, reason)));
  }

  /** Ends the connection at once, without the closing handshake. */
  terminate(): void {
    this.socket.destroy();
  }

  private startClosing(): void {
    this.state = 'closing';
    this.closingTimer ??= setTimeout(() => this.socket.destroy(), closingGraceMs);
  }

  private write(frame: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(frame);
  }

  private emit(event: (handlers: ClientWebSocketHandlers) => void): void {
    if (this.handlers) event(this.handlers);
    else this.early.push(event);
  }
}

/**
 * Connects to `ws://host:port/` and completes the opening handshake within `timeoutMs`; rejects with what
 * went wrong (refused, timed out, not a WebSocket server, a wrong accept key).
 */
export function openClientWebSocket(
  host: string,
  port: number,
  url: string,
  timeoutMs: number,
): Promise<ClientWebSocket> {
  return new Promise((resolve, reject) => {
    const key = randomBytes(16).toString('base64');
    const socket = net.connect({ host, port });
    socket.setNoDelay(true);
    let head: Buffer = Buffer.alloc(0);
    const fail = (error: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    const timer = setTimeout(
      () => fail(new Error(`the WebSocket handshake with ${url} took over ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.once('error', fail);
    socket.once('close', () =>
      fail(new Error(`${url} closed the connection during the WebSocket handshake`)),
    );
    socket.once('connect', () => {
      const hostHeader = `${host.includes(':') ? `[${host}]` : host}:${port}`;
      socket.write(
        `GET / HTTP/1.1\r\nHost: ${hostHeader}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    const onData = (chunk: Buffer): void => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) {
        if (head.length > maxResponseHeadBytes) {
          fail(
            new Error(
              `${url} answered the WebSocket handshake with over ${maxResponseHeadBytes} bytes of headers`,
            ),
          );
        }
        return;
      }
      const problem = checkHandshakeResponse(head.subarray(0, end).toString('latin1'), key);
      if (problem !== undefined) {
        fail(new Error(`${url}: ${problem}`));
        return;
      }
      clearTimeout(timer);
      socket.removeAllListeners();
      resolve(new ClientWebSocket(socket, url, head.subarray(end + 4)));
    };
    socket.on('data', onData);
  });
}

/** What is wrong with a server's answer to the opening handshake (RFC 6455 §4.1), if anything. */
export function checkHandshakeResponse(head: string, key: string): string | undefined {
  const [statusLine = '', ...lines] = head.split('\r\n');
  if (!/^HTTP\/1\.1 101\b/.test(statusLine)) return `unexpected server response: ${statusLine}`;
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  if (headers.get('upgrade')?.toLowerCase() !== 'websocket') return 'the server did not upgrade to websocket';
  const accept = hash('sha1', key + handshakeGuid, 'base64');
  if (headers.get('sec-websocket-accept') !== accept) return 'invalid Sec-WebSocket-Accept header';
  if (headers.has('sec-websocket-extensions'))
    return 'the server chose an extension the client did not offer';
  return undefined;
}

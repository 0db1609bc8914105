import type { Socket } from 'node:net';
import type { FlushScheduler } from './flush-scheduler.ts';
import { WsFrameReader } from '../core/contract/ws-frame-reader.ts';
import {
  encodeCloseFrame,
  encodeControlFrame,
  encodeFrames,
  type OutgoingFrame,
} from '../core/contract/ws-frame-writer.ts';
import { opPong } from '../core/contract/ws-opcodes.ts';

/** What a {@link FrameSocket} tells the connection it serves. */
export interface FrameSocketHandler {
  onMessage(text: string): void;
  /** Everything written so far reached the kernel (after a 'drain', or a write taken whole): a paused subscription may go on. */
  onDrain(): void;
  /** The socket is gone; `code` is the close code the peer sent (1006 when it just went away). */
  onClose(code: number): void;
}

/** How long a peer gets to answer a close frame the service sent before its socket is cut. */
const closeReplyMs = 1_000;

/**
 * One WebSocket connection after its handshake. Frames sent during a tick are queued and written together
 * by the {@link FlushScheduler}, in the order they were sent.
 */
export class FrameSocket {
  private readonly socket: Socket;
  private readonly flusher: FlushScheduler;
  private readonly reader: WsFrameReader;
  private handler: FrameSocketHandler | undefined;
  private pending: OutgoingFrame[] = [];
  private pendingBytes = 0;
  private queued = false;
  /** `open` until a close frame goes either way; nothing but the close is sent after that. */
  private state: 'open' | 'closing' | 'closed' = 'open';
  private peerCloseCode = 1006;
  private cutTimer: NodeJS.Timeout | undefined;

  constructor(socket: Socket, maxPayloadBytes: number, flusher: FlushScheduler) {
    this.socket = socket;
    this.flusher = flusher;
    this.reader = new WsFrameReader(maxPayloadBytes, {
      onMessage: (text) => {
        if (this.state === 'open') this.handler?.onMessage(text);
      },
      onPing: (payload) => this.queue(encodeControlFrame(opPong, payload)),
      onCloseFrame: (code) => this.onPeerClose(code),
      onProtocolError: (code, reason) => this.close(code, reason),
    });
  }

  /** Starts reading; `head` holds whatever arrived after the handshake's request head. */
  start(handler: FrameSocketHandler, head: Buffer): void {
    this.handler = handler;
    this.socket.on('data', (chunk: Buffer) => this.reader.push(chunk));
    this.socket.on('drain', () => this.handler?.onDrain());
    this.socket.on('close', () => {
      this.state = 'closed';
      clearTimeout(this.cutTimer);
      this.reader.stop();
      this.pending = [];
      this.handler?.onClose(this.peerCloseCode);
    });
    this.reader.push(head);
  }

  /** Resolves when the socket is gone. */
  get closed(): Promise<void> {
    if (this.socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => this.socket.once('close', () => resolve()));
  }

  /** The client's address and port, for log lines (read only when one is written: it costs a system call). */
  get peer(): string {
    return `${this.socket.remoteAddress}:${this.socket.remotePort}`;
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  /**
   * Bytes handed to this socket but not yet written to the kernel (queued strings count their characters),
   * so a long replay can pause behind a slow reader.
   */
  get unflushedBytes(): number {
    return this.pendingBytes + this.socket.writableLength;
  }

  /** Queues a text message; dropped once the connection is closing. */
  send(text: string): void {
    if (this.state === 'open') this.queue(text);
  }

  /** Queues a frame encoded once for many sockets (`encodeTextFrame`); dropped once closing. */
  sendFrame(frame: Buffer): void {
    if (this.state === 'open') this.queue(frame);
  }

  /** Sends a close frame after what is queued, then ends the connection once the peer answers (or soon). */
  close(code: number, reason: string): void {
    if (this.state !== 'open') return;
    this.state = 'closing';
    this.reader.stop();
    this.queue(encodeCloseFrame(code, reason));
    this.flush();
    this.cutTimer = setTimeout(() => this.socket.destroy(), closeReplyMs);
    this.socket.end();
  }

  /** Cuts the connection without a close handshake. */
  terminate(): void {
    this.socket.destroy();
  }

  flush(): void {
    this.queued = false;
    const frames = this.pending;
    if (frames.length === 0) return;
    this.pending = [];
    this.pendingBytes = 0;
    if (this.socket.destroyed || !this.socket.writable) return;
    const only = frames.length === 1 ? frames[0] : undefined;
    const accepted = this.socket.write(
      only !== undefined && typeof only !== 'string' ? only : encodeFrames(frames),
    );
    // The kernel may take a whole write at once, and then no 'drain' follows: say so here instead.
    if (accepted) this.handler?.onDrain();
  }

  private queue(frame: OutgoingFrame): void {
    if (this.state === 'closed') return;
    this.pending.push(frame);
    this.pendingBytes += frame.length;
    if (this.queued) return;
    this.queued = true;
    this.flusher.add(this);
  }

  private onPeerClose(code: number): void {
    this.peerCloseCode = code;
    if (this.state === 'open') {
      this.state = 'closing';
      this.queue(encodeCloseFrame(code));
      this.flush();
    }
    this.socket.end();
  }
}

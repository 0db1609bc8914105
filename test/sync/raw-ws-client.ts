import { WebSocket } from 'ws';

/** A frame as received: the exact text, and its parse. */
export interface ReceivedFrame {
  text: string;
  json: Record<string, unknown>;
}

/**
 * A bare WebSocket speaking the sync protocol by hand, so tests see exactly what the service sends.
 * Frames are kept until a test takes them, in arrival order.
 */
export class RawWsClient {
  readonly ws: WebSocket;
  private readonly unreadFrames: ReceivedFrame[] = [];
  private flushes = 0;
  private readonly waiters = new Set<{
    match: (frame: ReceivedFrame) => boolean;
    resolve: (frame: ReceivedFrame) => void;
  }>();

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data) => {
      const text = (data as Buffer).toString('utf8');
      const frame: ReceivedFrame = { text, json: JSON.parse(text) as Record<string, unknown> };
      for (const waiter of this.waiters) {
        if (waiter.match(frame)) {
          this.waiters.delete(waiter);
          waiter.resolve(frame);
          return;
        }
      }
      this.unreadFrames.push(frame);
    });
  }

  static async connect(port: number, path = '/'): Promise<RawWsClient> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { maxPayload: 64 * 1024 * 1024 });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new RawWsClient(ws);
  }

  send(request: object | string): void {
    this.ws.send(typeof request === 'string' ? request : JSON.stringify(request));
  }

  /** The next unread frame carrying `id`. */
  next(id: string, timeoutMs = 2_000): Promise<ReceivedFrame> {
    return this.nextMatching(
      (frame) => frame.json.id === id,
      `frame with id ${JSON.stringify(id)}`,
      timeoutMs,
    );
  }

  /** Sends a request and returns the next frame carrying its id. */
  async request(request: { id: string } & Record<string, unknown>): Promise<ReceivedFrame> {
    const reply = this.next(request.id);
    this.send(request);
    return reply;
  }

  nextMatching(
    match: (frame: ReceivedFrame) => boolean,
    what: string,
    timeoutMs = 2_000,
  ): Promise<ReceivedFrame> {
    const index = this.unreadFrames.findIndex(match);
    if (index >= 0) return Promise.resolve(this.unreadFrames.splice(index, 1)[0] as ReceivedFrame);
    return new Promise((resolve, reject) => {
      const waiter = {
        match,
        resolve: (frame: ReceivedFrame) => {
          clearTimeout(timer);
          resolve(frame);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`no ${what} arrived within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /** Unread frames carrying `id`, without consuming them. */
  unread(id: string): ReceivedFrame[] {
    return this.unreadFrames.filter((frame) => frame.json.id === id);
  }

  /**
   * Resolves once the service has handled everything this client sent so far: it answers one
   * connection's frames in order, so a fresh signal_entry's reply comes after all earlier output.
   */
  async flush(): Promise<void> {
    this.flushes += 1;
    const id = `flush-${this.flushes}`;
    await this.request({ id, signal_entry: { state: 'raw-ws-client-flush' } });
  }

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once('close', () => resolve());
      this.ws.close();
    });
  }
}

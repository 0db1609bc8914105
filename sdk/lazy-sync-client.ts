/**
 * A sync client that connects on first use, so that test cases which never coordinate run without a
 * sync service.
 */
import type { SyncClient } from './sync-client.ts';
import { SyncConnectionError } from './sync-errors.ts';
import type { Subscription } from './topic-subscription.ts';

/** What a test case can do with the sync service (see {@link SyncClient}). */
export type SyncClientApi = Pick<
  SyncClient,
  'signalEntry' | 'barrier' | 'signalAndWait' | 'publish' | 'subscribe' | 'publishSubscribe' | 'close'
>;

/** Opens the real connection; called at most once. */
export type ConnectSyncClient = () => Promise<SyncClientApi>;

/** Told of each barrier the test case waited at: its state and how long the wait took. */
export type BarrierWaited = (state: string, waitedMs: number) => void;

export class LazySyncClient implements SyncClientApi {
  private readonly connect: ConnectSyncClient;
  private connection: Promise<SyncClientApi> | undefined;
  private closing: Promise<void> | undefined;
  private readonly onBarrierWaited: BarrierWaited | undefined;

  constructor(connect: ConnectSyncClient, onBarrierWaited?: BarrierWaited) {
    this.connect = connect;
    this.onBarrierWaited = onBarrierWaited;
  }

  /** Whether anything asked for the connection yet. */
  get used(): boolean {
    return this.connection !== undefined;
  }

  async signalEntry(state: string): Promise<number> {
    return (await this.connected()).signalEntry(state);
  }

  async barrier(state: string, target: number, options?: { signal?: AbortSignal }): Promise<void> {
    const client = await this.connected();
    const started = performance.now();
    await client.barrier(state, target, options);
    this.onBarrierWaited?.(state, performance.now() - started);
  }

  async signalAndWait(state: string, target: number, options?: { signal?: AbortSignal }): Promise<number> {
    const client = await this.connected();
    const started = performance.now();
    const seq = await client.signalAndWait(state, target, options);
    this.onBarrierWaited?.(state, performance.now() - started);
    return seq;
  }

  async publish(topic: string, payload: unknown): Promise<number> {
    return (await this.connected()).publish(topic, payload);
  }

  subscribe<T = unknown>(topic: string): Subscription<T> {
    return new PendingSubscription<T>(this.connected().then((client) => client.subscribe<T>(topic)));
  }

  async publishSubscribe<T = unknown>(
    topic: string,
    payload: unknown,
  ): Promise<{ seq: number; subscription: Subscription<T> }> {
    return (await this.connected()).publishSubscribe<T>(topic, payload);
  }

  /** Closes the connection if one was opened. Safe to call more than once. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.connection === undefined) return;
      // A connection that never opened has nothing to close; its error already reached the caller.
      const client = await this.connection.catch(() => undefined);
      await client?.close();
    })();
    return this.closing;
  }

  private connected(): Promise<SyncClientApi> {
    if (this.closing !== undefined) {
      return Promise.reject(new SyncConnectionError('the sync client was closed'));
    }
    this.connection ??= this.connect();
    return this.connection;
  }
}

/** A subscription handed out synchronously while the connection it needs is still being opened. */
class PendingSubscription<T> implements Subscription<T> {
  private readonly inner: Promise<Subscription<T>>;
  private canceled = false;

  constructor(inner: Promise<Subscription<T>>) {
    this.inner = inner;
    // A failed connection surfaces from next() if anyone iterates; unread, it must not crash the process.
    inner.catch(() => {});
  }

  async next(): Promise<IteratorResult<T>> {
    if (this.canceled) return { value: undefined, done: true };
    return (await this.inner).next();
  }

  async return(): Promise<IteratorResult<T>> {
    this.cancel();
    return { value: undefined, done: true };
  }

  cancel(): void {
    if (this.canceled) return;
    this.canceled = true;
    void this.inner.then(
      (subscription) => subscription.cancel(),
      () => {},
    );
  }

  [Symbol.asyncIterator](): Subscription<T> {
    return this;
  }
}

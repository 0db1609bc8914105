/**
 * A sync client that connects on first use, so that test cases which never coordinate run without a
 * sync service.
 */
import { SyncConnectionError, type Subscription, type SyncClient } from './sync-client.ts';

/** What a test case can do with the sync service (see {@link SyncClient}). */
export type SyncClientApi = Pick<
  SyncClient,
  'signalEntry' | 'barrier' | 'signalAndWait' | 'publish' | 'subscribe' | 'publishSubscribe' | 'close'
>;

/** Opens the real connection; called at most once. */
export type ConnectSyncClient = () => Promise<SyncClientApi>;

export class LazySyncClient implements SyncClientApi {
  readonly #connect: ConnectSyncClient;
  #client: Promise<SyncClientApi> | undefined;
  #closing: Promise<void> | undefined;

  constructor(connect: ConnectSyncClient) {
    this.#connect = connect;
  }

  /** Whether anything asked for the connection yet. */
  get used(): boolean {
    return this.#client !== undefined;
  }

  async signalEntry(state: string): Promise<number> {
    return (await this.#get()).signalEntry(state);
  }

  async barrier(state: string, target: number, options?: { signal?: AbortSignal }): Promise<void> {
    return (await this.#get()).barrier(state, target, options);
  }

  async signalAndWait(state: string, target: number, options?: { signal?: AbortSignal }): Promise<number> {
    return (await this.#get()).signalAndWait(state, target, options);
  }

  async publish(topic: string, payload: unknown): Promise<number> {
    return (await this.#get()).publish(topic, payload);
  }

  subscribe<T = unknown>(topic: string): Subscription<T> {
    return new PendingSubscription<T>(this.#get().then((client) => client.subscribe<T>(topic)));
  }

  async publishSubscribe<T = unknown>(
    topic: string,
    payload: unknown,
  ): Promise<{ seq: number; subscription: Subscription<T> }> {
    return (await this.#get()).publishSubscribe<T>(topic, payload);
  }

  /** Closes the connection if one was opened. Safe to call more than once. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#client === undefined) return;
      // A connection that never opened has nothing to close; its error already reached the caller.
      const client = await this.#client.catch(() => undefined);
      await client?.close();
    })();
    return this.#closing;
  }

  #get(): Promise<SyncClientApi> {
    if (this.#closing !== undefined) {
      return Promise.reject(new SyncConnectionError('the sync client was closed'));
    }
    this.#client ??= this.#connect();
    return this.#client;
  }
}

/** A subscription handed out synchronously while the connection it needs is still being opened. */
class PendingSubscription<T> implements Subscription<T> {
  readonly #inner: Promise<Subscription<T>>;
  #canceled = false;

  constructor(inner: Promise<Subscription<T>>) {
    this.#inner = inner;
    // A failed connection surfaces from next() if anyone iterates; unread, it must not crash the process.
    inner.catch(() => {});
  }

  async next(): Promise<IteratorResult<T>> {
    if (this.#canceled) return { value: undefined, done: true };
    return (await this.#inner).next();
  }

  async return(): Promise<IteratorResult<T>> {
    this.cancel();
    return { value: undefined, done: true };
  }

  cancel(): void {
    if (this.#canceled) return;
    this.#canceled = true;
    void this.#inner.then(
      (subscription) => subscription.cancel(),
      () => {},
    );
  }

  [Symbol.asyncIterator](): Subscription<T> {
    return this;
  }
}

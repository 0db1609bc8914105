/**
 * Client of the sync service (CONTRACT §3) for test plans. Depends on `ws` and Node only, because plans
 * bundle it.
 */
import { WebSocket, type RawData } from 'ws';

/** Where the service is and which run, plan and test case this instance's keys belong to. */
export interface SyncClientOptions {
  host: string;
  port: number;
  runId: string;
  plan: string;
  testCase: string;
  /**
   * How long to keep retrying the connection; default 60 000 ms: instances may start before the service,
   * and a host starting hundreds of instances at once can be slow to answer.
   */
  connectTimeoutMs?: number;
  /** Stops connection retries. */
  signal?: AbortSignal;
}

/** The sync service answered a request with an error. */
export class SyncRequestError extends Error {
  readonly code = 'sync_request_failed';
  /** The id of the failed request on its connection. */
  readonly requestId: string;

  constructor(message: string, requestId: string) {
    super(message);
    this.name = 'SyncRequestError';
    this.requestId = requestId;
  }
}

/** The connection to the sync service could not be opened, was lost, or the client was closed. */
export class SyncConnectionError extends Error {
  readonly code = 'sync_connection_failed';

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SyncConnectionError';
  }
}

/**
 * Items of one topic, from the first ever published, in publish order, then live ones. Iterate it with
 * `for await`; leaving the loop early cancels it. Items wait in memory until read.
 */
export interface Subscription<T = unknown> extends AsyncIterableIterator<T> {
  /** Asks the service to stop sending items and ends the iteration. Safe to call more than once. */
  cancel(): void;
}

interface WireResponse {
  id: string;
  error: string;
  publish: { seq?: unknown } | null;
  subscribe: string;
  signal_entry: { seq?: unknown } | null;
}

interface Route {
  onResponse(response: WireResponse): void;
  onClose(error: SyncConnectionError, closedByUser: boolean): void;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 60_000;
// One handshake may stall (an engine's port proxy before the service listens); try again rather than wait.
const ATTEMPT_TIMEOUT_MS = 5_000;
const FIRST_RETRY_DELAY_MS = 50;
const MAX_RETRY_DELAY_MS = 1_000;
const CLOSE_HANDSHAKE_MS = 1_000;

/** A connection to the sync service, with every state and topic name namespaced to one run and test case. */
export class SyncClient {
  readonly #ws: WebSocket;
  readonly #url: string;
  readonly #namespace: string;
  readonly #routes = new Map<string, Route>();
  #nextId = 0;
  #failure: SyncConnectionError | undefined;
  #closing: Promise<void> | undefined;

  /** Use {@link connectSyncClient}; this takes an already open socket. */
  constructor(ws: WebSocket, options: Pick<SyncClientOptions, 'runId' | 'plan' | 'testCase'>) {
    this.#ws = ws;
    this.#url = ws.url;
    this.#namespace = `run:${options.runId}:plan:${options.plan}:case:${options.testCase}`;
    ws.on('message', (data) => this.#onMessage(data));
    ws.on('error', (error) => {
      this.#failure ??= new SyncConnectionError(
        `connection to the sync service at ${this.#url} failed: ${error.message}`,
        { cause: error },
      );
    });
    ws.on('close', (code, reason) => {
      const closedByUser = this.#closing !== undefined;
      this.#failure ??= new SyncConnectionError(
        closedByUser
          ? 'the sync client was closed'
          : `connection to the sync service at ${this.#url} closed (code ${code}${reason.length > 0 ? `, ${reason.toString()}` : ''}); its pending requests cannot complete`,
      );
      this.#failAll(closedByUser);
    });
  }

  /** The service-side name of a state: `run:<run>:plan:<plan>:case:<case>:states:<name>`. */
  stateKey(name: string): string {
    return `${this.#namespace}:states:${name}`;
  }

  /** The service-side name of a topic: `run:<run>:plan:<plan>:case:<case>:topics:<name>`. */
  topicKey(name: string): string {
    return `${this.#namespace}:topics:${name}`;
  }

  /** Increments a state's counter; resolves with the new count, 1 for the first instance to signal. */
  signalEntry(state: string): Promise<number> {
    return this.#requestOnce({ signal_entry: { state: this.stateKey(state) } }, (response) =>
      readSeq(response.signal_entry, 'signal_entry', response.id),
    );
  }

  /**
   * Resolves once the state's counter reaches `target` (at once when it already has, or `target <= 0`).
   * Waits without a time limit: pass an AbortSignal to give up, which also cancels it on the service.
   */
  barrier(state: string, target: number, options: { signal?: AbortSignal } = {}): Promise<void> {
    return this.#requestOnce(
      { barrier: { state: this.stateKey(state), target } },
      () => undefined,
      options.signal,
    );
  }

  /** Signals the state, then waits until `target` instances have; resolves with this instance's seq. */
  async signalAndWait(
    state: string,
    target: number,
    options: { signal?: AbortSignal } = {},
  ): Promise<number> {
    // Both requests go out back to back: the service handles one connection's frames in order, so the
    // barrier already counts this signal and the round trip in between is saved.
    const signalFailed = new AbortController();
    const seq = this.signalEntry(state);
    const signal =
      options.signal === undefined
        ? signalFailed.signal
        : AbortSignal.any([signalFailed.signal, options.signal]);
    const barrier = this.barrier(state, target, { signal });
    barrier.catch(() => {});
    try {
      const mySeq = await seq;
      await barrier;
      return mySeq;
    } catch (error) {
      signalFailed.abort(error);
      throw error;
    }
  }

  /** Appends a JSON-serialisable payload to a topic; resolves with its 1-based position. */
  publish(topic: string, payload: unknown): Promise<number> {
    return this.#requestOnce({ publish: { topic: this.topicKey(topic), payload } }, (response) =>
      readSeq(response.publish, 'publish', response.id),
    );
  }

  /** Streams every item of a topic, history first. Items are parsed JSON, typed as `T` unchecked. */
  subscribe<T = unknown>(topic: string): Subscription<T> {
    const id = this.#newId();
    const subscription = new TopicSubscription<T>(() => {
      if (this.#routes.delete(id)) this.#sendCancel(id);
    });
    this.#send(
      id,
      { subscribe: { topic: this.topicKey(topic) } },
      {
        onResponse: (response) => {
          if (response.error !== '') {
            this.#routes.delete(id);
            subscription.fail(
              new SyncRequestError(`subscribe to topic ${topic} failed: ${response.error}`, id),
            );
            return;
          }
          let item: T;
          try {
            item = JSON.parse(response.subscribe) as T;
          } catch (error) {
            this.#routes.delete(id);
            this.#sendCancel(id);
            subscription.fail(
              new SyncRequestError(
                `the sync service sent an item of topic ${topic} that is not JSON: ${(error as Error).message}`,
                id,
              ),
            );
            return;
          }
          subscription.push(item);
        },
        onClose: (error, closedByUser) => (closedByUser ? subscription.end() : subscription.fail(error)),
      },
    );
    return subscription;
  }

  /** Publishes, and subscribes to the same topic (which replays what was published before, this included). */
  async publishSubscribe<T = unknown>(
    topic: string,
    payload: unknown,
  ): Promise<{ seq: number; subscription: Subscription<T> }> {
    const seq = this.publish(topic, payload);
    const subscription = this.subscribe<T>(topic);
    try {
      return { seq: await seq, subscription };
    } catch (error) {
      subscription.cancel();
      throw error;
    }
  }

  /** Closes the connection; pending requests reject, subscriptions end. Safe to call more than once. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      // Settle everything now rather than after the close handshake, and refuse new requests.
      this.#failure ??= new SyncConnectionError('the sync client was closed');
      this.#failAll(true);
      if (this.#ws.readyState === WebSocket.CLOSED) {
        resolve();
        return;
      }
      const timer = setTimeout(() => this.#ws.terminate(), CLOSE_HANDSHAKE_MS);
      this.#ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.#ws.close(1000, 'sync client closed');
    });
    return this.#closing;
  }

  #requestOnce<R>(body: object, read: (response: WireResponse) => R, signal?: AbortSignal): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const id = this.#newId();
      const onAbort = (): void => {
        if (this.#routes.delete(id)) this.#sendCancel(id);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = (): void => {
        this.#routes.delete(id);
        signal?.removeEventListener('abort', onAbort);
      };
      const route: Route = {
        onResponse: (response) => {
          done();
          if (response.error !== '') {
            reject(new SyncRequestError(`sync ${describe(body)} failed: ${response.error}`, id));
            return;
          }
          try {
            resolve(read(response));
          } catch (error) {
            reject(error);
          }
        },
        onClose: (error) => {
          done();
          reject(error);
        },
      };
      try {
        this.#send(id, body, route);
      } catch (error) {
        // JSON.stringify refuses BigInt and cyclic payloads.
        done();
        reject(error);
      }
    });
  }

  #newId(): string {
    const id = String(this.#nextId);
    this.#nextId += 1;
    return id;
  }

  #send(id: string, body: object, route: Route): void {
    if (this.#failure !== undefined) {
      route.onClose(this.#failure, this.#closing !== undefined);
      return;
    }
    const text = JSON.stringify({ id, ...body });
    this.#routes.set(id, route);
    // A failed send shows up as the socket's close, which rejects every route.
    this.#ws.send(text, () => {});
  }

  #sendCancel(id: string): void {
    if (this.#ws.readyState === WebSocket.OPEN)
      this.#ws.send(JSON.stringify({ id, is_cancel: true }), () => {});
  }

  #onMessage(data: RawData): void {
    const response = parseResponse(data);
    if (response === undefined) return;
    // Unknown ids are replies to requests given up on (cancelled subscriptions, aborted barriers).
    this.#routes.get(response.id)?.onResponse(response);
  }

  #failAll(closedByUser: boolean): void {
    const failure = this.#failure ?? new SyncConnectionError('the sync connection is closed');
    const routes = [...this.#routes.values()];
    this.#routes.clear();
    for (const route of routes) route.onClose(failure, closedByUser);
  }
}

/**
 * Connects to the sync service, retrying with backoff for up to `connectTimeoutMs` (default 60 s)
 * while it is not reachable yet.
 */
export async function connectSyncClient(options: SyncClientOptions): Promise<SyncClient> {
  const url = `ws://${options.host.includes(':') ? `[${options.host}]` : options.host}:${options.port}`;
  const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  let delayMs = FIRST_RETRY_DELAY_MS;
  for (let attempt = 1; ; attempt += 1) {
    options.signal?.throwIfAborted();
    let lastError: Error;
    try {
      const ws = await openSocket(url, Math.min(Math.max(deadline - Date.now(), 1), ATTEMPT_TIMEOUT_MS));
      return new SyncClient(ws, options);
    } catch (error) {
      lastError = error as Error;
    }
    const remainingMs = deadline - Date.now();
    if (remainingMs <= 0) {
      throw new SyncConnectionError(
        `could not connect to the sync service at ${url} within ${timeoutMs} ms (${attempt} attempts, last error: ${lastError.message}); check SYNC_SERVICE_HOST and SYNC_SERVICE_PORT and that the service is running`,
        { cause: lastError },
      );
    }
    await sleep(Math.min(delayMs, remainingMs), options.signal);
    delayMs = Math.min(delayMs * 2, MAX_RETRY_DELAY_MS);
  }
}

/**
 * Reads the client's options from an instance's environment: `SYNC_SERVICE_HOST` (default
 * `testground-sync-service`), `SYNC_SERVICE_PORT` (default 5050), and the required `TEST_RUN`,
 * `TEST_PLAN`, `TEST_CASE`.
 */
export function syncClientOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): SyncClientOptions {
  const portText = env.SYNC_SERVICE_PORT || '5050';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65_535) {
    throw new RangeError(
      `SYNC_SERVICE_PORT must be a port number from 1 to 65535, got ${JSON.stringify(portText)}`,
    );
  }
  const missing = ['TEST_RUN', 'TEST_PLAN', 'TEST_CASE'].filter((name) => !env[name]);
  if (missing.length > 0) {
    throw new Error(
      `cannot name this run's sync states and topics: ${missing.join(', ')} not set; testground runners set them for every instance, set them yourself when running a plan by hand`,
    );
  }
  return {
    host: env.SYNC_SERVICE_HOST || 'testground-sync-service',
    port,
    runId: env.TEST_RUN ?? '',
    plan: env.TEST_PLAN ?? '',
    testCase: env.TEST_CASE ?? '',
  };
}

/** {@link connectSyncClient} with options from {@link syncClientOptionsFromEnv}. */
export function connectSyncClientFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  options: { connectTimeoutMs?: number; signal?: AbortSignal } = {},
): Promise<SyncClient> {
  return connectSyncClient({ ...syncClientOptionsFromEnv(env), ...options });
}

class TopicSubscription<T> implements Subscription<T> {
  readonly #onCancel: () => void;
  #items: T[] = [];
  #head = 0;
  #readers: { resolve: (result: IteratorResult<T>) => void; reject: (error: Error) => void }[] = [];
  #ended = false;
  #error: Error | undefined;

  constructor(onCancel: () => void) {
    this.#onCancel = onCancel;
  }

  push(item: T): void {
    if (this.#ended) return;
    const reader = this.#readers.shift();
    if (reader !== undefined) reader.resolve({ value: item, done: false });
    else this.#items.push(item);
  }

  fail(error: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = error;
    for (const reader of this.#readers.splice(0)) reader.reject(error);
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const reader of this.#readers.splice(0)) reader.resolve({ value: undefined, done: true });
  }

  cancel(): void {
    if (this.#ended) return;
    this.#onCancel();
    this.#items = [];
    this.#head = 0;
    this.end();
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#head < this.#items.length) {
      const value = this.#items[this.#head] as T;
      this.#head += 1;
      // Drop consumed items once they are the bulk of the array, keeping reads O(1) amortised.
      if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
        this.#items = this.#items.slice(this.#head);
        this.#head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this.#readers.push({ resolve, reject }));
  }

  return(): Promise<IteratorResult<T>> {
    this.cancel();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): Subscription<T> {
    return this;
  }
}

function openSocket(url: string, handshakeTimeoutMs: number): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { handshakeTimeout: handshakeTimeoutMs, perMessageDeflate: false });
    const onError = (error: Error): void => {
      ws.off('open', onOpen);
      reject(error);
    };
    const onOpen = (): void => {
      ws.off('error', onError);
      resolve(ws);
    };
    ws.once('error', onError);
    ws.once('open', onOpen);
  });
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function parseResponse(data: RawData): WireResponse | undefined {
  const text = Buffer.isBuffer(data)
    ? data.toString('utf8')
    : Array.isArray(data)
      ? Buffer.concat(data).toString('utf8')
      : Buffer.from(data).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || typeof (value as { id?: unknown }).id !== 'string') {
    return undefined;
  }
  const raw = value as Partial<WireResponse> & { id: string };
  return {
    id: raw.id,
    error: typeof raw.error === 'string' ? raw.error : '',
    publish: raw.publish ?? null,
    subscribe: typeof raw.subscribe === 'string' ? raw.subscribe : '',
    signal_entry: raw.signal_entry ?? null,
  };
}

function readSeq(field: { seq?: unknown } | null, kind: string, id: string): number {
  const seq = field?.seq;
  if (typeof seq !== 'number' || !Number.isInteger(seq) || seq < 1) {
    throw new SyncRequestError(
      `the sync service answered ${kind} request ${id} without a positive integer ${kind}.seq (got ${JSON.stringify(field)})`,
      id,
    );
  }
  return seq;
}

function describe(body: object): string {
  const [kind, value] = Object.entries(body)[0] ?? ['request', {}];
  const target = value as { state?: string; topic?: string };
  const key = target.state ?? target.topic;
  return key === undefined ? kind : `${kind} on ${key}`;
}

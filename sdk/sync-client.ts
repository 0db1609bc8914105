/**
 * Client of the sync service (CONTRACT §3) for test plans: sends requests and routes each reply to its
 * request by id. Depends on Node only, because plans bundle it.
 */
import {
  decodeSyncResponse,
  encodeCancelRequest,
  encodeSyncRequest,
  readResponseSeq,
  syncStateKey,
  syncTopicKey,
  type SyncOperation,
  type SyncResponse,
  type SyncScope,
} from '../core/contract/sync-wire.ts';
import type { ClientWebSocket } from './client-websocket.ts';
import { openSyncSocket, syncClientOptionsFromEnv, type SyncClientOptions } from './sync-connect.ts';
import { SyncConnectionError, SyncRequestError } from './sync-errors.ts';
import { TopicSubscription, type Subscription } from './topic-subscription.ts';

interface Route {
  onResponse(response: SyncResponse): void;
  onClose(error: SyncConnectionError, closedByUser: boolean): void;
}

/** A connection to the sync service, with every state and topic name namespaced to one run and test case. */
export class SyncClient {
  private readonly ws: ClientWebSocket;
  private readonly url: string;
  private readonly scope: SyncScope;
  private readonly routes = new Map<string, Route>();
  private nextId = 0;
  private failure: SyncConnectionError | undefined;
  private closing: Promise<void> | undefined;
  /** Called when the connection has closed; {@link close} waits on it. */
  private closed: () => void = () => {};

  /** Use {@link connectSyncClient}; this takes an already open socket. */
  constructor(ws: ClientWebSocket, scope: SyncScope) {
    this.ws = ws;
    this.url = ws.url;
    this.scope = { runId: scope.runId, plan: scope.plan, testCase: scope.testCase };
    ws.listen({
      onMessage: (text) => this.onMessage(text),
      onError: (error) => {
        this.failure ??= new SyncConnectionError(
          `connection to the sync service at ${this.url} failed: ${error.message}`,
          { cause: error },
        );
      },
      onClose: (code, reason) => {
        const closedByUser = this.closing !== undefined;
        this.failure ??= new SyncConnectionError(
          closedByUser
            ? 'the sync client was closed'
            : `connection to the sync service at ${this.url} closed (code ${code}${reason.length > 0 ? `, ${reason}` : ''}); its pending requests cannot complete`,
        );
        this.failAll(closedByUser);
        this.closed();
      },
    });
  }

  /** The service-side name of a state: `run:<run>:plan:<plan>:case:<case>:states:<name>`. */
  stateKey(name: string): string {
    return syncStateKey(this.scope, name);
  }

  /** The service-side name of a topic: `run:<run>:plan:<plan>:case:<case>:topics:<name>`. */
  topicKey(name: string): string {
    return syncTopicKey(this.scope, name);
  }

  /** Increments a state's counter; resolves with the new count, 1 for the first instance to signal. */
  signalEntry(state: string): Promise<number> {
    return this.requestOnce({ signal_entry: { state: this.stateKey(state) } }, (response) =>
      readSeq(response.signal_entry, 'signal_entry', response.id),
    );
  }

  /**
   * Resolves once the state's counter reaches `target` (at once when it already has, or `target <= 0`).
   * Waits without a time limit: pass an AbortSignal to give up, which also cancels it on the service.
   */
  barrier(state: string, target: number, options: { signal?: AbortSignal } = {}): Promise<void> {
    return this.requestOnce(
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
    return this.requestOnce({ publish: { topic: this.topicKey(topic), payload } }, (response) =>
      readSeq(response.publish, 'publish', response.id),
    );
  }

  /** Streams every item of a topic, history first. Items are parsed JSON, typed as `T` unchecked. */
  subscribe<T = unknown>(topic: string): Subscription<T> {
    const id = this.newId();
    const subscription = new TopicSubscription<T>(() => {
      if (this.routes.delete(id)) this.sendCancel(id);
    });
    this.send(
      id,
      { subscribe: { topic: this.topicKey(topic) } },
      {
        onResponse: (response) => {
          if (response.error !== '') {
            this.routes.delete(id);
            subscription.fail(
              new SyncRequestError(`subscribe to topic ${topic} failed: ${response.error}`, id),
            );
            return;
          }
          let item: T;
          try {
            item = JSON.parse(response.subscribe) as T;
          } catch (error) {
            this.routes.delete(id);
            this.sendCancel(id);
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
    this.closing ??= new Promise<void>((resolve) => {
      // Settle everything now rather than after the close handshake, and refuse new requests.
      this.failure ??= new SyncConnectionError('the sync client was closed');
      this.failAll(true);
      if (this.ws.isClosed) {
        resolve();
        return;
      }
      // The socket ends the handshake within its grace time, answered or not.
      this.closed = resolve;
      this.ws.close(1000, 'sync client closed');
    });
    return this.closing;
  }

  private requestOnce<R>(
    body: SyncOperation,
    read: (response: SyncResponse) => R,
    signal?: AbortSignal,
  ): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const id = this.newId();
      const onAbort = (): void => {
        if (this.routes.delete(id)) this.sendCancel(id);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = (): void => {
        this.routes.delete(id);
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
        this.send(id, body, route);
      } catch (error) {
        // JSON.stringify refuses BigInt and cyclic payloads.
        done();
        reject(error);
      }
    });
  }

  private newId(): string {
    const id = String(this.nextId);
    this.nextId += 1;
    return id;
  }

  private send(id: string, body: SyncOperation, route: Route): void {
    if (this.failure !== undefined) {
      route.onClose(this.failure, this.closing !== undefined);
      return;
    }
    const text = encodeSyncRequest(id, body);
    this.routes.set(id, route);
    // A failed send shows up as the socket's close, which rejects every route.
    this.ws.send(text);
  }

  private sendCancel(id: string): void {
    this.ws.send(encodeCancelRequest(id));
  }

  private onMessage(text: string): void {
    const response = decodeSyncResponse(text);
    if (response === undefined) return;
    // Unknown ids are replies to requests given up on (cancelled subscriptions, aborted barriers).
    this.routes.get(response.id)?.onResponse(response);
  }

  private failAll(closedByUser: boolean): void {
    const failure = this.failure ?? new SyncConnectionError('the sync connection is closed');
    const routes = [...this.routes.values()];
    this.routes.clear();
    for (const route of routes) route.onClose(failure, closedByUser);
  }
}

/**
 * Connects to the sync service, retrying with backoff for up to `connectTimeoutMs` (default 60 s)
 * while it is not reachable yet.
 */
export async function connectSyncClient(options: SyncClientOptions): Promise<SyncClient> {
  return new SyncClient(await openSyncSocket(options), options);
}

/** {@link connectSyncClient} with options from {@link syncClientOptionsFromEnv}. */
export function connectSyncClientFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  options: { connectTimeoutMs?: number; signal?: AbortSignal } = {},
): Promise<SyncClient> {
  return connectSyncClient({ ...syncClientOptionsFromEnv(env), ...options });
}

function readSeq(field: { seq?: unknown } | null, kind: string, id: string): number {
  const seq = readResponseSeq(field);
  if (seq === undefined) {
    throw new SyncRequestError(
      `the sync service answered ${kind} request ${id} without a positive integer ${kind}.seq (got ${JSON.stringify(field)})`,
      id,
    );
  }
  return seq;
}

function describe(body: SyncOperation): string {
  const [kind, value] = Object.entries(body)[0] ?? ['request', {}];
  const target = value as { state?: string; topic?: string };
  const key = target.state ?? target.topic;
  return key === undefined ? kind : `${kind} on ${key}`;
}

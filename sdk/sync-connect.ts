/**
 * Opening the WebSocket to the sync service: where it is (given, or from the instance environment), and
 * retrying with backoff while it is not reachable yet.
 */
import { openClientWebSocket, type ClientWebSocket } from './client-websocket.ts';
import { parseSyncServiceEnv, type SyncServiceEnvironment } from '../core/contract/instance-env.ts';
import type { SyncScope } from '../core/contract/sync-wire.ts';
import { SyncConnectionError } from './sync-errors.ts';

/** Where the sync service is, and how long to try reaching it. */
export interface SyncEndpoint {
  host: string;
  port: number;
  /**
   * How long to keep retrying the connection; default 60 000 ms: instances may start before the service,
   * and a host starting hundreds of instances at once can be slow to answer.
   */
  connectTimeoutMs?: number;
  /** Stops connection retries. */
  signal?: AbortSignal;
}

/** Where the service is and which run, plan and test case this instance's keys belong to. */
export interface SyncClientOptions extends SyncEndpoint, SyncScope {}

const defaultConnectTimeoutMs = 60_000;
// One handshake may stall (an engine's port proxy before the service listens); try again rather than wait.
const attemptTimeoutMs = 5_000;
const firstRetryDelayMs = 50;
const maxRetryDelayMs = 1_000;

/** `ws://host:port`, with an IPv6 host in brackets. */
export function syncServiceUrl(host: string, port: number): string {
  return `ws://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * Opens a WebSocket to the sync service, retrying with backoff for up to `connectTimeoutMs` (default
 * 60 s) while it is not reachable yet.
 */
export async function openSyncSocket(endpoint: SyncEndpoint): Promise<ClientWebSocket> {
  const url = syncServiceUrl(endpoint.host, endpoint.port);
  const timeoutMs = endpoint.connectTimeoutMs ?? defaultConnectTimeoutMs;
  const deadline = Date.now() + timeoutMs;
  let delayMs = firstRetryDelayMs;
  for (let attempt = 1; ; attempt += 1) {
    endpoint.signal?.throwIfAborted();
    let lastError: Error;
    try {
      const attemptMs = Math.min(Math.max(deadline - Date.now(), 1), attemptTimeoutMs);
      return await openClientWebSocket(endpoint.host, endpoint.port, url, attemptMs);
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
    await sleep(Math.min(delayMs, remainingMs), endpoint.signal);
    delayMs = Math.min(delayMs * 2, maxRetryDelayMs);
  }
}

/** The client's options for an instance environment (a parsed one, or a `RunEnv`). */
export function syncClientOptionsFor(environment: SyncServiceEnvironment): SyncClientOptions {
  return {
    host: environment.syncServiceHost,
    port: environment.syncServicePort,
    runId: environment.testRun,
    plan: environment.testPlan,
    testCase: environment.testCase,
  };
}

/**
 * Reads the client's options from an instance's environment: `SYNC_SERVICE_HOST` (default
 * `testground-sync-service`), `SYNC_SERVICE_PORT` (default 5050), and the required `TEST_RUN`,
 * `TEST_PLAN`, `TEST_CASE`. Throws a `RunEnvError` naming every missing or invalid variable.
 */
export function syncClientOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): SyncClientOptions {
  return syncClientOptionsFor(parseSyncServiceEnv(env));
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

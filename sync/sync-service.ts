import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { WebSocketServer } from 'ws';
import { SyncConnection } from './sync-connection.ts';
import { SyncStore, type StateCount } from './sync-store.ts';

/**
 * The one plain HTTP request the service answers: its states' counts as JSON ({@link SyncStatus}), read by
 * the daemon to show a waiting user which barrier holds a run (and how many reached it).
 */
export const syncStatusPath = '/status';

/** The answer to `GET /status`. */
export interface SyncStatus {
  states: StateCount[];
}

/** Options of {@link startSyncService}. */
export interface SyncServiceOptions {
  /** Address to listen on; default `127.0.0.1`. */
  host?: string;
  /** Port to listen on; default `0`, a free port chosen by the OS (read it back from `SyncService.port`). */
  port?: number;
  /** Parent logger; the service logs through a child `{ component: 'sync-service' }`. Silent when absent. */
  logger?: Logger;
  /** Largest accepted frame in bytes; default 4 MiB. A larger frame closes its connection with code 1009. */
  maxPayloadBytes?: number;
}

/** A running sync service: one run's states, barriers and topics behind a WebSocket server. */
export interface SyncService {
  /** The address it listens on. */
  readonly host: string;
  /** The port it listens on (the real one when started with port 0). */
  readonly port: number;
  /** Closes every connection and the server. Safe to call more than once. */
  close(): Promise<void>;
}

const defaultMaxPayloadBytes = 4 * 1024 * 1024;
/** How long connected clients get to answer the close handshake before their sockets are cut. */
const closeGraceMs = 1_000;

/**
 * Starts a sync service speaking CONTRACT §3 on any path. All state lives in memory, in one store per
 * service, until `close()`.
 */
export async function startSyncService(options: SyncServiceOptions = {}): Promise<SyncService> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 0;
  const maxPayload = options.maxPayloadBytes ?? defaultMaxPayloadBytes;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new RangeError(
      `sync service port must be an integer from 0 to 65535 (0 = any free port), got ${port}`,
    );
  }
  if (!Number.isInteger(maxPayload) || maxPayload <= 0) {
    throw new RangeError(`sync service maxPayloadBytes must be a positive integer, got ${maxPayload}`);
  }
  const log = options.logger?.child({ component: 'sync-service' }) ?? pino({ level: 'silent' });
  const store = new SyncStore<string>();

  const server = http.createServer((request, response) => {
    if (request.method === 'GET' && request.url === syncStatusPath) {
      const status: SyncStatus = { states: store.stateCounts() };
      response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      response.end(JSON.stringify(status));
      return;
    }
    response.writeHead(426, { 'content-type': 'text/plain; charset=utf-8', upgrade: 'websocket' });
    response.end('this is the testground sync service; connect with a WebSocket client to ws://HOST:PORT\n');
  });
  // noServer keeps ws from re-emitting the HTTP server's errors, which would crash without a listener.
  const wss = new WebSocketServer({ noServer: true, maxPayload, perMessageDeflate: false });
  let closing: Promise<void> | undefined;

  server.on('upgrade', (request, socket, head) => {
    if (closing !== undefined) {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      const peer = `${request.socket.remoteAddress}:${request.socket.remotePort}`;
      new SyncConnection(ws, store, log.child({ peer }));
      log.debug({ peer, path: request.url }, 'sync connection opened');
    });
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void => {
      reject(
        new Error(
          `could not start the sync service on ${host}:${port}: ${error.message}; choose another host or port, or stop whatever is using it`,
          { cause: error },
        ),
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (error) => log.error({ err: error }, 'sync service server failed'));

  const address = server.address() as AddressInfo;
  log.info({ host: address.address, port: address.port }, 'sync service listening');

  const shutdown = async (): Promise<void> => {
    const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
    const clients = [...wss.clients];
    const allClosed = Promise.all(
      clients.map((ws) => new Promise<void>((resolve) => ws.once('close', () => resolve()))),
    );
    for (const ws of clients) ws.close(1001, 'sync service shutting down');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      allClosed,
      new Promise<void>((resolve) => (timer = setTimeout(resolve, closeGraceMs))),
    ]);
    clearTimeout(timer);
    for (const ws of wss.clients) ws.terminate();
    server.closeAllConnections();
    await serverClosed;
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    log.info('sync service closed');
  };

  return {
    host: address.address,
    port: address.port,
    close: () => (closing ??= shutdown()),
  };
}

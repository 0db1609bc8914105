import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { FlushScheduler } from './flush-scheduler.ts';
import { FrameSocket } from './frame-socket.ts';
import {
  acceptUpgrade,
  findHeadEnd,
  httpResponse,
  isUpgradeRequest,
  maxHeadBytes,
  parseHttpHead,
} from './http-head.ts';
import { SharedFrames } from './shared-frames.ts';
import { SyncConnection } from './sync-connection.ts';
import { silentLogger, type SyncLogger } from './sync-logger.ts';
import { SyncRequestReader } from './sync-request-reader.ts';
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
  logger?: SyncLogger;
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
/** A connection that has not finished its request head by then is cut, so idle sockets cannot pile up. */
const handshakeTimeoutMs = 30_000;
const handshakeSweepMs = 5_000;

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
  const log = (options.logger ?? silentLogger).child({ component: 'sync-service' });
  const store = new SyncStore<string>();
  const frames = new SharedFrames();
  const reader = new SyncRequestReader();
  const flusher = new FlushScheduler();
  /**
   * Sockets still reading their request head or answering plain HTTP, with when they connected; upgraded
   * ones move to `connections`. One sweep cuts the slow ones, rather than a timer per connection.
   */
  const sockets = new Map<net.Socket, number>();
  const sweeper = setInterval(() => {
    const tooOld = performance.now() - handshakeTimeoutMs;
    for (const [socket, connectedAt] of sockets) if (connectedAt < tooOld) socket.destroy();
  }, handshakeSweepMs);
  sweeper.unref();
  const connections = new Set<FrameSocket>();
  let closing: Promise<void> | undefined;

  const answerHttp = (socket: net.Socket, method: string, target: string): void => {
    if (method === 'GET' && target === syncStatusPath) {
      const status: SyncStatus = { states: store.stateCounts() };
      socket.end(
        httpResponse(200, 'OK', 'application/json', JSON.stringify(status), { 'Cache-Control': 'no-store' }),
      );
      return;
    }
    socket.end(
      httpResponse(
        426,
        'Upgrade Required',
        'text/plain; charset=utf-8',
        'this is the testground sync service; connect with a WebSocket client to ws://HOST:PORT\n',
        { Upgrade: 'websocket' },
      ),
    );
  };

  const onHead = (socket: net.Socket, headBytes: Buffer, rest: Buffer): void => {
    const head = parseHttpHead(headBytes);
    if (head === undefined) {
      socket.end(httpResponse(400, 'Bad Request', 'text/plain; charset=utf-8', 'not an HTTP/1.1 request\n'));
      return;
    }
    if (!isUpgradeRequest(head)) {
      answerHttp(socket, head.method, head.target);
      return;
    }
    const accepted = acceptUpgrade(head);
    if (!accepted.ok) {
      socket.end(httpResponse(400, 'Bad Request', 'text/plain; charset=utf-8', `${accepted.reason}\n`));
      return;
    }
    if (closing !== undefined) {
      socket.destroy();
      return;
    }
    sockets.delete(socket);
    socket.write(accepted.response);
    const frameSocket = new FrameSocket(socket, maxPayload, flusher);
    connections.add(frameSocket);
    socket.once('close', () => connections.delete(frameSocket));
    frameSocket.start(new SyncConnection(frameSocket, store, reader, frames, log), rest);
    if (log.isLevelEnabled('debug'))
      log.debug({ peer: frameSocket.peer, path: head.target }, 'sync connection opened');
  };

  // Reads the request head off the socket; everything after it belongs to the WebSocket.
  const server = net.createServer({ noDelay: true }, (socket) => {
    if (closing !== undefined) {
      socket.destroy();
      return;
    }
    sockets.set(socket, performance.now());
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', (error) => log.debug({ err: error }, 'sync connection failed'));
    let buffered: Buffer | undefined;
    const onData = (chunk: Buffer): void => {
      const scannedBytes = buffered?.length ?? 0;
      buffered = buffered === undefined ? chunk : Buffer.concat([buffered, chunk]);
      const end = findHeadEnd(buffered, scannedBytes);
      if (end < 0) {
        if (buffered.length > maxHeadBytes) {
          socket.removeListener('data', onData);
          socket.end(
            httpResponse(
              431,
              'Request Header Fields Too Large',
              'text/plain; charset=utf-8',
              `request head over ${maxHeadBytes} bytes\n`,
            ),
          );
        }
        return;
      }
      socket.removeListener('data', onData);
      onHead(socket, buffered.subarray(0, end), buffered.subarray(end));
    };
    socket.on('data', onData);
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
    // Sockets still in their handshake (or plain HTTP) have no close handshake to wait for.
    clearInterval(sweeper);
    for (const socket of sockets.keys()) socket.destroy();
    const open = [...connections];
    const allClosed = Promise.all(open.map((connection) => connection.closed));
    for (const connection of open) connection.close(1001, 'sync service shutting down');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      allClosed,
      new Promise<void>((resolve) => (timer = setTimeout(resolve, closeGraceMs))),
    ]);
    clearTimeout(timer);
    for (const connection of connections) connection.terminate();
    await serverClosed;
    log.info('sync service closed');
  };

  return {
    host: address.address,
    port: address.port,
    close: () => (closing ??= shutdown()),
  };
}

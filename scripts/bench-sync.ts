/**
 * Sync service benchmark (not a test): signal_entry throughput next to a bare `ws` echo floor, and barrier
 * release latency for 1000 waiters. Each server runs in a child process of this script, as the service
 * does for real instances, so the clients' event loop does not stall the server's and the reverse;
 * everything talks over 127.0.0.1. Read throughput as a ratio to the floor: absolute figures depend on
 * the machine.
 *
 * Run alone: `node --import tsx scripts/bench-sync.ts`.
 */
import { fork } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { WebSocket, WebSocketServer } from 'ws';
import { startSyncService } from '../sync/sync-service.ts';

const throughputClients = 100;
const throughputWarmupMs = 300;
const throughputRounds = 5;
const throughputRoundMs = 500;
const barrierWaiters = 1_000;
const barrierRounds = 3;
/** Connecting in batches stays under the listen backlog, which would otherwise drop SYNs and stall. */
const connectBatch = 100;

/** One connection whose replies are read in arrival order; frames that arrive unasked wait in a queue. */
class BenchSocket {
  readonly ws: WebSocket;
  private readonly frames: string[] = [];
  private onFrame: ((text: string) => void) | undefined;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data) => {
      const text = (data as Buffer).toString('utf8');
      const onFrame = this.onFrame;
      this.onFrame = undefined;
      if (onFrame === undefined) this.frames.push(text);
      else onFrame(text);
    });
  }

  static async open(port: number): Promise<BenchSocket> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new BenchSocket(ws);
  }

  /** Sends a frame and resolves with the next frame received. */
  roundTrip(frame: string): Promise<string> {
    const reply = this.nextFrame();
    this.ws.send(frame);
    return reply;
  }

  /** Resolves with the next frame received, without sending anything. */
  nextFrame(): Promise<string> {
    const queued = this.frames.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve) => (this.onFrame = resolve));
  }

  close(): void {
    this.ws.terminate();
  }
}

async function openMany(port: number, count: number): Promise<BenchSocket[]> {
  const sockets: BenchSocket[] = [];
  for (let start = 0; start < count; start += connectBatch) {
    const batch = Math.min(connectBatch, count - start);
    sockets.push(...(await Promise.all(Array.from({ length: batch }, () => BenchSocket.open(port)))));
  }
  return sockets;
}

/** Every client does sequential round trips until the deadline; returns round trips per second. */
async function sequentialRoundTrips(
  sockets: BenchSocket[],
  frameFor: (client: number) => string,
  durationMs: number,
): Promise<number> {
  const started = performance.now();
  const deadline = started + durationMs;
  const counts = await Promise.all(
    sockets.map(async (socket, client) => {
      const frame = frameFor(client);
      let count = 0;
      while (performance.now() < deadline) {
        await socket.roundTrip(frame);
        count += 1;
      }
      return count;
    }),
  );
  const elapsedS = (performance.now() - started) / 1_000;
  return counts.reduce((sum, count) => sum + count, 0) / elapsedS;
}

/**
 * Floors: `echo` sends every frame straight back; `fanout` is the least a barrier needs: it parks
 * barrier frames, answers and counts signal frames, and answers every parked frame once the count
 * reaches its target, with no validation, namespacing or bookkeeping beyond that.
 */
async function startFloorServer(kind: 'echo' | 'fanout'): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer();
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  const counts = new Map<string, number>();
  const parked = new Map<string, { ws: WebSocket; target: number; frame: string }[]>();
  wss.on('connection', (ws) =>
    ws.on('message', (data) => {
      const text = (data as Buffer).toString('utf8');
      if (kind === 'echo') {
        ws.send(text);
        return;
      }
      const request = JSON.parse(text) as {
        barrier?: { state: string; target: number };
        signal_entry?: { state: string };
      };
      if (request.barrier !== undefined) {
        const { state, target } = request.barrier;
        const list = parked.get(state) ?? [];
        list.push({ ws, target, frame: text });
        parked.set(state, list);
        return;
      }
      const state = request.signal_entry?.state ?? '';
      const count = (counts.get(state) ?? 0) + 1;
      counts.set(state, count);
      ws.send(text);
      const stillWaiting = [];
      for (const waiter of parked.get(state) ?? []) {
        if (waiter.target <= count) waiter.ws.send(waiter.frame);
        else stillWaiting.push(waiter);
      }
      parked.set(state, stillWaiting);
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

type ServerKind = 'sync' | 'echo' | 'fanout';

/** Child process side: serves until the parent disconnects. */
async function serve(kind: ServerKind): Promise<void> {
  const server = kind === 'sync' ? await startSyncService() : await startFloorServer(kind);
  process.once('disconnect', () => void server.close().then(() => process.exit(0)));
  process.send?.({ port: server.port });
}

/** Starts a server in a child process running this file. */
async function startServerProcess(kind: ServerKind): Promise<{ port: number; stop(): Promise<void> }> {
  // Only the TypeScript loader, not whatever flags started this process (e.g. --input-type with -e).
  const child = fork(fileURLToPath(import.meta.url), ['--serve', kind], {
    execArgv: ['--import', import.meta.resolve('tsx')],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (message) => resolve((message as { port: number }).port));
    child.once('exit', (code) =>
      reject(new Error(`the ${kind} bench server exited with code ${code} before listening`)),
    );
  });
  return {
    port,
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.disconnect();
      await exited;
    },
  };
}

/**
 * Alternates short echo and sync rounds and keeps each side's median, so load from other processes on
 * the machine hits both sides alike instead of skewing whichever ran during it.
 */
async function measureThroughput(): Promise<{ syncOps: number; echoOps: number }> {
  const signalFrame = (client: number): string =>
    JSON.stringify({
      id: '1',
      signal_entry: { state: `run:bench:plan:bench:case:bench:states:s${client % 10}` },
    });
  const echo = await startServerProcess('echo');
  const sync = await startServerProcess('sync');
  try {
    const echoSockets = await openMany(echo.port, throughputClients);
    const syncSockets = await openMany(sync.port, throughputClients);
    await sequentialRoundTrips(echoSockets, signalFrame, throughputWarmupMs);
    await sequentialRoundTrips(syncSockets, signalFrame, throughputWarmupMs);
    const echoRounds: number[] = [];
    const syncRounds: number[] = [];
    for (let round = 0; round < throughputRounds; round += 1) {
      echoRounds.push(await sequentialRoundTrips(echoSockets, signalFrame, throughputRoundMs));
      syncRounds.push(await sequentialRoundTrips(syncSockets, signalFrame, throughputRoundMs));
    }
    for (const socket of [...echoSockets, ...syncSockets]) socket.close();
    return { syncOps: median(syncRounds), echoOps: median(echoRounds) };
  } finally {
    await Promise.all([echo.stop(), sync.stop()]);
  }
}

/**
 * Every waiter registers `barrier(target = waiters)` and then signals, like signalAndWait; the last
 * signal's reply is t0, and each waiter's latency is its barrier reply's arrival minus t0.
 */
async function measureBarrierRelease(
  kind: 'sync' | 'fanout',
): Promise<{ latenciesMs: number[]; sendToLastMs: number }> {
  const service = await startServerProcess(kind);
  try {
    const waiters = await openMany(service.port, barrierWaiters);
    const latenciesMs: number[] = [];
    const sendToLastMs: number[] = [];
    for (let round = 0; round < barrierRounds; round += 1) {
      const result = await releaseOnce(
        kind,
        waiters,
        `run:bench:plan:bench:case:bench:states:release-${round}`,
      );
      latenciesMs.push(...result.latenciesMs);
      sendToLastMs.push(result.sendToLastMs);
    }
    for (const waiter of waiters) waiter.close();
    return { latenciesMs: latenciesMs.sort((a, b) => a - b), sendToLastMs: median(sendToLastMs) };
  } finally {
    await service.stop();
  }
}

async function releaseOnce(
  kind: 'sync' | 'fanout',
  waiters: BenchSocket[],
  state: string,
): Promise<{ latenciesMs: number[]; sendToLastMs: number }> {
  const last = waiters[waiters.length - 1] as BenchSocket;
  const barrierFrame = JSON.stringify({ id: 'b', barrier: { state, target: waiters.length } });
  const signalFrame = JSON.stringify({ id: 's', signal_entry: { state } });

  // The barrier goes first on each connection, so the signal's reply proves the barrier is registered.
  for (const waiter of waiters.slice(0, -1)) waiter.ws.send(barrierFrame);
  await Promise.all(waiters.slice(0, -1).map((waiter) => waiter.roundTrip(signalFrame)));

  const arrivals = new Array<number>(waiters.length).fill(0);
  const released = Promise.all(
    waiters.slice(0, -1).map(async (waiter, index) => {
      await waiter.nextFrame();
      arrivals[index] = performance.now();
    }),
  );
  // The last waiter's connection gets the signal reply first, then its own barrier reply.
  last.ws.send(barrierFrame);
  const sentAt = performance.now();
  const signalReply = await last.roundTrip(signalFrame);
  const t0 = performance.now();
  const seq = (JSON.parse(signalReply) as { signal_entry?: { seq: number } }).signal_entry?.seq;
  if (kind === 'sync' && seq !== waiters.length) {
    throw new Error(`expected the last signal to get seq ${waiters.length}, got ${seq}`);
  }
  await last.nextFrame();
  arrivals[waiters.length - 1] = performance.now();
  await released;
  return {
    latenciesMs: arrivals.map((arrival) => arrival - t0),
    sendToLastMs: Math.max(...arrivals) - sentAt,
  };
}

function median(values: number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

function percentile(sorted: number[], p: number): number {
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

/** Runs both sync benchmarks and returns printable figures keyed by what they measure. */
export async function runSyncBench(): Promise<Record<string, number | string>> {
  const { syncOps, echoOps } = await measureThroughput();
  const sync = await measureBarrierRelease('sync');
  const floor = await measureBarrierRelease('fanout');
  const ms = (value: number): string => `${value.toFixed(1)} ms`;
  const clients = `${throughputClients} clients`;
  const waiters = `${barrierWaiters} waiters`;
  return {
    [`sync signal_entry, ${clients} sequential`]: `${syncOps.toFixed(0)} ops/s`,
    [`floor: ws echo round trip, ${clients} sequential`]: `${echoOps.toFixed(0)} ops/s`,
    'sync signal_entry / echo floor': `${(syncOps / echoOps).toFixed(2)}x`,
    [`barrier release, ${waiters}: p50 / p99 after the last signal reply`]: `${ms(percentile(sync.latenciesMs, 50))} / ${ms(percentile(sync.latenciesMs, 99))}`,
    [`floor: bare ws fan-out, ${waiters}: p50 / p99`]: `${ms(percentile(floor.latenciesMs, 50))} / ${ms(percentile(floor.latenciesMs, 99))}`,
    [`barrier release, ${waiters}: last signal sent → all released (median)`]: ms(sync.sendToLastMs),
    [`floor: bare ws fan-out, ${waiters}: last signal sent → all released (median)`]: ms(floor.sendToLastMs),
  };
}

const runDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (runDirectly && process.argv[2] === '--serve') {
  await serve(process.argv[3] === 'echo' ? 'echo' : 'sync');
} else if (runDirectly) {
  const results = await runSyncBench();
  const width = Math.max(...Object.keys(results).map((key) => key.length));
  for (const [key, value] of Object.entries(results)) console.log(`${key.padEnd(width)}  ${value}`);
}

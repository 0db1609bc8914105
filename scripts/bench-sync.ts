/**
 * Sync service benchmark (not a test): the service as the runners start it (the esbuild bundle of
 * `sync/service-entry.ts`, run by plain `node`) beside the same service as it was at commit db97d7a
 * ("before"), extracted with `git archive` into `.testground/bench-sync/` and bundled the same way. Both run in rounds that
 * alternate which goes first, so load from elsewhere on the machine hits both alike; each figure is the
 * median of its rounds and is printed as a new/before ratio.
 *
 * Server cost is CPU per operation (utime + stime of the server process from /proc/<pid>/stat), which is
 * steadier than throughput on a shared machine. The load comes from two generator processes speaking
 * WebSocket over raw TCP with pre-encoded frames, and their own CPU is printed beside the server's, so a
 * reader can tell whether the generator was the bottleneck.
 *
 * Run alone: `node --import tsx scripts/bench-sync.ts` (or `npm run bench -- sync`).
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build as esbuild } from 'esbuild';
import { processCpuMs } from './process-cpu.ts';
import { nodeBundleOptions } from '../builders/node-bundle.ts';
import { parseSyncServiceListening } from '../core/contract/well-known.ts';
import { encodeMaskedFrame } from '../core/contract/ws-frame-writer.ts';
import { opText } from '../core/contract/ws-opcodes.ts';

const repoRoot = path.resolve(import.meta.dirname, '..');
/** "Today's version" the issue compares against; kept runnable here, not in the tree. */
const baselineCommit = 'db97d7a';
// Inside the repo so esbuild finds node_modules; `.testground/` is already ignored by git, eslint and tsc.
const benchDir = path.join(repoRoot, '.testground', 'bench-sync');

const rounds = Number(process.env.BENCH_SYNC_ROUNDS ?? 3);
const generatorCount = 2;
const connections = 1_000;
const signalClients = 100;
const signalWarmupMs = 300;
const signalMeasureMs = 1_500;
const fanoutItems = Number(process.env.BENCH_SYNC_FANOUT_ITEMS ?? 100);
/** Publishes in flight at once: enough to saturate the service, as a busy topic does. */
const fanoutWindow = 10;
const idleSettleMs = 1_000;

// ---------------------------------------------------------------------------------------------------
// Load generator (runs in child processes): raw TCP, hand-made frames, no `ws`, so it stays cheap.
// ---------------------------------------------------------------------------------------------------

/** A text frame as a client sends it (masked), encoded the way the SDK encodes it. */
function maskedFrame(text: string): Buffer {
  return encodeMaskedFrame(opText, Buffer.from(text));
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes of this machine. */
function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** One client connection; hands each received frame's payload to `onFrame`. */
class LoadSocket {
  onFrame: (payload: Buffer) => void = () => {};
  private readonly socket: net.Socket;
  private buffered: Buffer | undefined;

  private constructor(socket: net.Socket) {
    this.socket = socket;
  }

  static open(port: number): Promise<LoadSocket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
      const client = new LoadSocket(socket);
      let head = '';
      socket.once('error', reject);
      socket.once('connect', () =>
        socket.write(
          'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
        ),
      );
      const onHead = (chunk: Buffer): void => {
        head += chunk.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onHead);
        if (!head.startsWith('HTTP/1.1 101')) {
          reject(new Error(`handshake refused: ${head.slice(0, 80)}`));
          return;
        }
        socket.on('data', (data: Buffer) => client.read(data));
        const rest = Buffer.from(head.slice(end + 4), 'latin1');
        if (rest.length > 0) client.read(rest);
        resolve(client);
      };
      socket.on('data', onHead);
    });
  }

  send(frame: Buffer): void {
    this.socket.write(frame);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) resolve();
      else {
        this.socket.once('close', () => resolve());
        this.socket.destroy();
      }
    });
  }

  private read(chunk: Buffer): void {
    let data = this.buffered === undefined ? chunk : Buffer.concat([this.buffered, chunk]);
    for (;;) {
      if (data.length < 2) break;
      const length7 = (data[1] as number) & 0x7f;
      const header = length7 < 126 ? 2 : length7 === 126 ? 4 : 10;
      if (data.length < header) break;
      const length =
        length7 < 126 ? length7 : length7 === 126 ? data.readUInt16BE(2) : Number(data.readBigUInt64BE(2));
      if (data.length < header + length) break;
      const opcode = (data[0] as number) & 0x0f;
      if (opcode === 0x1 || opcode === 0x2) this.onFrame(data.subarray(header, header + length));
      data = data.subarray(header + length);
    }
    this.buffered = data.length > 0 ? data : undefined;
  }
}

type GeneratorCommand =
  | { op: 'open'; port: number; count: number }
  | { op: 'close' }
  | { op: 'roundTrips'; clients: number; state: string; durationMs: number }
  | { op: 'barrierArm'; state: string; target: number; holdBack: boolean }
  | { op: 'barrierFire'; state: string }
  | { op: 'barrierCollect' }
  | { op: 'subscribe'; topic: string }
  | { op: 'publish'; port: number; topic: string; count: number; window: number }
  | { op: 'collect'; count: number };

/** The generator process: holds its share of connections and runs what the parent asks. */
async function runGenerator(): Promise<void> {
  let sockets: LoadSocket[] = [];
  let barrierArrivals: Promise<number[]> | undefined;
  let deliveries:
    { done: Promise<void>; latencies: number[]; last: number; expect: number; got: number[] } | undefined;
  let onDeliveriesChanged: (() => void) | undefined;

  const handlers = {
    open: async ({ port, count }: { port: number; count: number }) => {
      const started = nowMs();
      for (let i = 0; i < count; i += 100) {
        const batch = Math.min(100, count - i);
        sockets.push(...(await Promise.all(Array.from({ length: batch }, () => LoadSocket.open(port)))));
      }
      return { ms: nowMs() - started };
    },
    close: async () => {
      await Promise.all(sockets.map((socket) => socket.close()));
      sockets = [];
      return {};
    },
    roundTrips: async ({
      clients,
      state,
      durationMs,
    }: {
      clients: number;
      state: string;
      durationMs: number;
    }) => {
      const frame = maskedFrame(JSON.stringify({ id: '1', signal_entry: { state } }));
      const latencies: number[] = [];
      const deadline = performance.now() + durationMs;
      let ops = 0;
      await Promise.all(
        sockets.slice(0, clients).map(
          (socket) =>
            new Promise<void>((resolve) => {
              let sentAt = 0;
              const next = (): void => {
                const now = performance.now();
                if (sentAt !== 0) {
                  latencies.push(now - sentAt);
                  ops += 1;
                }
                if (now >= deadline) {
                  socket.onFrame = () => {};
                  resolve();
                  return;
                }
                sentAt = now;
                socket.send(frame);
              };
              socket.onFrame = next;
              next();
            }),
        ),
      );
      return { ops, latencies: roundedSample(latencies) };
    },
    barrierArm: async ({ state, target, holdBack }: { state: string; target: number; holdBack: boolean }) => {
      const barrier = maskedFrame(JSON.stringify({ id: 'b', barrier: { state, target } }));
      const signal = maskedFrame(JSON.stringify({ id: 's', signal_entry: { state } }));
      const arrivals: Promise<number>[] = [];
      const signalled: Promise<void>[] = [];
      sockets.forEach((socket, index) => {
        const frames: ('s' | 'b')[] = [];
        let onSignalReply: () => void = () => {};
        let onRelease: (at: number) => void = () => {};
        signalled.push(new Promise((resolve) => (onSignalReply = resolve)));
        arrivals.push(new Promise((resolve) => (onRelease = resolve)));
        socket.onFrame = (payload) => {
          const at = nowMs();
          // Replies carry their id third byte in: {"id":"s"... or {"id":"b"...
          const kind = payload[7] === 0x73 ? 's' : 'b';
          frames.push(kind);
          if (kind === 's') onSignalReply();
          else onRelease(at);
        };
        socket.send(barrier);
        if (holdBack && index === 0) onSignalReply();
        else socket.send(signal);
      });
      await Promise.all(signalled);
      barrierArrivals = Promise.all(arrivals);
      return {};
    },
    barrierFire: async ({ state }: { state: string }) => {
      const sentAt = nowMs();
      (sockets[0] as LoadSocket).send(maskedFrame(JSON.stringify({ id: 's', signal_entry: { state } })));
      return { sentAt };
    },
    barrierCollect: async () => ({ arrivals: await barrierArrivals }),
    subscribe: async ({ topic }: { topic: string }) => {
      const frame = maskedFrame(JSON.stringify({ id: '1', subscribe: { topic } }));
      const latencies: number[] = [];
      const got = sockets.map(() => 0);
      deliveries = { done: Promise.resolve(), latencies, last: 0, expect: Number.POSITIVE_INFINITY, got };
      const state = deliveries;
      sockets.forEach((socket, index) => {
        socket.onFrame = (payload) => {
          const at = nowMs();
          state.last = at;
          got[index] = (got[index] as number) + 1;
          // Sample one subscriber in ten for latency: reading the timestamp costs the generator CPU.
          if (index % 10 === 0) {
            const text = payload.toString('latin1');
            const start = text.indexOf('\\"t\\":') + 6;
            latencies.push(at - Number(text.slice(start, text.indexOf('}', start))));
          }
          if (got[index] === state.expect) onDeliveriesChanged?.();
        };
        socket.send(frame);
      });
      return {};
    },
    publish: async ({
      port,
      topic,
      count,
      window,
    }: {
      port: number;
      topic: string;
      count: number;
      window: number;
    }) => {
      const publisher = await LoadSocket.open(port);
      const startedAt = nowMs();
      await new Promise<void>((resolve) => {
        let sent = 0;
        let answered = 0;
        const sendOne = (): void => {
          sent += 1;
          publisher.send(
            maskedFrame(
              `{"id":"p${sent}","publish":{"topic":${JSON.stringify(topic)},"payload":{"t":${nowMs()}}}}`,
            ),
          );
        };
        publisher.onFrame = () => {
          answered += 1;
          if (answered === count) resolve();
          else if (sent < count) sendOne();
        };
        for (let i = 0; i < Math.min(window, count); i += 1) sendOne();
      });
      await publisher.close();
      return { startedAt };
    },
    collect: async ({ count }: { count: number }) => {
      const state = deliveries;
      if (state === undefined) throw new Error('collect before subscribe');
      state.expect = count;
      await new Promise<void>((resolve) => {
        const check = (): void => {
          if (state.got.every((got) => got >= count)) resolve();
        };
        onDeliveriesChanged = check;
        check();
      });
      return { last: state.last, latencies: roundedSample(state.latencies) };
    },
  } satisfies Record<GeneratorCommand['op'], (command: never) => Promise<object>>;

  process.on('message', (message: { seq: number; command: GeneratorCommand }) => {
    const handler = handlers[message.command.op] as (command: GeneratorCommand) => Promise<object>;
    handler(message.command).then(
      (result) => process.send?.({ seq: message.seq, result }),
      (error: Error) => process.send?.({ seq: message.seq, error: error.message }),
    );
  });
  process.once('disconnect', () => process.exit(0));
  process.send?.({ seq: 0, result: {} });
}

function roundedSample(values: number[]): number[] {
  return values.map((value) => Math.round(value * 1_000) / 1_000);
}

// ---------------------------------------------------------------------------------------------------
// Parent side: bundles, servers, generators, measurements.
// ---------------------------------------------------------------------------------------------------

/** A generator process and its request/reply channel. */
class Generator {
  readonly child: ChildProcess;
  private seq = 0;
  private readonly waiting = new Map<
    number,
    { resolve: (value: unknown) => void; reject: (error: Error) => void }
  >();

  private constructor(child: ChildProcess) {
    this.child = child;
    child.on('message', (message: { seq: number; result?: unknown; error?: string }) => {
      const waiter = this.waiting.get(message.seq);
      this.waiting.delete(message.seq);
      if (message.error !== undefined) waiter?.reject(new Error(`load generator: ${message.error}`));
      else waiter?.resolve(message.result);
    });
  }

  static async start(): Promise<Generator> {
    const child = fork(fileURLToPath(import.meta.url), ['--generator'], {
      execArgv: ['--import', import.meta.resolve('tsx')],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const generator = new Generator(child);
    await new Promise<void>((resolve, reject) => {
      generator.waiting.set(0, { resolve: () => resolve(), reject });
      child.once('exit', (code) => reject(new Error(`load generator exited with code ${code}`)));
    });
    return generator;
  }

  call<T>(command: GeneratorCommand): Promise<T> {
    this.seq += 1;
    const seq = this.seq;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(seq, { resolve: resolve as (value: unknown) => void, reject });
      this.child.send({ seq, command });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.disconnect();
    await exited;
  }
}

interface Memory {
  rssMiB: number;
  privateDirtyMiB: number;
  pssAnonMiB: number;
}

function memory(pid: number): Memory {
  const kib = (text: string, field: string): number =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  return {
    rssMiB: kib(status, 'VmRSS') / 1024,
    privateDirtyMiB: kib(rollup, 'Private_Dirty') / 1024,
    pssAnonMiB: kib(rollup, 'Pss_Anon') / 1024,
  };
}

interface ServerProcess {
  pid: number;
  port: number;
  stop(): Promise<void>;
}

/**
 * The least a WebSocket handshake costs in Node: a bare `net` server that waits for the request head and
 * writes a fixed 101 (no parsing, no key check, no state). Prints the service's "listening" line.
 */
const handshakeFloorScript = `
const server = require('node:net').createServer({ noDelay: true }, (socket) => {
  socket.on('error', () => {});
  let head = '';
  socket.on('data', (chunk) => {
    if (head === undefined) return;
    head += chunk.toString('latin1');
    if (!head.includes('\\r\\n\\r\\n')) return;
    head = undefined;
    socket.write('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\\r\\n\\r\\n');
  });
});
server.listen(0, '127.0.0.1', () => console.log('sync service listening on ws://127.0.0.1:' + server.address().port));
`;

/** Starts `node <args>` (a bundle, as the runners start it) and waits for its "listening" line. */
async function startServer(...args: string[]): Promise<ServerProcess> {
  const bundle = args.join(' ').slice(0, 60);
  const child = spawn(process.execPath, args, {
    env: {
      PATH: process.env.PATH ?? '',
      LOG_LEVEL: 'warn',
      SYNC_SERVICE_HOST: '127.0.0.1',
      SYNC_SERVICE_PORT: '0',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const listening = parseSyncServiceListening(stdout.slice(0, stdout.lastIndexOf('\n') + 1));
      if (listening !== undefined) resolve(listening.port);
    });
    child.once('exit', (code) => reject(new Error(`${bundle} exited with code ${code} before listening`)));
  });
  child.removeAllListeners('exit');
  return {
    pid: child.pid as number,
    port,
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** A bare `node` process doing nothing: the floor for idle memory. */
async function startIdleNode(): Promise<{ pid: number; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], { stdio: 'ignore' });
  return {
    pid: child.pid as number,
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
  };
}

async function bundle(sourceRoot: string, outfile: string): Promise<string> {
  await esbuild({
    ...nodeBundleOptions,
    entryPoints: [path.join(sourceRoot, 'sync/service-entry.ts')],
    outfile,
    write: true,
  });
  return outfile;
}

/** The service of this tree and the one at {@link baselineCommit}, bundled as the runners bundle them. */
async function prepareBundles(): Promise<{ before: string; now: string }> {
  const source = path.join(benchDir, `source-${baselineCommit}`);
  if (!existsSync(path.join(source, 'sync', 'service-entry.ts'))) {
    mkdirSync(source, { recursive: true });
    const archive = execFileSync('git', ['-C', repoRoot, 'archive', baselineCommit, 'sync', 'core/contract']);
    execFileSync('tar', ['-x', '-C', source], { input: archive });
  }
  return {
    before: await bundle(source, path.join(benchDir, `service-${baselineCommit}.mjs`)),
    now: await bundle(repoRoot, path.join(benchDir, 'service-now.mjs')),
  };
}

interface RoundFigures {
  idle: Memory;
  handshakeCpuMs: number;
  handshakesPerS: number;
  floorHandshakeCpuMs: number;
  signalCpuMs: number;
  signalOpsPerS: number;
  signalLatencies: number[];
  signalGeneratorCpuMs: number;
  barrierLatencies: number[];
  fanoutPerS: number;
  fanoutCpuUs: number;
  fanoutLatencies: number[];
  fanoutGeneratorCpuUs: number;
}

/** Server CPU per handshake when the generators open their connections, which stay open. */
async function openAll(
  server: ServerProcess,
  generators: Generator[],
): Promise<{ cpuMs: number; perS: number }> {
  const cpu = processCpuMs(server.pid);
  const opened = await Promise.all(
    generators.map((g) =>
      g.call<{ ms: number }>({ op: 'open', port: server.port, count: connections / generators.length }),
    ),
  );
  return {
    cpuMs: (processCpuMs(server.pid) - cpu) / connections,
    perS: connections / (Math.max(...opened.map((o) => o.ms)) / 1_000),
  };
}

async function measureHandshakeFloor(generators: Generator[]): Promise<number> {
  const server = await startServer('-e', handshakeFloorScript);
  try {
    await new Promise((resolve) => setTimeout(resolve, idleSettleMs));
    const { cpuMs: perHandshake } = await openAll(server, generators);
    await Promise.all(generators.map((g) => g.call({ op: 'close' })));
    return perHandshake;
  } finally {
    await server.stop();
  }
}

async function measureRound(
  bundlePath: string,
  generators: Generator[],
  round: number,
  floorHandshakeCpuMs: number,
): Promise<RoundFigures> {
  const server = await startServer(bundlePath);
  const generatorCpu = (): number =>
    generators.reduce((sum, g) => sum + processCpuMs(g.child.pid as number), 0);
  try {
    await new Promise((resolve) => setTimeout(resolve, idleSettleMs));
    const idle = memory(server.pid);

    const { cpuMs: handshakeCpuMs, perS: handshakesPerS } = await openAll(server, generators);

    const state = `run:bench:plan:bench:case:bench:states:signal-${round}`;
    const perGenerator = signalClients / generators.length;
    await Promise.all(
      generators.map((g) =>
        g.call({ op: 'roundTrips', clients: perGenerator, state, durationMs: signalWarmupMs }),
      ),
    );
    let cpu = processCpuMs(server.pid);
    let generatorCpuStart = generatorCpu();
    const trips = await Promise.all(
      generators.map((g) =>
        g.call<{ ops: number; latencies: number[] }>({
          op: 'roundTrips',
          clients: perGenerator,
          state,
          durationMs: signalMeasureMs,
        }),
      ),
    );
    const signalOps = trips.reduce((sum, t) => sum + t.ops, 0);
    const signalCpuMs = (processCpuMs(server.pid) - cpu) / signalOps;
    const signalGeneratorCpuMs = (generatorCpu() - generatorCpuStart) / signalOps;

    const barrierState = `run:bench:plan:bench:case:bench:states:barrier-${round}`;
    await Promise.all(
      generators.map((g, index) =>
        g.call({ op: 'barrierArm', state: barrierState, target: connections, holdBack: index === 0 }),
      ),
    );
    const collecting = Promise.all(
      generators.map((g) => g.call<{ arrivals: number[] }>({ op: 'barrierCollect' })),
    );
    const { sentAt } = await (generators[0] as Generator).call<{ sentAt: number }>({
      op: 'barrierFire',
      state: barrierState,
    });
    const barrierLatencies = (await collecting).flatMap((c) => c.arrivals.map((at) => at - sentAt));

    const topic = `run:bench:plan:bench:case:bench:topics:fanout-${round}`;
    await Promise.all(generators.map((g) => g.call({ op: 'subscribe', topic })));
    cpu = processCpuMs(server.pid);
    generatorCpuStart = generatorCpu();
    const collected = Promise.all(
      generators.map((g) =>
        g.call<{ last: number; latencies: number[] }>({ op: 'collect', count: fanoutItems }),
      ),
    );
    const { startedAt } = await (generators[0] as Generator).call<{ startedAt: number }>({
      op: 'publish',
      port: server.port,
      topic,
      count: fanoutItems,
      window: fanoutWindow,
    });
    const results = await collected;
    const deliveries = connections * fanoutItems;
    const fanoutCpuUs = ((processCpuMs(server.pid) - cpu) * 1_000) / deliveries;
    const fanoutGeneratorCpuUs = ((generatorCpu() - generatorCpuStart) * 1_000) / deliveries;
    const fanoutPerS = deliveries / ((Math.max(...results.map((r) => r.last)) - startedAt) / 1_000);

    await Promise.all(generators.map((g) => g.call({ op: 'close' })));
    return {
      idle,
      handshakeCpuMs,
      handshakesPerS,
      floorHandshakeCpuMs,
      signalCpuMs,
      signalOpsPerS: signalOps / (signalMeasureMs / 1_000),
      signalLatencies: trips.flatMap((t) => t.latencies),
      signalGeneratorCpuMs,
      barrierLatencies,
      fanoutPerS,
      fanoutCpuUs,
      fanoutLatencies: results.flatMap((r) => r.latencies),
      fanoutGeneratorCpuUs,
    };
  } finally {
    await server.stop();
  }
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

/** The p99 of each round's latencies, then the median of those: one slow round does not decide it. */
function p99OfRounds(figures: RoundFigures[], pick: (round: RoundFigures) => number[]): number {
  return median(
    figures.map((round) =>
      percentile(
        [...pick(round)].sort((a, b) => a - b),
        99,
      ),
    ),
  );
}

/** Runs the sync benchmark and returns printable figures keyed by what they measure. */
export async function runSyncBench(): Promise<Record<string, number | string>> {
  const bundles = await prepareBundles();
  const generators = await Promise.all(Array.from({ length: generatorCount }, () => Generator.start()));
  const before: RoundFigures[] = [];
  const now: RoundFigures[] = [];
  let bareIdle: Memory;
  try {
    const bare = await startIdleNode();
    await new Promise((resolve) => setTimeout(resolve, idleSettleMs));
    bareIdle = memory(bare.pid);
    await bare.stop();
    for (let round = 0; round < rounds; round += 1) {
      const order = round % 2 === 0 ? (['before', 'now'] as const) : (['now', 'before'] as const);
      const floorHandshakeCpuMs = await measureHandshakeFloor(generators);
      for (const which of order) {
        const bundlePath = which === 'now' ? bundles.now : bundles.before;
        const figures = await measureRound(bundlePath, generators, round, floorHandshakeCpuMs);
        (which === 'now' ? now : before).push(figures);
      }
    }
  } finally {
    await Promise.all(generators.map((g) => g.stop()));
  }

  const med = (figures: RoundFigures[], pick: (round: RoundFigures) => number): number =>
    median(figures.map(pick));
  const ratio = (pick: (round: RoundFigures) => number): string =>
    `${(med(now, pick) / med(before, pick)).toFixed(2)}x`;
  const pair = (pick: (round: RoundFigures) => number, digits: number, unit: string): string =>
    `${med(now, pick).toFixed(digits)} ${unit} (before: ${med(before, pick).toFixed(digits)})`;
  const p99Pair = (pick: (round: RoundFigures) => number[]): string =>
    `${p99OfRounds(now, pick).toFixed(1)} ms (before: ${p99OfRounds(before, pick).toFixed(1)} ms)`;
  const mem = (value: Memory): string =>
    `RSS ${value.rssMiB.toFixed(1)} MiB, private ${value.privateDirtyMiB.toFixed(1)} MiB (Pss_Anon ${value.pssAnonMiB.toFixed(1)})`;
  const idleOf = (figures: RoundFigures[]): Memory => ({
    rssMiB: med(figures, (r) => r.idle.rssMiB),
    privateDirtyMiB: med(figures, (r) => r.idle.privateDirtyMiB),
    pssAnonMiB: med(figures, (r) => r.idle.pssAnonMiB),
  });
  const c = `${signalClients} clients`;
  return {
    [`sync service: new vs ${baselineCommit}, medians of ${rounds} alternating rounds, ${generatorCount} load generator processes`]:
      '',
    [`  signal_entry, ${c}: server CPU per op`]: pair((r) => r.signalCpuMs * 1_000, 1, 'µs'),
    '  signal_entry server CPU per op, new/before (target ≤ 0.6)': ratio((r) => r.signalCpuMs),
    [`  signal_entry, ${c}: throughput`]: pair((r) => r.signalOpsPerS, 0, 'ops/s'),
    '  signal_entry: load generator CPU per op (new run)': `${(med(now, (r) => r.signalGeneratorCpuMs) * 1_000).toFixed(1)} µs`,
    [`  signal_entry, ${c}: p99 round trip`]: p99Pair((r) => r.signalLatencies),
    [`  handshake, ${connections} connections: server CPU per handshake (target ≤ 0.30 ms)`]: pair(
      (r) => r.handshakeCpuMs,
      3,
      'ms',
    ),
    '  handshake floor: bare net server writing a fixed 101': `${med(now, (r) => r.floorHandshakeCpuMs).toFixed(3)} ms`,
    '  handshakes per second': pair((r) => r.handshakesPerS, 0, '/s'),
    [`  barrier release, ${connections} waiters: p99 after the last signal was sent`]: p99Pair(
      (r) => r.barrierLatencies,
    ),
    [`  fan-out, ${fanoutItems} items to ${connections} subscribers: deliveries/s`]: pair(
      (r) => r.fanoutPerS,
      0,
      '/s',
    ),
    '  fan-out deliveries/s, new/before (target ≥ 1.2)': ratio((r) => r.fanoutPerS),
    '  fan-out: server CPU per delivery': pair((r) => r.fanoutCpuUs, 2, 'µs'),
    '  fan-out: load generator CPU per delivery (new run)': `${med(now, (r) => r.fanoutGeneratorCpuUs).toFixed(2)} µs`,
    '  fan-out: p99 publish sent → delivered': p99Pair((r) => r.fanoutLatencies),
    '  idle memory, new (target RSS ≤ 20 MiB)': mem(idleOf(now)),
    [`  idle memory, ${baselineCommit}`]: mem(idleOf(before)),
    '  idle memory, floor: bare `node -e setInterval`': mem(bareIdle),
  };
}

const runDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (runDirectly && process.argv[2] === '--generator') {
  await runGenerator();
} else if (runDirectly) {
  const results = await runSyncBench();
  const width = Math.max(...Object.keys(results).map((key) => key.length));
  for (const [key, value] of Object.entries(results)) console.log(`${key.padEnd(width)}  ${value}`);
}

// Real traffic between instances, measured: TCP throughput, UDP round trips, UDP datagram counts, TCP
// connection attempts. Node's own sockets only, so the plan needs no tool in its image.
import dgram from 'node:dgram';
import net from 'node:net';

/** Where a peer listens on the data network. */
export interface Endpoint {
  host: string;
  port: number;
}

export interface Throughput {
  bytes: number;
  seconds: number;
  bitsPerSecond: number;
}

/**
 * Listens for one TCP connection on `host` and measures what arrives: the bytes after the first
 * `warmupMs` (TCP slow start and the shaper's initial burst are not the steady rate), over the time from
 * then to the last byte.
 */
export async function throughputReceiver(
  host: string,
  warmupMs: number,
): Promise<{ endpoint: Endpoint; result: Promise<Throughput>; close: () => void }> {
  const server = net.createServer();
  let settle: { resolve: (value: Throughput) => void; reject: (error: Error) => void } | undefined;
  const result = new Promise<Throughput>((resolve, reject) => (settle = { resolve, reject }));
  server.once('connection', (socket) => {
    let first: number | undefined;
    let mark: { at: number; bytes: number } | undefined;
    let last = 0;
    let bytes = 0;
    socket.on('data', (chunk: Buffer) => {
      const now = performance.now();
      first ??= now;
      if (mark === undefined && now - first >= warmupMs) mark = { at: now, bytes };
      bytes += chunk.length;
      last = now;
    });
    socket.on('error', (error) => settle?.reject(error));
    socket.on('end', () => {
      if (mark === undefined || last <= mark.at) {
        settle?.reject(new Error(`the sender stopped within the ${warmupMs} ms warm-up; nothing to measure`));
        return;
      }
      const seconds = (last - mark.at) / 1000;
      const counted = bytes - mark.bytes;
      settle?.resolve({ bytes: counted, seconds, bitsPerSecond: Math.round((counted * 8) / seconds) });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as net.AddressInfo;
  return { endpoint: { host, port }, result, close: () => server.close() };
}

/** Sends as fast as the link takes for `durationMs`, then closes; resolves with the bytes written. */
export async function sendFor(endpoint: Endpoint, durationMs: number): Promise<number> {
  const socket = net.connect(endpoint.port, endpoint.host);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const chunk = Buffer.alloc(64 * 1024, 7);
  const deadline = performance.now() + durationMs;
  let written = 0;
  while (performance.now() < deadline) {
    written += chunk.length;
    if (!socket.write(chunk)) await new Promise((resolve) => socket.once('drain', resolve));
  }
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.end(resolve);
  });
  return written;
}

/** A UDP socket on `host` that sends each datagram back where it came from. */
export async function udpEcho(host: string): Promise<{ endpoint: Endpoint; close: () => void }> {
  const socket = dgram.createSocket('udp4');
  socket.on('message', (message, from) => socket.send(message, from.port, from.address));
  await new Promise<void>((resolve) => socket.bind(0, host, resolve));
  return { endpoint: { host, port: socket.address().port }, close: () => socket.close() };
}

export interface RoundTrips {
  sent: number;
  /** Round-trip times of the answered pings, in milliseconds, in the order sent. */
  rttMs: number[];
}

/** Sends `count` pings every `intervalMs` and times each answer; waits `graceMs` after the last for stragglers. */
export async function ping(
  endpoint: Endpoint,
  count: number,
  intervalMs: number,
  graceMs: number,
): Promise<RoundTrips> {
  const socket = dgram.createSocket('udp4');
  socket.on('error', () => undefined);
  const sentAt = new Map<number, number>();
  const rtt = new Map<number, number>();
  socket.on('message', (message) => {
    const seq = message.readUInt32BE(0);
    const at = sentAt.get(seq);
    if (at !== undefined && !rtt.has(seq)) rtt.set(seq, performance.now() - at);
  });
  await new Promise<void>((resolve) => socket.bind(0, resolve));
  for (let seq = 0; seq < count; seq += 1) {
    const message = Buffer.alloc(64);
    message.writeUInt32BE(seq, 0);
    sentAt.set(seq, performance.now());
    socket.send(message, endpoint.port, endpoint.host);
    await sleep(intervalMs);
  }
  await sleep(graceMs);
  socket.close();
  const rttMs = [...rtt.entries()].sort(([a], [b]) => a - b).map(([, ms]) => ms);
  return { sent: count, rttMs };
}

/** Counts datagrams by the tag they carry (`phase:seq`), each seq once. */
export async function udpCounter(host: string): Promise<{
  endpoint: Endpoint;
  received: (tag: string) => number;
  close: () => void;
}> {
  const socket = dgram.createSocket('udp4');
  const seen = new Map<string, Set<string>>();
  socket.on('message', (message) => {
    const [tag = '', seq = ''] = message.toString().split(':');
    let set = seen.get(tag);
    if (set === undefined) seen.set(tag, (set = new Set()));
    set.add(seq);
  });
  await new Promise<void>((resolve) => socket.bind(0, host, resolve));
  return {
    endpoint: { host, port: socket.address().port },
    received: (tag) => seen.get(tag)?.size ?? 0,
    close: () => socket.close(),
  };
}

/** Sends `count` datagrams tagged `tag`, `perBurst` at a time every millisecond or so (paced, so no socket buffer overflows). */
export async function sendDatagrams(
  endpoint: Endpoint,
  tag: string,
  count: number,
  perBurst = 10,
): Promise<void> {
  const socket = dgram.createSocket('udp4');
  // A datagram the local firewall drops fails its send (EPERM): counted as not arrived, like any other.
  socket.on('error', () => undefined);
  for (let seq = 0; seq < count; seq += 1) {
    const message = Buffer.from(`${tag}:${seq}:`.padEnd(100, '.'));
    await new Promise<void>((resolve) => socket.send(message, endpoint.port, endpoint.host, () => resolve()));
    if (seq % perBurst === perBurst - 1) await sleep(1);
  }
  socket.close();
}

export interface ConnectAttempt {
  /** `connected`, `refused`, `timeout`, or another error code. */
  result: string;
  elapsedMs: number;
}

/** Tries one TCP connection; never throws. */
export function tryConnect(endpoint: Endpoint, timeoutMs: number): Promise<ConnectAttempt> {
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = net.connect(endpoint.port, endpoint.host);
    const done = (result: string): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ result, elapsedMs: Math.round((performance.now() - started) * 10) / 10 });
    };
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    socket.once('connect', () => done('connected'));
    socket.once('error', (error: NodeJS.ErrnoException) =>
      done(error.code === 'ECONNREFUSED' ? 'refused' : (error.code ?? error.message)),
    );
  });
}

/** A TCP server that accepts connections and closes them: something to connect to. */
export async function tcpAcceptor(host: string): Promise<{ endpoint: Endpoint; close: () => void }> {
  const server = net.createServer((socket) => socket.end());
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    endpoint: { host, port: (server.address() as net.AddressInfo).port },
    close: () => server.close(),
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The value at fraction `q` (0–1) of sorted `values`, interpolated. */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const position = (sorted.length - 1) * q;
  const below = Math.floor(position);
  const lower = sorted[below] ?? Number.NaN;
  const upper = sorted[Math.min(below + 1, sorted.length - 1)] ?? lower;
  return lower + (upper - lower) * (position - below);
}

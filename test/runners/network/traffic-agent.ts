/**
 * Runs inside one network namespace (started with `ip netns exec <ns> node --import tsx traffic-agent.ts`)
 * and sends and receives real packets on the test's behalf. Requests are JSON lines on stdin
 * (`{ id, cmd, ... }`), answers JSON lines on stdout (`{ id, ok, result | error }`).
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { createInterface } from 'node:readline';

type Request = { id: number; cmd: string } & Record<string, unknown>;

const udpServers = new Map<number, dgram.Socket>();
const tcpServers = new Map<number, net.Server>();
/** Per sink port: the arrival samples of the last connection, [ms since its first byte, total bytes]. */
const sinkSamples = new Map<number, [number, number][]>();

const commands: Record<string, (request: Request) => Promise<unknown>> = {
  async udpEcho({ port }) {
    const socket = dgram.createSocket('udp4');
    socket.on('message', (message, from) => socket.send(message, from.port, from.address));
    await new Promise<void>((resolve) => socket.bind(Number(port), resolve));
    udpServers.set(Number(port), socket);
    return {};
  },

  /** Sends `count` numbered datagrams, `perTick` every `intervalMs`; RTTs in ms of those echoed back. */
  async udpPing({ host, port, count, intervalMs, perTick = 1, waitMs = 1_500, size = 64 }) {
    const socket = dgram.createSocket('udp4');
    const sentAt = new Map<number, bigint>();
    const rtts: number[] = [];
    let sendErrors = 0;
    socket.on('message', (message) => {
      const seq = message.readUInt32BE(0);
      const start = sentAt.get(seq);
      if (start === undefined) return;
      sentAt.delete(seq);
      rtts.push(Number(process.hrtime.bigint() - start) / 1e6);
    });
    socket.on('error', () => sendErrors++);
    await new Promise<void>((resolve) => socket.bind(0, resolve));
    const total = Number(count);
    let sent = 0;
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        for (let i = 0; i < Number(perTick) && sent < total; i++) {
          const buffer = Buffer.alloc(Number(size));
          buffer.writeUInt32BE(sent, 0);
          sentAt.set(sent, process.hrtime.bigint());
          socket.send(buffer, Number(port), String(host), (error) => {
            if (error) sendErrors++;
          });
          sent++;
        }
        if (sent < total) setTimeout(tick, Number(intervalMs));
        else resolve();
      };
      tick();
    });
    await new Promise((resolve) => setTimeout(resolve, Number(waitMs)));
    socket.close();
    return { sent, received: rtts.length, rtts, sendErrors };
  },

  async tcpSink({ port }) {
    const server = net.createServer((socket) => {
      const samples: [number, number][] = [];
      sinkSamples.set(Number(port), samples);
      let first: bigint | undefined;
      let total = 0;
      socket.on('data', (chunk) => {
        const now = process.hrtime.bigint();
        first ??= now;
        total += chunk.length;
        samples.push([Number(now - first) / 1e6, total]);
      });
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(Number(port), '0.0.0.0', resolve));
    tcpServers.set(Number(port), server);
    return {};
  },

  /** Mbit/s received by the sink's last connection between `fromMs` and `toMs` after its first byte. */
  async tcpSinkRate({ port, fromMs, toMs }) {
    const samples = sinkSamples.get(Number(port)) ?? [];
    const bytesAt = (ms: number): number => {
      let bytes = 0;
      for (const [at, total] of samples) {
        if (at > ms) break;
        bytes = total;
      }
      return bytes;
    };
    const bytes = bytesAt(Number(toMs)) - bytesAt(Number(fromMs));
    return { mbps: (bytes * 8) / ((Number(toMs) - Number(fromMs)) / 1000) / 1e6, samples: samples.length };
  },

  /** Writes as fast as the connection takes it for `durationMs`. */
  async tcpStream({ host, port, durationMs }) {
    const socket = net.connect(Number(port), String(host));
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const chunk = Buffer.alloc(64 * 1024, 7);
    const end = Date.now() + Number(durationMs);
    while (Date.now() < end) {
      if (!socket.write(chunk)) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.max(0, end - Date.now()));
          socket.once('drain', () => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    }
    socket.destroy();
    return {};
  },

  /** How a TCP connect ends: connected, refused, timeout, or the error code; and how long it took. */
  async tcpConnect({ host, port, timeoutMs }) {
    const start = process.hrtime.bigint();
    const outcome = await new Promise<string>((resolve) => {
      const socket = net.connect(Number(port), String(host));
      const timer = setTimeout(() => {
        socket.destroy();
        resolve('timeout');
      }, Number(timeoutMs));
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.destroy();
        resolve('connected');
      });
      socket.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        resolve(error.code === 'ECONNREFUSED' ? 'refused' : (error.code ?? error.message));
      });
    });
    return { outcome, ms: Number(process.hrtime.bigint() - start) / 1e6 };
  },
};

createInterface({ input: process.stdin }).on('line', (line) => {
  const request = JSON.parse(line) as Request;
  const command = commands[request.cmd];
  if (!command) {
    process.stdout.write(
      `${JSON.stringify({ id: request.id, ok: false, error: `unknown ${request.cmd}` })}\n`,
    );
    return;
  }
  command(request).then(
    (result) => process.stdout.write(`${JSON.stringify({ id: request.id, ok: true, result })}\n`),
    (error: Error) =>
      process.stdout.write(`${JSON.stringify({ id: request.id, ok: false, error: error.message })}\n`),
  );
});
process.stdin.on('end', () => process.exit(0));
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);

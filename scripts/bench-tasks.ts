/**
 * `npm run bench -- tasks`: how many `GET /tasks` a daemon answers per second with 1,000 tasks stored and
 * 50 clients asking at once, next to a floor measured in the same run with the same clients: a bare HTTP
 * server answering the same bytes (what Node's HTTP alone costs on this machine).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { ResolvedRun, RunResult } from '../core/run.ts';
import { TaskStore } from '../daemon/task-store.ts';
import type { Composition } from '../plan/composition.ts';
import type { DaemonProcess } from '../test/helpers/processes.ts';
import { processCpuMs } from './process-cpu.ts';

const storedTasks = Number(process.env.BENCH_TASKS ?? 1_000);
const clients = Number(process.env.BENCH_TASK_CLIENTS ?? 50);
const durationMs = Number(process.env.BENCH_TASKS_DURATION_MS ?? 5_000);

type Figures = Record<string, string | number>;

/** Tasks shaped like real ones: a composition, a resolved run, and for ended ones a result of 20 instances. */
export async function seed(store: TaskStore, count: number): Promise<void> {
  const run: ResolvedRun = {
    id: 'default',
    plan: 'example',
    testCase: 'sync',
    builder: 'exec:node',
    runner: 'local:exec',
    totalInstances: 20,
    runConfig: {},
    timeoutMs: 600_000,
    disableMetrics: false,
    groups: [
      {
        id: 'single',
        instances: 20,
        builder: 'exec:node',
        buildConfig: {},
        resources: {},
        testParams: { sleep_scale: '0' },
        dependencies: [],
      },
    ],
  };
  const result: RunResult = {
    outcome: 'success',
    reason: '20/20 instances succeeded',
    groups: { single: { total: 20, ok: 20, outcomes: { success: 20 } } },
    instances: Array.from({ length: 20 }, (_, index) => ({
      group: 'single',
      index,
      outcome: 'success' as const,
      reason: 'the instance reported success',
      exitCode: 0,
      durationMs: 1234,
    })) as unknown as RunResult['instances'],
  };
  for (let index = 0; index < count; index += 1) {
    const id = `bench${index.toString().padStart(6, '0')}`;
    await store.create({
      id,
      plan: 'example',
      testCase: 'sync',
      builder: 'exec:node',
      runner: 'local:exec',
      instances: 20,
      createdBy: 'bench',
      composition: {
        metadata: { name: 'bench' },
        global: {
          plan: 'example',
          case: 'sync',
          builder: 'exec:node',
          runner: 'local:exec',
          total_instances: 20,
        },
        groups: [{ id: 'single', instances: { count: 20 }, run: { test_params: { sleep_scale: '0' } } }],
      } as unknown as Composition,
      resolved: {
        plan: 'example',
        testCase: 'sync',
        builder: 'exec:node',
        runner: 'local:exec',
        runs: [run],
      },
      runs: [{ id, name: 'default', instances: 20, outputsDir: `/outputs/local:exec/example/${id}` }],
      planDir: `/home/tasks/${id}`,
    });
    // Most tasks of a shared daemon have ended.
    if (index % 10 !== 0) {
      await store.transition(id, ['queued'], 'building');
      await store.transition(id, ['building'], 'running');
      await store.transition(id, ['running'], 'complete', {
        outcome: 'success',
        runs: [
          {
            id,
            name: 'default',
            instances: 20,
            outputsDir: `/outputs/local:exec/example/${id}`,
            state: 'complete',
            outcome: 'success',
            result,
          },
        ],
      });
    }
  }
}

/** `clients` keep-alive clients asking `url` back to back for `durationMs`: requests per second and latencies. */
async function load(url: string): Promise<{ perSecond: number; p50: number; p99: number; bytes: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const latencies: number[] = [];
  let bytes = 0;
  const get = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const started = performance.now();
      http
        .get(url, { agent }, (response) => {
          let size = 0;
          response.on('data', (chunk: Buffer) => (size += chunk.length));
          response.on('end', () => {
            if (response.statusCode !== 200) reject(new Error(`GET ${url}: ${response.statusCode}`));
            latencies.push(performance.now() - started);
            bytes = size;
            resolve();
          });
        })
        .on('error', reject);
    });
  // Warm up the connections and the server's caches before counting.
  await Promise.all(Array.from({ length: clients }, get));
  latencies.length = 0;
  const started = performance.now();
  const deadline = started + durationMs;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < deadline) await get();
    }),
  );
  const elapsedMs = performance.now() - started;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (q: number): number =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
  return { perSecond: (latencies.length / elapsedMs) * 1000, p50: at(0.5), p99: at(0.99), bytes };
}

// The floor's server: a process of its own, as the daemon is, answering the bytes it reads from stdin.
const bareServerSource = `
const http = require('node:http');
const chunks = [];
process.stdin.on('data', (chunk) => chunks.push(chunk));
process.stdin.on('end', () => {
  const body = Buffer.concat(chunks);
  const server = http.createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length });
    response.end(body);
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(String(server.address().port) + '\\n'));
});`;

/** A bare HTTP server answering `body` as the daemon does (JSON), in a process of its own, for the floor. */
async function bareServer(body: Buffer): Promise<{ url: string; pid: number; close: () => Promise<void> }> {
  const child = spawn(process.execPath, ['-e', bareServerSource], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdin.end(body);
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  const port = Number(line.toString().trim());
  return {
    url: `http://127.0.0.1:${port}/api/v1/tasks`,
    pid: child.pid!,
    close: async () => {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** {@link load}, with the CPU time the server's process spent per request. */
async function loadMeasuringServer(
  url: string,
  pid: number,
): Promise<Awaited<ReturnType<typeof load>> & { cpuPerRequestMs: number }> {
  const before = processCpuMs(pid);
  const measured = await load(url);
  // The warm-up's requests (one per client) count too: their CPU is in the difference.
  const requests = (measured.perSecond * durationMs) / 1000 + clients;
  return { ...measured, cpuPerRequestMs: (processCpuMs(pid) - before) / requests };
}

export async function tasksBench(daemon: DaemonProcess): Promise<Figures> {
  // The daemon's embedded Redis, and its default prefix: the tasks are written as submission would.
  const redis = new Redis({ path: path.join(daemon.home, 'redis', 'redis.sock') });
  try {
    await seed(new TaskStore(redis, process.env.TESTGROUND_REDIS_PREFIX ?? 'tg'), storedTasks);
  } finally {
    redis.disconnect();
  }
  const url = `${daemon.url}/api/v1/tasks`;
  const sample = Buffer.from(await (await fetch(url)).arrayBuffer());
  const listed = JSON.parse(sample.toString()) as { tasks: unknown[]; next_cursor: string | null };
  if (listed.tasks.length !== 50 || listed.next_cursor === null)
    throw new Error(`GET /tasks listed ${listed.tasks.length} tasks; expected a page of 50 and a cursor`);
  const bigStarted = performance.now();
  const big = await fetch(`${url}?limit=1000`);
  const bigBytes = (await big.arrayBuffer()).byteLength;
  const bigMs = performance.now() - bigStarted;

  const daemonPid = daemon.child.pid;
  if (daemonPid === undefined) throw new Error('the daemon process has no pid');
  const measured = await loadMeasuringServer(url, daemonPid);
  const bare = await bareServer(sample);
  let floor: Awaited<ReturnType<typeof loadMeasuringServer>>;
  try {
    floor = await loadMeasuringServer(bare.url, bare.pid);
  } finally {
    await bare.close();
  }
  return {
    [`GET /tasks (page of 50, ${measured.bytes} bytes), ${storedTasks} tasks stored, ${clients} clients`]: `${measured.perSecond.toFixed(0)} requests/s (p50 ${measured.p50.toFixed(1)} ms, p99 ${measured.p99.toFixed(1)} ms; daemon CPU ${measured.cpuPerRequestMs.toFixed(2)} ms/request)`,
    [`  floor: a bare HTTP server (a process of its own) answering the same bytes`]: `${floor.perSecond.toFixed(0)} requests/s (p50 ${floor.p50.toFixed(1)} ms, p99 ${floor.p99.toFixed(1)} ms; CPU ${floor.cpuPerRequestMs.toFixed(2)} ms/request)`,
    '  ratio to the floor': `${(measured.perSecond / floor.perSecond).toFixed(2)}`,
    [`GET /tasks?limit=1000 (${bigBytes} bytes), alone`]: `${bigMs.toFixed(0)} ms`,
  };
}

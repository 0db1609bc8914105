/**
 * Benchmarks, not tests: each figure is printed next to a floor measured on the same machine in the same
 * run, so it reads as a ratio rather than an absolute number that depends on the machine.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildBench } from './bench-build.ts';
import { dashboardBench } from './bench-dashboard.ts';
import { dockerBench, dockerStormBench } from './bench-docker.ts';
import { networkBench } from './bench-network.ts';
import { runSyncBench } from './bench-sync.ts';
import { tasksBench } from './bench-tasks.ts';
import { swarmBench } from './bench-swarm.ts';
import { runCli, startDaemonProcess, type DaemonProcess } from '../test/helpers/processes.ts';

const execInstances = Number(process.env.BENCH_INSTANCES ?? 100);
const networkInstances = Number(process.env.BENCH_NETWORK_INSTANCES ?? 100);

type Figures = Record<string, string | number>;

async function timedRun(daemon: DaemonProcess, args: string[]): Promise<number> {
  const started = performance.now();
  const result = await runCli(['--endpoint', daemon.url, 'run', 'single', ...args, '--wait']);
  if (result.code !== 0)
    throw new Error(`benchmark run ${args.join(' ')} failed:\n${result.stdout}\n${result.stderr}`);
  return performance.now() - started;
}

async function spawnFloor(count: number): Promise<number> {
  const started = performance.now();
  await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise((resolve) =>
          spawn(process.execPath, ['-e', ''], { stdio: 'ignore' }).once('close', resolve),
        ),
    ),
  );
  return performance.now() - started;
}

async function execBench(daemon: DaemonProcess): Promise<Figures> {
  const walkthrough = [
    '--plan',
    'example',
    '--testcase',
    'sync',
    '--builder',
    'exec:node',
    '--runner',
    'local:exec',
    // The seed's sleeps (up to 10 s) would measure the plan, not the launch.
    '--test-param',
    'sleep_scale=0',
  ];
  await timedRun(daemon, [...walkthrough, '--instances', '2']); // builds and caches the bundle
  const runMs = await timedRun(daemon, [...walkthrough, '--instances', String(execInstances)]);
  const floorMs = await spawnFloor(execInstances);
  return {
    [`local:exec walkthrough, ${execInstances} instances (CLI submit → exit)`]: `${runMs.toFixed(0)} ms`,
    [`  floor: spawn ${execInstances} bare node processes`]: `${floorMs.toFixed(0)} ms`,
    '  ratio': `${(runMs / floorMs).toFixed(2)}x`,
  };
}

// `npm run bench -- network docker`: only those parts; all of them by default.
const parts: Record<string, () => Promise<Figures>> = {
  sync: () => runSyncBench(),
  exec: () => execBench(daemon),
  docker: () => dockerBench(daemon, Number(process.env.BENCH_DOCKER_INSTANCES ?? 50)),
  'docker-storm': () => dockerStormBench(daemon),
  network: () => networkBench(daemon, networkInstances),
  tasks: () => tasksBench(daemon),
  dashboard: () => dashboardBench(daemon),
  swarm: () => swarmBench(),
  build: () => buildBench(daemon),
};
const chosen = process.argv.slice(2).length > 0 ? process.argv.slice(2) : Object.keys(parts);
const unknown = chosen.filter((part) => !(part in parts));
if (unknown.length > 0) {
  throw new Error(`unknown benchmark ${unknown.join(', ')}; choose among ${Object.keys(parts).join(', ')}`);
}
const home = await mkdtemp(path.join(os.tmpdir(), 'tg-bench-'));
const daemon = await startDaemonProcess({ home });
let results: Figures = {};
try {
  for (const part of chosen) results = { ...results, ...(await parts[part]?.()) };
} finally {
  await daemon.stop();
  await rm(home, { recursive: true, force: true });
}
const width = Math.max(...Object.keys(results).map((key) => key.length));
console.log(
  `\nmachine: ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`,
);
for (const [key, value] of Object.entries(results)) console.log(`${key.padEnd(width)}  ${value}`);

/**
 * Benchmarks, not tests: each figure is printed next to a floor measured on the same machine in the same
 * run, so it reads as a ratio rather than an absolute number that depends on the machine.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildBench } from './bench-build.ts';
import { execBench, execStormBench } from './bench-exec.ts';
import { dashboardBench } from './bench-dashboard.ts';
import { dockerBench, dockerStormBench } from './bench-docker.ts';
import { networkBench } from './bench-network.ts';
import { runSyncBench } from './bench-sync.ts';
import { tasksBench } from './bench-tasks.ts';
import { swarmBench } from './bench-swarm.ts';
import { startDaemonProcess } from '../test/helpers/processes.ts';

const networkInstances = Number(process.env.BENCH_NETWORK_INSTANCES ?? 100);

type Figures = Record<string, string | number>;

// `npm run bench -- network docker`: only those parts; all of them by default.
const parts: Record<string, () => Promise<Figures>> = {
  sync: () => runSyncBench(),
  exec: () => execBench(daemon, Number(process.env.BENCH_INSTANCES ?? 100)),
  storm: () =>
    execStormBench(daemon, (process.env.BENCH_STORM_INSTANCES ?? '100,1000').split(',').map(Number)),
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
console.log(
  `\nmachine: ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`,
);
// Each part's figures as soon as it ends, so a long run shows progress, and a part that fails costs only
// its own figures: it is said, the next part runs, and the command exits 1 at the end.
const failed: string[] = [];
try {
  for (const part of chosen) {
    try {
      printFigures((await parts[part]?.()) ?? {});
    } catch (error) {
      failed.push(part);
      console.error(
        `bench part ${part} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
      );
    }
  }
} finally {
  await daemon.stop();
  await rm(home, { recursive: true, force: true });
}
if (failed.length > 0) {
  console.error(`failed: ${failed.join(', ')}`);
  process.exitCode = 1;
}

function printFigures(figures: Figures): void {
  const width = Math.max(0, ...Object.keys(figures).map((key) => key.length));
  for (const [key, value] of Object.entries(figures)) console.log(`${key.padEnd(width)}  ${value}`);
}

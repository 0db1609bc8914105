/**
 * Benchmarks, not tests: each figure is printed next to a floor measured on the same machine in the same
 * run, so it reads as a ratio rather than an absolute number that depends on the machine.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DockerEngine } from '../docker/docker-engine.ts';
import { labelFilter, planLabel } from '../docker/labels.ts';
import { concurrencyLimit } from '../core/concurrency-limit.ts';
import { buildBench } from './bench-build.ts';
import { execBench, execStormBench } from './bench-exec.ts';
import { dashboardBench } from './bench-dashboard.ts';
import { networkBench } from './bench-network.ts';
import { runSyncBench } from './bench-sync.ts';
import { tasksBench } from './bench-tasks.ts';
import { swarmBench } from './bench-swarm.ts';
import { runCli, startDaemonProcess, type DaemonProcess } from '../test/helpers/processes.ts';

const dockerInstances = Number(process.env.BENCH_DOCKER_INSTANCES ?? 50);
const networkInstances = Number(process.env.BENCH_NETWORK_INSTANCES ?? 100);

type Figures = Record<string, string | number>;

async function timedRun(daemon: DaemonProcess, args: string[]): Promise<number> {
  const started = performance.now();
  const result = await runCli(['--endpoint', daemon.url, 'run', 'single', ...args, '--wait']);
  if (result.code !== 0)
    throw new Error(`benchmark run ${args.join(' ')} failed:\n${result.stdout}\n${result.stderr}`);
  return performance.now() - started;
}

/** The same containers the run starts (the placebo `ok` image), started and awaited directly. */
async function dockerFloor(engine: DockerEngine, count: number): Promise<number> {
  const image = (await engine.listImages(labelFilter({ [planLabel]: 'placebo' })))[0]?.id;
  if (!image) throw new Error('no placebo image: the docker benchmark run should have built one');
  const limit = concurrencyLimit(16);
  const label = { 'testground.bench': 'floor' };
  const env = {
    TEST_PLAN: 'placebo',
    TEST_CASE: 'ok',
    TEST_RUN: 'benchfloor',
    TEST_INSTANCE_COUNT: String(count),
    TEST_GROUP_ID: 'single',
    TEST_GROUP_INSTANCE_COUNT: String(count),
    TEST_OUTPUTS_PATH: '/tmp',
    TEST_TEMP_PATH: '/tmp',
    TEST_SIDECAR: 'false',
    TEST_SUBNET: '127.1.0.0/16',
    TEST_START_TIME: new Date().toISOString(),
  };
  const started = performance.now();
  await Promise.all(
    Array.from({ length: count }, async (_, index) => {
      const id = await limit(async () => {
        const created = await engine.createContainer({
          name: `tg-bench-floor-${index}-${Date.now()}`,
          image,
          env,
          labels: label,
          network: { name: 'bridge' },
        });
        await engine.startContainer(created);
        return created;
      });
      const exit = await engine.waitContainer(id);
      if (exit.exitCode !== 0) throw new Error(`floor container ${index} exited with ${exit.exitCode}`);
      await engine.removeContainer(id, { force: true });
    }),
  );
  return performance.now() - started;
}

async function dockerBench(daemon: DaemonProcess): Promise<Figures> {
  const engine = new DockerEngine();
  await engine.ping();
  const trivial = [
    '--plan',
    'placebo',
    '--testcase',
    'ok',
    '--builder',
    'docker:node',
    '--runner',
    'local:docker',
  ];
  await timedRun(daemon, [...trivial, '--instances', '2']); // builds the images
  const runMs = await timedRun(daemon, [...trivial, '--instances', String(dockerInstances)]);
  const floorMs = await dockerFloor(engine, dockerInstances);
  return {
    [`local:docker, ${dockerInstances} instances of placebo ok (CLI submit → exit)`]: `${runMs.toFixed(0)} ms`,
    [`  floor: create, start and wait for the same ${dockerInstances} containers directly`]: `${floorMs.toFixed(0)} ms`,
    '  ratio ': `${(runMs / floorMs).toFixed(2)}x`,
  };
}

// `npm run bench -- network docker`: only those parts; all of them by default.
const parts: Record<string, () => Promise<Figures>> = {
  sync: () => runSyncBench(),
  exec: () => execBench(daemon, Number(process.env.BENCH_INSTANCES ?? 100)),
  storm: () =>
    execStormBench(daemon, (process.env.BENCH_STORM_INSTANCES ?? '100,1000').split(',').map(Number)),
  docker: () => dockerBench(daemon),
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

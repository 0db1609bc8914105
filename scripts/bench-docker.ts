/**
 * `npm run bench -- docker`: N instances of placebo `ok` on local:docker, CLI submit → exit, beside two
 * floors measured in the same call with the same image and the same parallelism (16):
 * - the floor: the same N containers created, started, awaited and removed directly, on the engine's
 *   default bridge (no networks of the run's, no mounts, no output read): what any launcher pays;
 * - the model's floor: the same, on two user-defined networks as a run's instances are (a data network
 *   with a hostname and an alias, a control network connected before the start), with the run's two bind
 *   mounts and an attached output: what the engine takes for the containers local:docker asks for, with
 *   nothing of the daemon, the CLI, the sync service or the outcome's bookkeeping.
 * Beside each wall time, the engine's CPU (dockerd and containerd with the helpers they wait for, from
 * /proc/<pid>/stat) per container: steadier than wall time on a shared machine, and it says how much of a
 * ratio is the engine's own work.
 *
 * `npm run bench -- docker-storm`: the storm benchmark's phase table (scripts/bench-storm.ts) for the seed
 * plan on local:docker at 50 and 500 instances (BENCH_DOCKER_STORM), each beside the direct floor at its
 * count.
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { concurrencyLimit } from '../core/concurrency-limit.ts';
import { DockerEngine } from '../docker/docker-engine.ts';
import { daemonLabel, labelFilter, planLabel } from '../docker/labels.ts';
import { runCli, type DaemonProcess } from '../test/helpers/processes.ts';
import { removeNetworkThoroughly } from '../runners/network-removal.ts';
import { stormBench } from './bench-storm.ts';
import { processCpuMs } from './process-cpu.ts';

type Figures = Record<string, string>;

const parallelism = 16;
const benchDaemon = 'bench-docker-floor';

interface Measured {
  ms: number;
  /** dockerd + containerd CPU over the measurement, ms; undefined when the engine is not on this host. */
  engineCpuMs: number | undefined;
}

/** The engine's processes on this host, when it runs here (the pid files dockerd writes). */
async function enginePids(): Promise<number[]> {
  const pids: number[] = [];
  for (const file of ['/var/run/docker.pid', '/var/run/docker/containerd/containerd.pid']) {
    const text = await readFile(file, 'utf8').catch(() => '');
    const pid = Number.parseInt(text.trim(), 10);
    if (Number.isInteger(pid) && pid > 0) pids.push(pid);
  }
  return pids;
}

async function measure(work: () => Promise<void>): Promise<Measured> {
  const pids = await enginePids();
  const cpu = (): number | undefined => {
    if (pids.length === 0) return undefined;
    try {
      return pids.reduce((sum, pid) => sum + processCpuMs(pid, { children: true }), 0);
    } catch {
      return undefined; // an engine process went away meanwhile
    }
  };
  const cpuBefore = cpu();
  const started = performance.now();
  await work();
  const ms = performance.now() - started;
  const cpuAfter = cpu();
  return {
    ms,
    engineCpuMs: cpuBefore === undefined || cpuAfter === undefined ? undefined : cpuAfter - cpuBefore,
  };
}

/** `testground run single <args> --wait` against `daemon`; throws with the CLI's output unless it exits 0. */
export async function runToEnd(daemon: DaemonProcess, args: string[]): Promise<void> {
  const result = await runCli(['--endpoint', daemon.url, 'run', 'single', ...args, '--wait']);
  if (result.code !== 0)
    throw new Error(`benchmark run ${args.join(' ')} failed:\n${result.stdout}\n${result.stderr}`);
}

/** How the direct floors place their containers. */
interface FloorModel {
  /** The run's two user-defined networks, hostnames, mounts and attached output; else the default bridge only. */
  runNetworks: boolean;
}

/** The same containers the run starts (the placebo `ok` image), started and awaited directly. */
export async function dockerFloor(
  engine: DockerEngine,
  count: number,
  model: FloorModel = { runNetworks: false },
): Promise<void> {
  const image = (await engine.listImages(labelFilter({ [planLabel]: 'placebo' })))[0]?.id;
  if (!image) throw new Error('no placebo image: the docker benchmark run should have built one');
  const limit = concurrencyLimit(parallelism);
  const stamp = Date.now();
  const labels = { 'testground.bench': 'floor', [daemonLabel]: benchDaemon };
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
  const data = `tg-bench-floor-${stamp}`;
  const control = `${data}-control`;
  const scratch = path.join(os.tmpdir(), data);
  if (model.runNetworks) {
    // Outside the runner's pools (10.192.0.0/12 and its control pool), so a run elsewhere never collides.
    await engine.createNetwork({ name: data, subnet: '172.30.0.0/20', gateway: '172.30.0.1', labels });
    await engine.createNetwork({ name: control, subnet: '172.30.16.0/20', gateway: '172.30.16.1', labels });
  }
  try {
    await Promise.all(
      Array.from({ length: count }, async (_, index) => {
        const dirs = [
          path.join(scratch, 'outputs', String(index)),
          path.join(scratch, 'temp', String(index)),
        ];
        const { id, logs } = await limit(async () => {
          if (model.runNetworks) await Promise.all(dirs.map((dir) => mkdir(dir, { recursive: true })));
          const hostname = `single-${index}`;
          const created = await engine.createContainer({
            name: `${data}-${index}`,
            image,
            env,
            labels,
            ...(model.runNetworks
              ? {
                  hostname,
                  network: { name: data, aliases: [hostname] },
                  mounts: [
                    { source: dirs[0]!, target: '/outputs' },
                    { source: dirs[1]!, target: '/temp' },
                  ],
                }
              : { network: { name: 'bridge' } }),
          });
          let attached: Awaited<ReturnType<DockerEngine['attachLogs']>> | undefined;
          if (model.runNetworks) {
            await engine.connectNetwork(control, created);
            attached = await engine.attachLogs(created, {
              onStdout: () => undefined,
              onStderr: () => undefined,
            });
          }
          await engine.startContainer(created);
          return { id: created, logs: attached };
        });
        const exit = await engine.waitContainer(id);
        await logs?.ended;
        if (exit.exitCode !== 0) throw new Error(`floor container ${index} exited with ${exit.exitCode}`);
        await engine.removeContainer(id, { force: true });
      }),
    );
  } finally {
    const leftovers = await engine.listContainers(labelFilter({ [daemonLabel]: benchDaemon }), { all: true });
    await Promise.all(leftovers.map((container) => engine.removeContainer(container.id, { force: true })));
    if (model.runNetworks) {
      // As the runner removes a run's networks: Docker 20.10 may still count an endpoint of a removed
      // container. A network that stays is said; the figure measured before it stands.
      for (const network of [data, control]) {
        await removeNetworkThoroughly(engine, network).catch((error: Error) =>
          console.error(
            `bench: ${error.message} (a stale endpoint count of Docker 20.10; restarting dockerd clears it)`,
          ),
        );
      }
      await rm(scratch, { recursive: true, force: true });
    }
  }
}

function perContainer(measured: Measured, count: number): string {
  return measured.engineCpuMs === undefined
    ? 'engine CPU: not on this host'
    : `engine CPU ${(measured.engineCpuMs / count).toFixed(0)} ms/container`;
}

/** The trivial run the Docker benches start: placebo `ok`, built by docker:node, on `runner`. */
export function placeboOn(runner: string): string[] {
  return ['--plan', 'placebo', '--testcase', 'ok', '--builder', 'docker:node', '--runner', runner];
}

const placeboOnDocker = placeboOn('local:docker');

export async function dockerBench(daemon: DaemonProcess, instances: number): Promise<Figures> {
  const engine = new DockerEngine();
  await engine.ping();
  await runToEnd(daemon, [...placeboOnDocker, '--instances', '2']); // builds the images
  const run = await measure(() => runToEnd(daemon, [...placeboOnDocker, '--instances', String(instances)]));
  const floor = await measure(() => dockerFloor(engine, instances));
  const model = await measure(() => dockerFloor(engine, instances, { runNetworks: true }));
  const engineRatio = (a: Measured, b: Measured): string =>
    a.engineCpuMs === undefined || b.engineCpuMs === undefined
      ? ''
      : `; engine CPU ${(a.engineCpuMs / b.engineCpuMs).toFixed(2)}x`;
  return {
    [`local:docker, ${instances} instances of placebo ok (CLI submit → exit)`]: `${run.ms.toFixed(0)} ms (${perContainer(run, instances)})`,
    [`  floor: create, start and wait for the same ${instances} containers directly`]: `${floor.ms.toFixed(0)} ms (${perContainer(floor, instances)})`,
    '  ratio ': `${(run.ms / floor.ms).toFixed(2)}x${engineRatio(run, floor)}`,
    [`  model floor: the same, on two user-defined networks with the run's mounts and attach`]: `${model.ms.toFixed(0)} ms (${perContainer(model, instances)})`,
    '  ratio to the model floor': `${(run.ms / model.ms).toFixed(2)}x${engineRatio(run, model)}`,
  };
}

/**
 * The seed plan's walkthrough (sleeps at 0) on local:docker at each count of BENCH_DOCKER_STORM (default
 * 50 and 500): the run, its phase table and the direct floor at the same count.
 */
export async function dockerStormBench(daemon: DaemonProcess): Promise<Figures> {
  const counts = (process.env.BENCH_DOCKER_STORM ?? '50,500').split(',').map(Number);
  const engine = new DockerEngine();
  await engine.ping();
  // The direct floor needs the placebo image; one small run builds it (or finds it cached).
  await runToEnd(daemon, [...placeboOnDocker, '--instances', '1']);
  let figures: Figures = {};
  for (const instances of counts) {
    const result = await stormBench({
      daemon,
      runner: 'local:docker',
      instances,
      plan: 'example',
      testcase: 'sync',
      params: { sleep_scale: '0' },
      floor: {
        label: `create, start and wait for ${instances} placebo ok containers directly (default bridge)`,
        measure: async (count) => (await measure(() => dockerFloor(engine, count))).ms,
      },
    });
    figures = { ...figures, ...result.figures };
  }
  return figures;
}

/**
 * `npm run bench -- swarm`: how long 100 instances take to start and end on the 3-node swarm of
 * scripts/swarm-cluster.sh (cluster:swarm), next to the same 100 on local:docker on the daemon's own
 * engine, one after the other in the same run. The plan is placebo `ok` (each instance records success at
 * once), so the figures are what each runner costs: creating, placing, starting, following and removing.
 * On this machine the three nodes share its two cores with the daemon, so the ratio is what a cluster
 * costs in orchestration, not what it gains in capacity.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startDaemonProcess, type DaemonProcess } from '../test/helpers/processes.ts';
import { ensureSwarmCluster } from '../test/helpers/swarm-cluster.ts';
import { placeboOn, runToEnd } from './bench-docker.ts';

const instances = Number(process.env.BENCH_SWARM_INSTANCES ?? 100);

type Figures = Record<string, string | number>;

async function timedRun(daemon: DaemonProcess, runner: string, count: number): Promise<number> {
  const started = performance.now();
  await runToEnd(daemon, [...placeboOn(runner), '--instances', String(count)]);
  return performance.now() - started;
}

export async function swarmBench(): Promise<Figures> {
  const cluster = await ensureSwarmCluster();
  const home = await mkdtemp(path.join(os.tmpdir(), 'tg-bench-swarm-'));
  const daemon = await startDaemonProcess({
    home,
    env: { TESTGROUND_SWARM_MANAGER: cluster.manager, TESTGROUND_REGISTRY: cluster.registry },
  });
  try {
    // Builds the image, pushes it, and lets every node pull it: what is measured next is the start.
    await timedRun(daemon, 'local:docker', 2);
    await timedRun(daemon, 'cluster:swarm', 6);
    const swarmMs = await timedRun(daemon, 'cluster:swarm', instances);
    const localMs = await timedRun(daemon, 'local:docker', instances);
    return {
      [`cluster:swarm, ${instances} instances of placebo ok on 3 nodes (CLI submit → exit)`]: `${swarmMs.toFixed(0)} ms`,
      [`  peer: local:docker, the same ${instances} on the daemon's engine`]: `${localMs.toFixed(0)} ms`,
      '  ratio  ': `${(swarmMs / localMs).toFixed(2)}x`,
    };
  } finally {
    await daemon.stop();
    await rm(home, { recursive: true, force: true });
  }
}

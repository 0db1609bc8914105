/**
 * Benchmarks, not tests: figures are printed next to a floor measured on the same machine in the same
 * run, so they read as ratios rather than absolute numbers that depend on the machine.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runSyncBench } from './bench-sync.ts';
import { runCli, startDaemonProcess } from '../test/helpers/processes.ts';

const instances = Number(process.env.BENCH_INSTANCES ?? 100);

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

async function walkthroughBench(): Promise<Record<string, string>> {
  const home = await mkdtemp(path.join(os.tmpdir(), 'tg-bench-'));
  const daemon = await startDaemonProcess({ home, env: { LOG_LEVEL: 'warn' } });
  try {
    const run = async (count: number): Promise<number> => {
      const started = performance.now();
      const result = await runCli([
        '--endpoint',
        daemon.url,
        'run',
        'single',
        '--plan',
        'example',
        '--testcase',
        'sync',
        '--instances',
        String(count),
        '--wait',
      ]);
      if (result.code !== 0)
        throw new Error(
          `the walkthrough with ${count} instances failed:\n${result.stdout}\n${result.stderr}`,
        );
      return performance.now() - started;
    };
    await run(2); // builds and caches the bundle, so the figure below is the run, not the build
    const walkthroughMs = await run(instances);
    const floorMs = await spawnFloor(instances);
    return {
      [`walkthrough, ${instances} instances (CLI submit → exit)`]: `${walkthroughMs.toFixed(0)} ms`,
      [`floor: spawn ${instances} bare node processes`]: `${floorMs.toFixed(0)} ms`,
      'walkthrough / floor': `${(walkthroughMs / floorMs).toFixed(2)}x`,
    };
  } finally {
    await daemon.stop();
    await rm(home, { recursive: true, force: true });
  }
}

const results: Record<string, string | number> = {
  ...(await runSyncBench()),
  ...(await walkthroughBench()),
};
const width = Math.max(...Object.keys(results).map((key) => key.length));
console.log(
  `\nmachine: ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`,
);
for (const [key, value] of Object.entries(results)) console.log(`${key.padEnd(width)}  ${value}`);

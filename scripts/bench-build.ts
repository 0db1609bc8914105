/**
 * `npm run bench -- build`: what type-checking a TypeScript plan before bundling costs. A cold exec:node
 * build of plans/example (a fresh copy each round, so the content-keyed cache misses) with the check, next
 * to the same build with `build_config.typecheck = false` in the same run: the ratio is the check's price
 * on a cache miss (a cache hit checks nothing).
 */
import { appendFile, cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { repoRoot, runCli, type DaemonProcess } from '../test/helpers/processes.ts';

const rounds = Number(process.env.BENCH_BUILD_ROUNDS ?? 3);

type Figures = Record<string, string | number>;

/** One cold build of a fresh copy of the example plan; returns its wall time in ms. */
async function coldBuild(
  daemon: DaemonProcess,
  scratch: string,
  round: string,
  typecheck: boolean,
): Promise<number> {
  const plan = path.join(scratch, round);
  await cp(path.join(repoRoot, 'plans/example'), plan, { recursive: true });
  // A byte of its own, so neither the bundle cache nor the check's cache knows this plan.
  await appendFile(path.join(plan, 'index.ts'), `\n// bench round ${round}\n`);
  const started = performance.now();
  const result = await runCli([
    '--endpoint',
    daemon.url,
    'build',
    'single',
    '--plan',
    plan,
    '--builder',
    'exec:node',
    ...(typecheck ? [] : ['--build-config', 'typecheck=false']),
  ]);
  const elapsedMs = performance.now() - started;
  if (result.code !== 0) throw new Error(`bench build ${round} failed:\n${result.stdout}\n${result.stderr}`);
  return elapsedMs;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

export async function buildBench(daemon: DaemonProcess): Promise<Figures> {
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'tg-bench-build-'));
  try {
    // The first check also generates the SDK's declarations once per daemon: not part of a plan's price.
    await coldBuild(daemon, scratch, 'warmup', true);
    const checked: number[] = [];
    const unchecked: number[] = [];
    // Alternating, so load from elsewhere on the machine hits both sides alike.
    for (let round = 0; round < rounds; round += 1) {
      checked.push(await coldBuild(daemon, scratch, `checked-${round}`, true));
      unchecked.push(await coldBuild(daemon, scratch, `unchecked-${round}`, false));
    }
    const checkedMs = median(checked);
    const uncheckedMs = median(unchecked);
    return {
      [`build: cold exec:node build of plans/example with the type check (median of ${rounds})`]: `${checkedMs.toFixed(0)} ms`,
      '  peer: the same build with build_config.typecheck = false': `${uncheckedMs.toFixed(0)} ms`,
      '  ratio  ': `${(checkedMs / uncheckedMs).toFixed(2)}x`,
    };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * `npm run bench -- exec`: the seed's walkthrough (plans/example `sync`, its sleeps scaled to 0) with N
 * instances on local:exec, from the CLI's submit to its exit, beside the floor of spawning N bare `node`
 * processes at once, with the run's phase table (scripts/bench-storm.ts) to show where the rest went.
 */
import { spawnFloor, stormBench } from './bench-storm.ts';
import type { DaemonProcess } from '../test/helpers/processes.ts';

type Figures = Record<string, string>;

export async function execBench(daemon: DaemonProcess, instances: number): Promise<Figures> {
  const walkthrough = await stormBench({
    daemon,
    runner: 'local:exec',
    instances,
    plan: 'example',
    testcase: 'sync',
    // The seed's sleeps (up to 10 s) would measure the plan, not the launch.
    params: { sleep_scale: '0' },
    title: `local:exec walkthrough, ${instances} instances (CLI submit → exit)`,
    floor: { label: `spawn ${instances} bare node processes`, measure: spawnFloor },
  });
  return walkthrough.figures;
}

/** The storm (plans/benchmarks `storm`) on local:exec at each count, each beside its spawn floor. */
export async function execStormBench(daemon: DaemonProcess, counts: readonly number[]): Promise<Figures> {
  const figures: Figures = {};
  for (const instances of counts) {
    Object.assign(figures, (await stormBench({ daemon, runner: 'local:exec', instances })).figures);
  }
  return figures;
}

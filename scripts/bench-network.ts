/**
 * `npm run bench`, network emulation: N instances on local:docker configure their network at the same
 * moment; each measures publish → callback (what configureNetwork waits). The floor is the shaper alone
 * applying the same configuration to N namespaces at once, in this process: no sync service, no
 * controller, no containers. Their ratio is what the sync round trip and the controller add.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseNetworkConfig } from '../core/contract/network-config.ts';
import { walkDir } from '../core/walk-dir.ts';
import { LinuxNetworkShaper } from '../runners/network/linux-network-shaper.ts';
import type { NetworkTarget } from '../runners/network/network-shaper.ts';
import { runCli, type DaemonProcess } from '../test/helpers/processes.ts';

const run = promisify(execFile);
const stormPlan = path.join(import.meta.dirname, 'bench-plans/network-storm');
const latency = '10ms';
const bandwidth = '100Mbit';

type Figures = Record<string, string>;

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

async function stormRun(daemon: DaemonProcess, instances: number): Promise<number[]> {
  const result = await runCli([
    '--endpoint',
    daemon.url,
    'run',
    'single',
    '--plan',
    stormPlan,
    '--testcase',
    'configure',
    '--builder',
    'docker:node',
    '--runner',
    'local:docker',
    '--instances',
    String(instances),
    '--test-param',
    `latency=${latency}`,
    '--test-param',
    `bandwidth=${bandwidth}`,
    '--wait',
  ]);
  if (result.code !== 0) {
    throw new Error(`the network storm run failed:\n${result.stdout}\n${result.stderr}`);
  }
  const runId = /run (\S+) queued/.exec(result.stdout)?.[1];
  if (!runId) throw new Error(`the CLI did not print the run id:\n${result.stdout}`);
  const times: number[] = [];
  const outputs = await walkDir(path.join(daemon.home, 'outputs'));
  for (const entry of outputs) {
    if (!entry.name.endsWith('/configure.json') || !entry.name.includes(`/${runId}/`)) continue;
    times.push((JSON.parse(await readFile(entry.absolute, 'utf8')) as { configureMs: number }).configureMs);
  }
  if (times.length !== instances) {
    throw new Error(`expected ${instances} callback times in the run's outputs, found ${times.length}`);
  }
  return times;
}

/** The shaper alone: N named namespaces with a data interface each (one end of a veth pair inside it; this kernel has no dummy), configured at once. */
async function shaperFloor(instances: number): Promise<number[]> {
  const shaper = new LinuxNetworkShaper({ buildDir: path.join(os.tmpdir(), 'testground-packet-delayer') });
  const names = Array.from({ length: instances }, (_, index) => `tgbench-${process.pid}-${index}`);
  const config = parseNetworkConfig({
    callback_state: 'configured',
    default: { latency: 10_000_000, bandwidth: 100_000_000 },
    routing_policy: 'allow_all',
  });
  try {
    await Promise.all(
      names.map(async (name, index) => {
        await run('ip', ['netns', 'add', name]);
        const ip = (args: string[]): Promise<unknown> => run('ip', ['-n', name, ...args]);
        await ip(['link', 'add', 'data0', 'type', 'veth', 'peer', 'name', 'data1']);
        await ip(['link', 'set', 'data1', 'up']);
        await ip(['addr', 'add', `10.250.${index >> 8}.${(index & 255) + 1}/16`, 'dev', 'data0']);
        await ip(['link', 'set', 'data0', 'up']);
      }),
    );
    await shaper.features(); // detected once per daemon, not part of a configuration's cost
    const targets: NetworkTarget[] = names.map((name) => ({
      label: name,
      namespace: { kind: 'named', name },
      dataInterface: 'data0',
      dataSubnet: '10.250.0.0/16',
      keepReachable: [],
    }));
    return await Promise.all(
      targets.map(async (target) => {
        const started = performance.now();
        await shaper.apply(target, config);
        return performance.now() - started;
      }),
    );
  } finally {
    await shaper.close();
    await Promise.all(names.map((name) => run('ip', ['netns', 'del', name]).catch(() => undefined)));
  }
}

export async function networkBench(daemon: DaemonProcess, instances: number): Promise<Figures> {
  // The first run builds the plan's image, so the measured one starts no build.
  await stormRun(daemon, 2);
  const storm = await stormRun(daemon, instances);
  const floor = await shaperFloor(instances);
  const shape = `latency ${latency}, bandwidth ${bandwidth}`;
  const ratio = (q: number): string => `${(quantile(storm, q) / quantile(floor, q)).toFixed(2)}x`;
  return {
    [`configureNetwork storm, ${instances} instances on local:docker (${shape}), publish → callback`]: `p50 ${quantile(storm, 0.5).toFixed(0)} ms, p99 ${quantile(storm, 0.99).toFixed(0)} ms`,
    [`  floor: the shaper alone applying it to ${instances} namespaces at once`]: `p50 ${quantile(floor, 0.5).toFixed(0)} ms, p99 ${quantile(floor, 0.99).toFixed(0)} ms`,
    '  ratio (p50, p99)': `${ratio(0.5)}, ${ratio(0.99)}`,
  };
}

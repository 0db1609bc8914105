/**
 * configureNetwork end to end on local:docker, through the real CLI, daemon and Docker engine (issue 8's
 * acceptance):
 * - plans/network-official, written only against the official @testground/sdk@0.1.2 from npm: its
 *   configureNetwork callback arrives for both instances and the latency it asked for is measured;
 * - configurations the network controller must refuse (published as written by plans/network raw-config):
 *   a bad value, an unknown key, a knob this kernel has no mechanism for. Each ends its instance as
 *   `failure` within seconds, the reason naming the key (and for a missing knob the kernel feature), in
 *   the task log and the instance's result; never a wait until the run timeout.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import {
  assertSucceeded,
  assertWithin,
  figure,
  measurementOf,
  NetworkE2e,
  report,
} from './network-fidelity.ts';
import { connectEngine } from '../docker/docker-fixtures.ts';
import { scratchDir, startDaemonProcess, type DaemonProcess } from '../helpers/processes.ts';

/** Whether this kernel has sch_netem: tried in a throwaway namespace, as the daemon's shaper detects it. */
async function hasNetem(): Promise<boolean> {
  return promisify(execFile)('unshare', [
    '--net',
    'tc',
    'qdisc',
    'add',
    'dev',
    'lo',
    'root',
    'netem',
    'delay',
    '1ms',
  ])
    .then(() => true)
    .catch(() => false);
}

/** What each refused configuration's instance reason must say; `needsNoNetem`: refused only without netem. */
const refusals = [
  {
    id: 'latency-fraction',
    config: { default: { latency: 1.5 } },
    reason: /default\.latency: expected whole nanoseconds/,
  },
  {
    id: 'filter-seven',
    config: { rules: [{ subnet: '10.0.0.0/8', filter: 7 }] },
    reason: /rules\[0\]\.filter: expected 0 \(accept\), 1 \(reject\) or 2 \(drop\), got 7/,
  },
  {
    id: 'unknown-key',
    config: { default: { latency: 1_000_000 }, shaping: true },
    reason: /shaping: unknown key/,
  },
  {
    id: 'unknown-shape-key',
    config: { default: { latncy: 1_000_000 } },
    reason: /default\.latncy: unknown key/,
  },
  {
    id: 'corrupt',
    config: { default: { corrupt: 5 } },
    reason: /default\.corrupt needs sch_netem, which this host lacks/,
    needsNoNetem: true,
  },
  {
    id: 'duplicate',
    config: { default: { duplicate: 5 } },
    reason: /default\.duplicate needs sch_netem, which this host lacks/,
    needsNoNetem: true,
  },
];
/** Far above what a refusal takes; a run that gets near it waited for a callback that never came. */
const runTimeoutMs = 60_000;
const refusalWithinMs = 20_000;

describe('configureNetwork on local:docker: the official SDK, and the configurations refused', () => {
  let e2e: NetworkE2e;
  let daemon: DaemonProcess | undefined;
  let scratch: Awaited<ReturnType<typeof scratchDir>> | undefined;
  before(async () => {
    scratch = await scratchDir('network-configure');
    daemon = await startDaemonProcess({ home: path.join(scratch.dir, 'home') });
    e2e = new NetworkE2e({ daemon, engine: await connectEngine(), dir: scratch.dir });
  });
  after(async () => {
    await daemon?.stop();
    await scratch?.remove();
  });

  it('runs the official SDK’s ping-pong: its callback arrives and 50 ms on each egress is measured', async () => {
    const run = await e2e.run({
      plan: 'network-official',
      testCase: 'ping-pong',
      groups: { single: 2 },
      params: { latency_ms: 50, pings: 100 },
    });
    assertSucceeded(run);
    for (const index of [0, 1]) {
      assert.match(
        run.stdout,
        new RegExp(
          `single\\[${index}\\]: network configured \\(latency 50ms, deny_all\\); signalled latency-configured`,
        ),
      );
    }
    const measurement = measurementOf(run);
    const median = figure(measurement, 'medianRttMs');
    report('official-sdk latency', '50ms', `rtt-median ${median}`, 'ms');
    assert.equal(figure(measurement, 'answered'), 100, 'every ping answered');
    assertWithin(median, 100, 0.1, 'the median round trip with 50 ms on each egress');
  });

  it('ends an instance whose configuration is refused as failure, naming the key, within seconds', async (t) => {
    const netem = await hasNetem();
    if (netem) t.diagnostic('this kernel has sch_netem: corrupt and duplicate are applied, not refused');
    const expectations = refusals.filter((refusal) => !(netem && refusal.needsNoNetem));
    const run = await e2e.run({
      plan: 'network',
      testCase: 'raw-config',
      groups: { single: 1 },
      timeout: `${runTimeoutMs / 1000}s`,
      runs: expectations.map(({ id, config }) => ({ id, params: { config: JSON.stringify(config) } })),
    });
    assert.equal(run.code, 1, `the plan failed: exit 1\n${run.stdout}\n${run.stderr}`);
    for (const expected of expectations) {
      const view = run.task.runs.find((item) => item.name === expected.id);
      assert.ok(view, `run ${expected.id} exists`);
      const instance = view.result?.instances[0];
      assert.equal(instance?.outcome, 'failure', expected.id);
      assert.match(instance?.reason ?? '', /^network configuration refused: /, expected.id);
      assert.match(instance?.reason ?? '', expected.reason, expected.id);
      const tookMs = Date.parse(view.ended_at ?? '') - Date.parse(view.started_at ?? '');
      assert.ok(tookMs < refusalWithinMs, `${expected.id} ended ${tookMs} ms after it started`);
      report('refusal', expected.id, `in ${tookMs}ms: ${instance?.reason}`);
    }
    // The task log says it too, as the controller's error line and on the instance's stderr.
    assert.match(run.stdout, /single\[0\]: network configuration refused: default\.latency: /);
    assert.match(
      run.stdout,
      /single\[0\] \(stderr\) testground: network configuration refused: rules\[0\]\.filter: /,
    );
  });

  it('leaves no container or network behind', async () => {
    assert.deepEqual(await e2e.leftovers(), []);
  });
});

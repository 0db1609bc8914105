/**
 * local:exec with `--run-config network=netns` through the real CLI and daemon, with the daemon's real
 * network controller and shaper: the seed walkthrough in namespaces, latency and bandwidth shaped and
 * measured between two instances (the acceptance of issue 8: "the same latency and bandwidth cases pass on
 * local:exec with the netns option"), a refused configuration that ends the run at once, and a daemon
 * SIGKILLed during a namespace run, whose successor removes the run's namespaces and processes.
 *
 * The measurements come from the netns-check plan (test/runners/local-exec/netns-plan): instance 1
 * measures TCP round trips or throughput to instance 2 after both asked for the shape on their egress, so
 * a round trip carries the latency twice. Each figure is printed as a diagnostic line
 * (`network-fidelity local:exec …`).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readTgz } from '../helpers/archive.ts';
import { runSingle, taskIdOf, taskOf } from '../helpers/daemon-api.ts';
import { runCli, scratchDir, startDaemonProcess, waitFor, type DaemonProcess } from '../helpers/processes.ts';
import { netnsShortId } from '../../runners/netns/netns-layout.ts';
import { listNetnsRuns } from '../../runners/netns/netns-objects.ts';
import { netnsSupportProblems } from '../../runners/netns/netns-support.ts';

const netnsPlan = path.join(import.meta.dirname, '../runners/local-exec/netns-plan');
const netns = ['--builder', 'exec:node', '--runner', 'local:exec', '--run-config', 'network=netns'];

/** What is left on the host of the run: namespaces and interfaces. */
async function objectsOf(runId: string): Promise<string[]> {
  const objects = (await listNetnsRuns()).get(netnsShortId(runId));
  return objects ? [...objects.namespaces, ...objects.links] : [];
}

/** The value of the first `<label> <number>` message instance output carried to the CLI. */
function measured(stdout: string, label: RegExp): number {
  const match = label.exec(stdout);
  assert.ok(match?.[1], `the CLI printed the measurement ${label}:\n${stdout}`);
  return Number(match[1]);
}

describe('local:exec with run_config.network = "netns", through the real CLI and daemon', () => {
  let daemon: DaemonProcess;
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  before(async () => {
    const problems = await netnsSupportProblems();
    if (problems.length > 0) {
      throw new Error(`these tests create network namespaces: ${problems.join('; ')} (run them as root)`);
    }
    scratch = await scratchDir('exec-network');
    daemon = await startDaemonProcess({ home: path.join(scratch.dir, 'home') });
  });
  after(async () => {
    await daemon?.stop();
    await scratch?.remove();
  });

  it('runs the seed walkthrough (example/sync, 10 instances) in namespaces, and leaves nothing behind', async () => {
    const archive = path.join(scratch.dir, 'walkthrough.tgz');
    const result = await runSingle(daemon.url, 'example', 'sync', [
      ...netns,
      '--instances',
      '10',
      '--test-param',
      'sleep_scale=0.1',
      '--wait',
      '--collect',
      '--collect-file',
      archive,
    ]);
    assert.equal(result.code, 0, `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
    assert.match(result.stdout, /^single: 10\/10 ok$/m);
    const runId = /run (\w+) queued/.exec(result.stdout)?.[1];
    assert.ok(runId);
    const entries = await readTgz(archive);
    const runOut = entries.get(`${runId}/single/0/run.out`) ?? '';
    // The SDK waited for network-initialized, which the daemon signalled for every namespace.
    assert.match(runOut, /"message":"network initialisation successful"/);
    assert.match(
      runOut,
      /"network":"10\.(1[6-8]\d|19[01])\.\d+\.0\/20"/,
      'TEST_SUBNET is the run data network',
    );
    assert.deepEqual(await objectsOf(runId), []);
  });

  /** Runs a measuring case of the netns-check plan on two instances and returns the figure it printed. */
  async function measure(testCase: string, params: string[], figure: RegExp): Promise<number> {
    const result = await runSingle(daemon.url, netnsPlan, testCase, [
      ...netns,
      '--instances',
      '2',
      ...params.flatMap((param) => ['--test-param', param]),
      '--wait',
    ]);
    assert.equal(result.code, 0, `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
    return measured(result.stdout, figure);
  }

  for (const latencyMs of [50, 100]) {
    it(`shapes latency ${latencyMs} ms: the measured round trip is 2 × ${latencyMs} ms ± 10 %`, async (t) => {
      const rttMs = await measure('latency', [`latency_ms=${latencyMs}`], /rtt median ([\d.]+) ms/);
      t.diagnostic(`network-fidelity local:exec latency ${latencyMs}ms rtt-median ${rttMs}`);
      assert.ok(Math.abs(rttMs - 2 * latencyMs) <= 0.1 * 2 * latencyMs, `median round trip ${rttMs} ms`);
    });
  }

  for (const mbit of [10, 50]) {
    it(`shapes bandwidth ${mbit} Mbit/s: the measured TCP throughput is within ± 10 %`, async (t) => {
      const params = [`bandwidth_mbit=${mbit}`, 'seconds=4'];
      const throughput = await measure('bandwidth', params, /throughput ([\d.]+) Mbit\/s/);
      t.diagnostic(`network-fidelity local:exec bandwidth ${mbit}Mbit/s throughput ${throughput}`);
      assert.ok(Math.abs(throughput - mbit) <= 0.1 * mbit, `throughput ${throughput} Mbit/s`);
    });
  }

  it('ends an instance whose configuration is refused (filter 7) as failure with the reason, without a hang', async () => {
    const started = Date.now();
    const result = await runSingle(daemon.url, netnsPlan, 'refused', [
      ...netns,
      '--instances',
      '3',
      '--test-param',
      'filter=7',
      '--timeout',
      '120s',
      '--wait',
    ]);
    assert.notEqual(result.code, 0, result.stdout);
    const reason =
      'network configuration refused: rules[0].filter: expected 0 (accept), 1 (reject) or 2 (drop), got 7';
    assert.ok(result.stdout.includes(reason), `the CLI printed the reason:\n${result.stdout}`);
    assert.match(result.stdout, /stopping the run: single\[\d\]'s network configuration was refused/);
    assert.match(result.stdout, /^single: 0\/3 ok/m);
    assert.ok(
      Date.now() - started < 60_000,
      `the run ended in ${Date.now() - started} ms, long before its timeout`,
    );
    const runId = /run (\w+) queued/.exec(result.stdout)?.[1];
    assert.ok(runId);
    assert.deepEqual(await objectsOf(runId), []);
  });

  it("removes a SIGKILLed daemon's namespace run when it restarts", async () => {
    const home = path.join(scratch.dir, 'home-killed');
    const first = await startDaemonProcess({ home });
    let second: DaemonProcess | undefined;
    try {
      const submitted = await runCli([
        '--endpoint',
        first.url,
        'run',
        'single',
        '--plan',
        netnsPlan,
        '--testcase',
        'stall',
        ...netns,
        '--instances',
        '2',
      ]);
      assert.equal(submitted.code, 0, submitted.stderr);
      const taskId = taskIdOf(submitted.stdout);
      // The run is up once both namespaces exist; a run the daemon refused ends instead, and says why.
      await waitFor(
        'the run to have its two namespaces',
        async () => {
          if ((await objectsOf(taskId)).filter((name) => name.startsWith('tg-')).length === 2) return true;
          const task = await taskOf(first.url, taskId);
          if (task.state === 'complete') throw new Error(`the run ended: ${task.error ?? task.outcome}`);
          return undefined;
        },
        60_000,
      );
      first.child.kill('SIGKILL');
      await new Promise((resolve) => first.child.once('exit', resolve));
      assert.notDeepEqual(await objectsOf(taskId), [], 'the killed daemon left the namespaces');

      second = await startDaemonProcess({ home });
      assert.deepEqual(await objectsOf(taskId), [], 'the restarted daemon removed them');
      const task = await taskOf(second.url, taskId);
      assert.equal(task.outcome, 'error');
      assert.match(task.error ?? '', /daemon restarted during the run/);
    } finally {
      if (first.child.exitCode === null && first.child.signalCode === null) first.child.kill('SIGKILL');
      await second?.stop();
    }
  });
});

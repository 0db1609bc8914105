/**
 * local:exec with `run_config.network = "netns"`: real namespaces, bridges and veths, real instance
 * processes of a plan built by the real exec:node builder, the real sync service and the real network
 * controller. The shaper is a stand-in that shapes nothing (fake-network-shaper.ts); the real one's
 * measured latency and bandwidth are in test/e2e/exec-network.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Artifact } from '../../../core/artifact.ts';
import { RunnerError } from '../../../core/errors.ts';
import { runHostCommand } from '../../../runners/host-command.ts';
import { LocalExecRunner } from '../../../runners/local-exec/local-exec-runner.ts';
import { netnsBlockCandidates, netnsLayout, netnsShortId } from '../../../runners/netns/netns-layout.ts';
import { listNetnsRuns } from '../../../runners/netns/netns-objects.ts';
import { missingCapabilities, netnsSupportProblems } from '../../../runners/netns/netns-support.ts';
import { RunNetwork } from '../../../runners/netns/run-network.ts';
import { SyncServiceBundle } from '../../../runners/sync-service-bundle.ts';
import { waitFor } from '../../helpers/processes.ts';
import { UnsupportedNetworkFeatureError } from '../../../runners/network/network-shaper.ts';
import { FakeNetworkShaper } from '../network/fake-network-shaper.ts';
import { buildNetnsPlan, netnsRunInput, repoRoot, silentLogger } from './netns-runs.ts';

let scratch: string;
let bundle: Artifact;
let syncService: SyncServiceBundle;

before(async () => {
  const problems = await netnsSupportProblems();
  if (problems.length > 0) {
    throw new Error(`these tests create network namespaces: ${problems.join('; ')} (run them as root)`);
  }
  scratch = await mkdtemp(path.join(os.tmpdir(), 'tg-local-exec-netns-'));
  bundle = await buildNetnsPlan(path.join(scratch, 'cache'));
  syncService = new SyncServiceBundle(path.join(scratch, 'sync-service'));
});

after(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

interface RunOutLine {
  event: { type: string; message?: string; runenv?: { network?: string } };
}

async function runOut(outputsDir: string, group: string, index: number): Promise<RunOutLine[]> {
  const text = await readFile(path.join(outputsDir, group, String(index), 'run.out'), 'utf8');
  return text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as RunOutLine);
}

const messagesOf = (lines: RunOutLine[]): string[] =>
  lines.flatMap((line) => (line.event.type === 'message' ? [line.event.message ?? ''] : []));

/** What is left on the host of the run: namespaces, interfaces, firewall rule. */
async function objectsOf(runId: string): Promise<string[]> {
  const objects = (await listNetnsRuns()).get(netnsShortId(runId));
  if (!objects) return [];
  return [...objects.namespaces, ...objects.links, ...(objects.firewallRule ? ['firewall rule'] : [])];
}

/** Whether `pid` is a running process; a zombie (exited, not yet collected by its parent) is not. */
function isAlive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('LocalExecRunner with run_config.network = "netns"', () => {
  it('gives each instance a namespace and a hostname of its own on the run data network, and removes it all after the run', async () => {
    const networkShaper = new FakeNetworkShaper();
    const runner = new LocalExecRunner({
      logger: silentLogger,
      syncService,
      daemonId: 'test',
      networkShaper,
    });
    const runId = `netns-reach-${process.pid}`;
    const input = await netnsRunInput({ runId, testCase: 'reach', groups: { a: 2, b: 1 }, bundle, scratch });
    const { instances } = await runner.run(input);
    assert.deepEqual(
      instances.map((instance) => `${instance.group}[${instance.index}] ${instance.outcome}`),
      ['a[0] success', 'a[1] success', 'b[0] success'],
      input.log.text(),
    );

    const shortId = netnsShortId(runId);
    const runOuts = await Promise.all([
      runOut(input.outputsDir, 'a', 0),
      runOut(input.outputsDir, 'a', 1),
      runOut(input.outputsDir, 'b', 0),
    ]);
    const subnet = runOuts[0]![0]!.event.runenv?.network ?? '';
    assert.match(subnet, /^10\.(1[6-8]\d|19[01])\.\d+\.0\/20$/, 'TEST_SUBNET is a /20 of 10.160.0.0/11');
    const layout = netnsLayout(runId, 3, `${subnet.split('/')[0]}/19`);
    const expected = layout.instances.map((instance) => `${instance.hostname}@${instance.dataAddress}`);
    assert.deepEqual(
      expected.map((identity) => identity.split('@')[0]),
      [`tg-${shortId}-0`, `tg-${shortId}-1`, `tg-${shortId}-2`],
    );
    runOuts.forEach((lines, n) => {
      const messages = messagesOf(lines);
      assert.equal(lines[0]!.event.runenv?.network, subnet);
      // Each instance has its own hostname and address; each reaches all three by data address.
      assert.ok(messages.includes(`hostname ${expected[n]!.replace('@', ' address ')}`), messages.join('\n'));
      assert.ok(messages.includes(`reached ${[...expected].sort().join(' ')}`), messages.join('\n'));
      // The sync service answered it (the waits and topics above), and no instance reached another's
      // control address: only the data network connects instances.
      assert.ok(messages.includes('control network: 2 of 2 peers unreachable'), messages.join('\n'));
      assert.ok(messages.some((message) => message.startsWith('network configured (network-configured)')));
    });
    assert.match(
      input.log.text(),
      new RegExp(
        `3 network namespaces tg-${shortId}-0…2: data network ${subnet.replace(/\./g, '\\.')} on bridge tg${shortId}`,
      ),
    );

    // The controller read each instance's configuration on its topic and had it applied in its namespace,
    // then released each one when its instance ended.
    const byLabel = (a: { label: string }, b: { label: string }): number => a.label.localeCompare(b.label);
    const syncPort = networkShaper.applied[0]?.target.keepReachable[0]?.tcpPort;
    assert.ok(syncPort !== undefined && syncPort > 0, 'the sync service port stays reachable');
    const targets = layout.instances.map((instance, n) => ({
      label: ['a[0]', 'a[1]', 'b[0]'][n]!,
      namespace: { kind: 'named', name: instance.netns },
      dataInterface: 'data0',
      dataSubnet: subnet,
      // The sync service's port on the host, not the host: deny_all must cut the rest of it.
      keepReachable: [{ subnet: `${layout.controlGateway}/32`, tcpPort: syncPort }],
      hostAddresses: [layout.dataGateway, layout.controlGateway],
    }));
    assert.deepEqual(networkShaper.applied.map((applied) => applied.target).sort(byLabel), targets);
    assert.ok(
      networkShaper.applied.every((applied) => applied.config.callbackState === 'network-configured'),
    );
    assert.deepEqual([...networkShaper.released].sort(byLabel), targets);
    assert.deepEqual(await objectsOf(runId), [], 'nothing of the run is left on the host');
  });

  it('skips a block whose addresses the host already routes', async () => {
    const runId = `netns-taken-${process.pid}`;
    const first = netnsBlockCandidates(runId).next().value!;
    const firstData = netnsLayout(runId, 1, first).dataSubnet;
    await runHostCommand('ip', ['route', 'add', 'blackhole', firstData]);
    try {
      const network = await RunNetwork.create({
        runId,
        daemonId: 'test',
        instanceCount: 1,
        scratchDir: path.join(scratch, 'temp', runId),
      });
      try {
        assert.notEqual(network.layout.dataSubnet, firstData);
      } finally {
        await network.remove();
      }
    } finally {
      await runHostCommand('ip', ['route', 'del', 'blackhole', firstData]);
    }
    assert.deepEqual(await objectsOf(runId), []);
  });

  it('stops timed-out instances and whatever they left in their namespaces', async () => {
    const runner = new LocalExecRunner({
      logger: silentLogger,
      syncService,
      daemonId: 'test',
      networkShaper: new FakeNetworkShaper(),
      killGraceMs: 500,
    });
    const runId = `netns-stall-${process.pid}`;
    const input = await netnsRunInput({
      runId,
      testCase: 'stall',
      groups: { single: 2 },
      bundle,
      scratch,
      timeoutMs: 4_000,
    });
    const { instances } = await runner.run(input);
    assert.deepEqual(
      instances.map((instance) => instance.outcome),
      ['timeout', 'timeout'],
      input.log.text(),
    );
    const orphans = await Promise.all(
      [0, 1].map(async (index) => {
        const message = messagesOf(await runOut(input.outputsDir, 'single', index)).find((m) =>
          m.startsWith('stalling'),
        );
        return Number(/left process (\d+)/.exec(message ?? '')?.[1]);
      }),
    );
    for (const pid of orphans) assert.ok(pid > 0);
    await waitFor('the processes left in the namespaces to be gone', async () =>
      orphans.every((pid) => !isAlive(pid)) ? true : undefined,
    );
    assert.deepEqual(await objectsOf(runId), []);
  });

  it('removes the namespaces, processes and firewall rule of a run whose daemon was SIGKILLed (cleanupInterrupted)', async () => {
    const runId = `netns-killed-${process.pid}`;
    const tempDir = path.join(scratch, 'temp', runId);
    const outputsDir = path.join(scratch, 'outputs', runId);
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(import.meta.dirname, 'netns-runner-child.ts'),
        scratch,
        runId,
        bundle.kind === 'bundle' ? bundle.path : '',
      ],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let childOutput = '';
    child.stdout.on('data', (chunk: Buffer) => (childOutput += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (childOutput += chunk.toString()));
    try {
      const orphans = await waitFor(
        'both instances to stall',
        async () => {
          const pids = await Promise.all(
            [0, 1].map(async (index) => {
              const lines = await runOut(outputsDir, 'single', index).catch(() => []);
              const message = messagesOf(lines).find((m) => m.startsWith('stalling'));
              return Number(/left process (\d+)/.exec(message ?? '')?.[1] ?? 0);
            }),
          );
          return pids.every((pid) => pid > 0) ? pids : undefined;
        },
        60_000,
      ).catch((error: Error) => {
        throw new Error(`${error.message}; runner process output:\n${childOutput}`);
      });
      const recorded = (await readFile(path.join(tempDir, 'instance.pids'), 'utf8'))
        .split('\n')
        .filter(Boolean)
        .map(Number);
      assert.equal(recorded.length, 3, 'the sync service and two instances');
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
      const left = await objectsOf(runId);
      const shortId = netnsShortId(runId);
      assert.deepEqual(
        left.filter((name) => name.startsWith('tg-')).sort(),
        [`tg-${shortId}-0`, `tg-${shortId}-1`],
        'the killed runner left its namespaces',
      );
      assert.ok(left.includes(`tg${shortId}`) && left.includes('firewall rule'), left.join(', '));
      for (const pid of [...recorded, ...orphans])
        assert.ok(isAlive(pid), `process ${pid} outlived its runner`);

      const restarted = new LocalExecRunner({ logger: silentLogger, syncService, daemonId: 'test' });
      await restarted.cleanupInterrupted(runId, tempDir);
      await waitFor('every process of the run to be gone', async () =>
        [...recorded, ...orphans].every((pid) => !isAlive(pid)) ? true : undefined,
      );
      assert.deepEqual(await objectsOf(runId), [], 'nothing of the run is left on the host');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  it("removes this daemon's leftovers of ended runs, not active runs' nor another daemon's (removeLeftovers, healthcheck --fix)", async () => {
    const make = (runId: string, daemonId: string): Promise<RunNetwork> =>
      RunNetwork.create({ runId, daemonId, instanceCount: 2, scratchDir: path.join(scratch, 'temp', runId) });
    const ended = `netns-ended-${process.pid}`;
    const active = `netns-active-${process.pid}`;
    const foreign = `netns-foreign-${process.pid}`;
    const networks = [await make(ended, 'mine'), await make(active, 'mine'), await make(foreign, 'theirs')];
    try {
      const runner = new LocalExecRunner({ logger: silentLogger, syncService, daemonId: 'mine' });
      const before = await runner.healthcheck({ fix: false, activeRunIds: new Set([active]) });
      const leftovers = before.find((check) => check.name === 'leftovers');
      assert.equal(leftovers?.ok, false);
      assert.match(leftovers?.message ?? '', new RegExp(`tg-${netnsShortId(ended)}-0`));
      assert.doesNotMatch(leftovers?.message ?? '', new RegExp(netnsShortId(active)));
      assert.doesNotMatch(leftovers?.message ?? '', new RegExp(netnsShortId(foreign)));

      const removed = await runner.removeLeftovers(new Set([active]));
      assert.deepEqual(removed, { namespaces: 2, interfaces: 6 });
      assert.deepEqual(await objectsOf(ended), []);
      assert.notDeepEqual(await objectsOf(active), []);
      assert.notDeepEqual(await objectsOf(foreign), []);

      // Once the run is no longer active, healthcheck --fix removes it too.
      const fixed = await runner.healthcheck({ fix: true, activeRunIds: new Set() });
      assert.equal(
        fixed.find((check) => check.name === 'leftovers')?.fix,
        'removed 2 network namespaces and 6 interfaces',
      );
      assert.deepEqual(await objectsOf(active), []);
      assert.notDeepEqual(await objectsOf(foreign), [], "another daemon's run is left alone");
    } finally {
      for (const network of networks) await network.remove();
    }
  });

  it("ends a refused instance as failure with the controller's reason, and stops the others rather than let them wait", async () => {
    const networkShaper = new FakeNetworkShaper();
    networkShaper.behaviour = (target) => {
      if (target.label === 'single[1]') {
        throw new UnsupportedNetworkFeatureError(
          'default.duplicate',
          'sch_netem',
          'load the sch_netem module',
        );
      }
    };
    const runner = new LocalExecRunner({
      logger: silentLogger,
      syncService,
      daemonId: 'test',
      networkShaper,
    });
    const runId = `netns-refusal-${process.pid}`;
    const input = await netnsRunInput({ runId, testCase: 'reach', groups: { single: 3 }, bundle, scratch });
    const started = Date.now();
    const { instances } = await runner.run(input);
    const reason =
      'network configuration refused: default.duplicate needs sch_netem, which this host lacks; load the sch_netem module';
    assert.deepEqual(
      instances.map((instance) => [instance.outcome, instance.reason]),
      [
        ['failure', `stopped because single[1]'s network configuration was refused (${reason})`],
        ['failure', reason],
        ['failure', `stopped because single[1]'s network configuration was refused (${reason})`],
      ],
      input.log.text(),
    );
    assert.ok(Date.now() - started < 30_000, 'the run ended long before its timeout');
    assert.match(
      input.log.text(),
      /local:exec: stopping the run: single\[1\]'s network configuration was refused/,
    );
    const stderr = await readFile(path.join(input.outputsDir, 'single', '1', 'run.err'), 'utf8');
    assert.match(stderr, new RegExp(`testground: ${reason}`));
    assert.deepEqual(await objectsOf(runId), []);
  });

  it('refuses the run, saying why, when the daemon lacks root or a network shaper; nothing is created', async () => {
    const runId = `netns-refused-${process.pid}`;
    const notRoot = new LocalExecRunner({
      logger: silentLogger,
      syncService,
      networkShaper: new FakeNetworkShaper(),
      netnsSupportProblems: () =>
        netnsSupportProblems({ statusText: 'CapEff:\t0000000000000000\n', uid: 1000 }),
    });
    const input = await netnsRunInput({ runId, testCase: 'reach', groups: { single: 1 }, bundle, scratch });
    await assert.rejects(notRoot.run(input), (error: Error) => {
      assert.ok(error instanceof RunnerError);
      assert.equal(
        error.message,
        'run_config.network = "netns" cannot run here: it needs root: creating network namespaces takes ' +
          'CAP_NET_ADMIN and CAP_SYS_ADMIN, and this daemon (uid 1000) lacks CAP_NET_ADMIN and CAP_SYS_ADMIN; ' +
          "start the daemon as root (e.g. sudo testground daemon). Without the option, local:exec runs the instances on the host's network",
      );
      return true;
    });
    const noShaper = new LocalExecRunner({ logger: silentLogger, syncService });
    await assert.rejects(
      noShaper.run(input),
      /cannot run here: this daemon was started without a network shaper, so configureNetwork requests could not be answered/,
    );
    assert.deepEqual(await objectsOf(runId), []);
    assert.equal(existsSync(path.join(input.outputsDir, 'single')), false, 'no instance was started');
  });

  it('reads the capabilities of a real unprivileged process as missing, and of this root process as present', async () => {
    const unprivileged = await runHostCommand('setpriv', [
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      '--inh-caps=-all',
      'cat',
      '/proc/self/status',
    ]);
    assert.deepEqual(missingCapabilities(unprivileged), ['CAP_NET_ADMIN', 'CAP_SYS_ADMIN']);
    assert.deepEqual(missingCapabilities(await readFile('/proc/self/status', 'utf8')), []);
    assert.deepEqual(await netnsSupportProblems({ searchPath: '/nonexistent' }), [
      "it needs the ip command (from iproute2), which is not on the daemon's PATH",
      "it needs the nsenter command (from util-linux), which is not on the daemon's PATH",
      "it needs the unshare command (from util-linux), which is not on the daemon's PATH",
      "it needs the hostname command (from hostname), which is not on the daemon's PATH",
      "it needs the sh command (from a POSIX shell), which is not on the daemon's PATH",
    ]);
  });
});

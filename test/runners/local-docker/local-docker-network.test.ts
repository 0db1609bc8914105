/**
 * local:docker's network side in-process against the real engine, with a fake shaper behind the real
 * interface: two networks per run (instances on both, the sync service on the control one only), a
 * hostname per instance, the controller reaching each instance's namespace and data interface, and the
 * failure rule (a refused configuration ends that instance as failure, and the run at once).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { build } from 'esbuild';
import pino from 'pino';
import { nodeBundleOptions } from '../../../builders/node-bundle.ts';
import { RuntimeImageProvider } from '../../../builders/runtime-image.ts';
import type { ResolvedGroup } from '../../../core/run.ts';
import type { DockerEngine } from '../../../docker/docker-engine.ts';
import { daemonLabel, labelFilter, roleLabel, runIdLabel } from '../../../docker/labels.ts';
import { LocalDockerRunner } from '../../../runners/local-docker/local-docker-runner.ts';
import type { RunInput } from '../../../runners/runner.ts';
import { SyncServiceBundle } from '../../../runners/sync-service-bundle.ts';
import { buildTestImage, connectEngine, removeScope, testRuntimeDaemonId, testScope } from '../../docker/docker-fixtures.ts';
import { MemoryTaskLog } from '../../helpers/memory-task-log.ts';
import { FakeNetworkShaper } from '../network/fake-network-shaper.ts';

const run = promisify(execFile);
const logger = pino({ level: 'silent' });
const suffix = randomBytes(4).toString('hex');
// One daemon id per test: a test's leftovers sweep must not see the other's run, which runs concurrently.
const daemonIds = { shape: `tests-network-shape-${suffix}`, refuse: `tests-network-refuse-${suffix}` };
const scope = testScope('network');
let engine: DockerEngine;
let scratch: string;
let image: string;
let runtimeImages: RuntimeImageProvider;

before(async () => {
  engine = await connectEngine();
  runtimeImages = new RuntimeImageProvider(engine, { daemonId: testRuntimeDaemonId });
  const runtime = await runtimeImages.ensure({ log: () => undefined });
  scratch = await mkdtemp(path.join(os.tmpdir(), 'tg-local-docker-network-'));
  const bundle = await build({
    ...nodeBundleOptions,
    entryPoints: [path.join(import.meta.dirname, 'network-instance.ts')],
    write: false,
  });
  image = await buildTestImage(engine, {
    base: runtime.imageId,
    entrypoint: ['node', '/plan/bundle.mjs'],
    files: [{ name: 'bundle.mjs', content: bundle.outputFiles[0]?.text ?? '' }],
    tag: `testground-test/network-instance:${suffix}`,
    labels: scope.labels,
  });
});

after(async () => {
  if (engine) {
    for (const daemonId of Object.values(daemonIds)) {
      await removeScope(engine, labelFilter({ [daemonLabel]: daemonId }));
    }
    await removeScope(engine, scope.filter);
  }
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

const group = (id: string, instances = 1): ResolvedGroup => ({
  id,
  instances,
  builder: 'docker:node',
  buildConfig: {},
  resources: {},
  testParams: {},
  dependencies: [],
});

function runInput(
  groups: ResolvedGroup[],
  runConfig: Record<string, string> = {},
): RunInput & { log: MemoryTaskLog } {
  const runId = `t${randomBytes(5).toString('hex')}`;
  return {
    runId,
    run: {
      id: 'default',
      plan: 'network-test',
      testCase: 'case',
      builder: 'docker:node',
      runner: 'local:docker',
      totalInstances: groups.reduce((sum, g) => sum + g.instances, 0),
      runConfig,
      timeoutMs: 120_000,
      disableMetrics: true,
      groups,
    },
    artifacts: new Map(groups.map((g) => [g.id, { kind: 'image', imageId: image, cached: false }])),
    outputsDir: path.join(scratch, runId, 'outputs'),
    tempDir: path.join(scratch, runId, 'temp'),
    startTime: new Date(),
    log: new MemoryTaskLog(),
    signal: new AbortController().signal,
  };
}

const newRunner = (shaper: FakeNetworkShaper, daemonId: string): LocalDockerRunner =>
  new LocalDockerRunner({
    engine,
    runtime: runtimeImages,
    syncService: new SyncServiceBundle(path.join(scratch, 'sync-service')),
    daemonId,
    logger,
    networkShaper: shaper,
  });

describe('local:docker networks and the network controller', { concurrency: true }, () => {
  it('puts instances on a data and a control network, the sync service on the control one, and shapes each instance in its own namespace', async () => {
    const shaper = new FakeNetworkShaper();
    const input = runInput([group('shape', 2)], { keep_containers: 'true' });
    const filter = labelFilter({ [runIdLabel]: input.runId });
    // What the controller hands the shaper must be real: the interface, inside that namespace, holds an
    // address of the data subnet. And while the instance runs, what each container is attached to.
    const interfaceAddresses: string[] = [];
    const attachments = new Map<string, string[]>();
    shaper.behaviour = async (target) => {
      assert.equal(target.namespace.kind, 'pid');
      const pid = target.namespace.kind === 'pid' ? target.namespace.pid : 0;
      const { stdout } = await run('nsenter', [
        '-t',
        String(pid),
        '-n',
        'ip',
        '-o',
        '-4',
        'addr',
        'show',
        'dev',
        target.dataInterface,
      ]);
      interfaceAddresses.push(/inet ([\d.]+)\//.exec(stdout)?.[1] ?? stdout);
      for (const container of await engine.listContainers(filter, { all: false })) {
        const state = await engine.inspectContainer(container.id);
        if (state.running) attachments.set(state.name, Object.keys(state.ipAddresses).sort());
      }
    };
    const { instances } = await newRunner(shaper, daemonIds.shape).run(input);
    assert.deepEqual(
      instances.map((instance) => instance.outcome),
      ['success', 'success'],
      input.log.text(),
    );

    const log = input.log.text();
    const [, dataSubnet, controlSubnet] =
      /network tg-\w+ with subnet ([\d./]+) \(the data network, TEST_SUBNET\); control network tg-\w+-control with subnet ([\d./]+)/.exec(
        log,
      ) ?? [];
    assert.ok(dataSubnet && controlSubnet, log);
    assert.match(
      controlSubnet,
      /^10\.(20[89]|21\d|22[0-3])\./,
      'the control network comes from its own pool',
    );

    // Kept reachable: the sync service only, not the control subnet, whose gateway is the host.
    const syncAddress = /sync service ready \(.*?\) at ([\d.]+),/.exec(log)?.[1] ?? '';
    assert.equal(
      syncAddress.split('.').slice(0, 2).join('.'),
      controlSubnet.split('.').slice(0, 2).join('.'),
      `the sync service's address ${syncAddress} is on the control network ${controlSubnet}`,
    );
    assert.deepEqual(shaper.applied.map((entry) => entry.target.label).sort(), ['shape[0]', 'shape[1]']);
    for (const { target, config } of shaper.applied) {
      assert.equal(target.dataSubnet, dataSubnet);
      assert.deepEqual(target.keepReachable, [{ subnet: `${syncAddress}/32` }]);
      assert.equal(target.hostAddresses?.length, 2, 'the gateways of the data and control networks');
      assert.equal(config.default.latency, 20_000_000);
      assert.equal(config.default.bandwidth, 10_000_000);
    }
    const reported = [0, 1].map((index) => {
      const line = new RegExp(`shape\\[${index}\\] stdout: .*configured: host (\\S+) data ([\\d.]+)`).exec(
        log,
      );
      return { hostname: line?.[1], ip: line?.[2] };
    });
    assert.deepEqual(
      reported.map((entry) => entry.hostname),
      ['shape-0', 'shape-1'],
      'each instance has its own hostname',
    );
    assert.deepEqual(
      interfaceAddresses.sort(),
      reported.map((entry) => entry.ip).sort(),
      'the shaper got the interface that holds the instance’s data address',
    );
    assert.deepEqual(
      shaper.released.map((target) => target.label).sort(),
      ['shape[0]', 'shape[1]'],
      'released when the instances ended',
    );

    const networks = await engine.listNetworks(filter);
    assert.deepEqual(
      networks.map((network) => [network.name, network.labels[roleLabel], network.subnets]).sort(),
      [
        [`tg-${input.runId}`, 'network', [dataSubnet]],
        [`tg-${input.runId}-control`, 'control-network', [controlSubnet]],
      ],
    );
    const networksOf = [`tg-${input.runId}`, `tg-${input.runId}-control`];
    assert.deepEqual(
      attachments.get(`tg-${input.runId}-sync`),
      [networksOf[1]],
      'the sync service: control only',
    );
    const instanceAttachments = [...attachments].filter(([name]) =>
      name.startsWith(`tg-${input.runId}-shape-`),
    );
    assert.ok(instanceAttachments.length > 0, JSON.stringify([...attachments]));
    for (const [, attachedTo] of instanceAttachments)
      assert.deepEqual(attachedTo, networksOf, 'instances: both');
    assert.deepEqual(await newRunner(shaper, daemonIds.shape).removeLeftovers(new Set()), {
      containers: 3,
      networks: 2,
    });
  });

  it('ends a refused instance as failure naming the key, and stops the rest of the run at once', async () => {
    const shaper = new FakeNetworkShaper();
    const input = runInput([group('refuse'), group('wait')]);
    const started = performance.now();
    const { instances } = await newRunner(shaper, daemonIds.refuse).run(input);
    assert.ok(
      performance.now() - started < 60_000,
      `took ${performance.now() - started} ms, not the run timeout`,
    );
    const byGroup = Object.fromEntries(instances.map((instance) => [instance.group, instance]));
    assert.equal(byGroup.refuse?.outcome, 'failure', input.log.text());
    assert.match(
      byGroup.refuse?.reason ?? '',
      /^network configuration refused: default\.latency: expected whole nanoseconds \(a Go time\.Duration, like 50000000 for 50 ms\), got 1\.5$/,
    );
    assert.equal(byGroup.wait?.outcome, 'failure');
    assert.match(
      byGroup.wait?.reason ?? '',
      /^stopped because refuse\[0\]'s network configuration was refused \(network configuration refused: default\.latency/,
    );
    assert.match(input.log.text(), /^ERROR refuse\[0\]: network configuration refused: default\.latency: /m);
    assert.match(
      input.log.text(),
      /^refuse\[0\] stderr: testground: network configuration refused: default\.latency: /m,
    );
    assert.deepEqual(shaper.applied, [], 'nothing was applied');
    const runErr = await readFile(path.join(input.outputsDir, 'refuse', '0', 'run.err'), 'utf8');
    assert.match(runErr, /testground: network configuration refused: default\.latency: /);
    assert.deepEqual(
      await engine.listNetworks(labelFilter({ [runIdLabel]: input.runId })),
      [],
      'both networks removed',
    );
  });
});

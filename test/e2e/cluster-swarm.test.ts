/**
 * cluster:swarm on the real 3-node swarm of scripts/swarm-cluster.sh (three Docker engines in network
 * namespaces, a TLS registry), through the real CLI and daemon: placement over the nodes, outputs back
 * from every node, outcomes, a node killed mid-run, an unplaceable group, a daemon killed mid-run.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DockerEngine } from '../../docker/docker-engine.ts';
import { DockerSwarm } from '../../docker/docker-swarm.ts';
import { daemonLabel, labelFilter, roleLabel, runIdLabel } from '../../docker/labels.ts';
import { readTgz } from '../helpers/archive.ts';
import { runSingle, taskIdOf, taskOf, waitForState } from '../helpers/daemon-api.ts';
import { runCli, scratchDir, startDaemonProcess, waitFor, type DaemonProcess } from '../helpers/processes.ts';
import {
  ensureSwarmCluster,
  killSwarmNode,
  registryRequests,
  type SwarmCluster,
} from '../helpers/swarm-cluster.ts';

const swarm = ['--builder', 'docker:node', '--runner', 'cluster:swarm'];

describe('cluster:swarm on a real 3-node swarm', () => {
  let cluster: SwarmCluster;
  let nodes: DockerEngine[];
  let daemon: DaemonProcess;
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  let home: string;
  const daemonEnv = (): Record<string, string> => ({
    TESTGROUND_SWARM_MANAGER: cluster.manager,
    TESTGROUND_REGISTRY: cluster.registry,
  });
  before(async () => {
    cluster = await ensureSwarmCluster();
    nodes = cluster.nodeSockets.map((socketPath) => new DockerEngine({ socketPath }));
    scratch = await scratchDir('swarm');
    home = path.join(scratch.dir, 'home');
    daemon = await startDaemonProcess({ home, env: daemonEnv() });
  });
  after(async () => {
    await daemon?.stop();
    await scratch?.remove();
  });

  /** The run's instance containers on each node, by node index (0 = the manager). */
  const instancesByNode = async (runId: string): Promise<string[][]> =>
    Promise.all(
      nodes.map(async (engine) =>
        (
          await engine.listContainers(labelFilter({ [runIdLabel]: runId, [roleLabel]: 'instance' }), {
            all: true,
          })
        ).map((container) => container.name),
      ),
    );
  /** Everything of the run any of the given nodes still has: containers and networks. */
  const leftovers = async (runId: string, on: DockerEngine[] = nodes): Promise<string[]> => {
    const found = await Promise.all(
      on.map(async (engine, index) => [
        ...(await engine.listContainers(labelFilter({ [runIdLabel]: runId }), { all: true })).map(
          (container) => `node ${index + 1}: container ${container.name}`,
        ),
        ...(await engine.listNetworks(labelFilter({ [runIdLabel]: runId }))).map(
          (network) => `node ${index + 1}: network ${network.name}`,
        ),
      ]),
    );
    return found.flat();
  };
  const nothingLeft = (runId: string, on?: DockerEngine[]): Promise<true> =>
    waitFor(
      `nothing of run ${runId} to remain on the nodes`,
      async () => ((await leftovers(runId, on)).length === 0 ? true : undefined),
      60_000,
    );

  it('runs the walkthrough (example/sync, 30 instances) over all 3 nodes, collects 30 run.out files and leaves nothing', async () => {
    const archive = path.join(scratch.dir, 'swarm-walkthrough.tgz');
    let runId: string | undefined;
    const placed = new Map<string, number>();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        if (runId) {
          const byNode = await instancesByNode(runId).catch(() => []);
          byNode.forEach((names, node) => names.forEach((name) => placed.set(name, node)));
        }
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    })();
    const result = await runSingle(
      daemon.url,
      'example',
      'sync',
      [...swarm, '--instances', '30', '--wait', '--collect', '--collect-file', archive],
      (stdout) => {
        runId ??= /run (\w+) queued/.exec(stdout)?.[1];
      },
    );
    watching = false;
    await watcher;
    assert.equal(result.code, 0, `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
    assert.match(result.stdout, /^single: 30\/30 ok$/m);
    assert.ok(runId);
    assert.equal(
      placed.size,
      30,
      `every instance container was seen on a node: ${[...placed.keys()].join(', ')}`,
    );
    const perNode = [0, 1, 2].map((node) => [...placed.values()].filter((where) => where === node).length);
    assert.ok(
      perNode.every((count) => count > 0),
      `instances ran on all 3 nodes: ${perNode.join(', ')}`,
    );
    const entries = await readTgz(archive);
    const runOuts = [...entries.keys()].filter((name) => name.endsWith('/run.out'));
    assert.equal(runOuts.length, 30, `30 run.out files in the archive: ${[...entries.keys()].join(', ')}`);
    const finishes = runOuts.filter((name) =>
      /"type":"finish","outcome":"ok"|"outcome":"ok"/.test(entries.get(name)!),
    );
    assert.equal(finishes.length, 30, 'each run.out records its instance finishing ok');
    // Each instance's phases as the runner saw them (docs/metrics.md).
    for (const instance of (await taskOf(daemon.url, taskIdOf(result.stdout))).result?.instances ?? []) {
      const names = (instance.phases ?? []).map((phase) => phase.name);
      assert.deepEqual(
        [names[0], names.at(-1), names.includes('started'), names.includes('network-initialized')],
        ['created', 'ended', true, true],
        `${instance.group}[${instance.index}]: ${names.join(', ')}`,
      );
    }
    await nothingLeft(runId);
  });

  it('healthcheck reports the manager, each node with its state and resources, and the registry', async () => {
    const result = await runCli(['--endpoint', daemon.url, 'healthcheck', '--runner', 'cluster:swarm']);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /^ok {3}cluster:swarm manager: .* is a manager of an active swarm/m);
    for (const hostname of cluster.nodeHostnames) {
      assert.match(
        result.stdout,
        new RegExp(
          `^ok {3}cluster:swarm node ${hostname}: (manager|worker).* at 10\\.240\\.77\\.\\d+: ready, active; \\d+ CPUs, \\d+ MiB$`,
          'm',
        ),
      );
    }
    assert.match(
      result.stdout,
      new RegExp(`^ok {3}cluster:swarm registry: ${cluster.registry} answers$`, 'm'),
    );
    assert.match(
      result.stdout,
      /^ok {3}cluster:swarm leftovers: no services or networks left by ended runs$/m,
    );

    // What a dead daemon of this id left: found, then removed by --fix.
    const daemonId = (await readFile(path.join(home, 'daemon-id'), 'utf8')).trim();
    const manager = new DockerSwarm({ endpoint: cluster.manager });
    await manager.createNetwork({
      name: 'tg-gone0run',
      subnet: '10.207.240.0/24',
      driver: 'overlay',
      attachable: true,
      labels: { [daemonLabel]: daemonId, [runIdLabel]: 'gone0run', [roleLabel]: 'network' },
    });
    const found = await runCli(['--endpoint', daemon.url, 'healthcheck', '--runner', 'cluster:swarm']);
    assert.equal(found.code, 1, found.stdout);
    assert.match(found.stdout, /^FAIL cluster:swarm leftovers: left by ended runs: tg-gone0run$/m);
    const fixed = await runCli([
      '--endpoint',
      daemon.url,
      'healthcheck',
      '--runner',
      'cluster:swarm',
      '--fix',
    ]);
    assert.equal(fixed.code, 0, fixed.stdout);
    assert.match(fixed.stdout, /fixed: removed 0 services and 1 networks/);
    assert.deepEqual(await manager.listNetworks(labelFilter({ [runIdLabel]: 'gone0run' })), []);
  });

  it('removes every service, network and container of a canceled run from every node', async () => {
    const id = taskIdOf(
      (await runSingle(daemon.url, 'placebo', 'stall', [...swarm, '--instances', '3', '--timeout', '5m']))
        .stdout,
    );
    await waitFor(
      'the 3 instances to run',
      async () => ((await instancesByNode(id)).flat().length === 3 ? true : undefined),
      120_000,
    );
    const canceled = await runCli(['--endpoint', daemon.url, 'cancel', '-t', id]);
    assert.equal(canceled.code, 0, canceled.stderr);
    const task = await waitForState(daemon.url, id, 'canceled');
    assert.equal(task.outcome, 'canceled');
    await nothingLeft(id);
  });

  const placeboCases = [
    { testCase: 'failure', instance: 'failure', reason: /placebo failure/ },
    { testCase: 'crash', instance: 'crash', reason: /placebo crash/ },
    { testCase: 'stall', instance: 'timeout', reason: /run timeout 8000 ms/, extra: ['--timeout', '8s'] },
  ];
  it('reports placebo failure, crash and stall (timeout) as the local runners do, exit code 1', async () => {
    const results = await Promise.all(
      placeboCases.map((expected) =>
        runSingle(daemon.url, 'placebo', expected.testCase, [
          ...swarm,
          '--instances',
          '1',
          '--wait',
          ...(expected.extra ?? []),
        ]),
      ),
    );
    for (const [index, expected] of placeboCases.entries()) {
      const result = results[index]!;
      assert.equal(result.code, 1, `${expected.testCase}: ${result.stdout}\n${result.stderr}`);
      const task = await taskOf(daemon.url, taskIdOf(result.stdout));
      assert.equal(task.outcome, 'failure', expected.testCase);
      assert.equal(task.result?.instances[0]?.outcome, expected.instance, expected.testCase);
      assert.match(task.result?.instances[0]?.reason ?? '', expected.reason, expected.testCase);
    }
  });

  it('pushes a plan image once and each node pulls it once, however many runs use it', async () => {
    // Two more runs of the image the outcome test used, on every node.
    for (let round = 0; round < 2; round += 1) {
      const result = await runSingle(daemon.url, 'placebo', 'ok', [...swarm, '--instances', '6', '--wait']);
      assert.equal(result.code, 0, result.stdout + result.stderr);
    }
    // The registry's whole history (it may hold images of earlier daemons and builds): every image tag
    // (its content hash) was pushed once, and every node fetched each layer once. The config blob (its
    // digest is the image id, which is the tag) is small and read again by each task that starts.
    const requests = await registryRequests(cluster);
    const pushes = new Map<string, number>();
    for (const line of requests) {
      const tag = /"PUT \/v2\/(testground\/[^/]+)\/manifests\/([0-9a-f]{64}) /.exec(line);
      if (tag) pushes.set(`${tag[1]}:${tag[2]}`, (pushes.get(`${tag[1]}:${tag[2]}`) ?? 0) + 1);
    }
    assert.ok(
      [...pushes.keys()].some((key) => key.startsWith('testground/placebo:')),
      'the placebo image was pushed',
    );
    for (const [image, count] of pushes) assert.equal(count, 1, `${image} was pushed ${count} times`);
    const configs = new Set([...pushes.keys()].map((key) => key.slice(key.indexOf(':') + 1)));
    const layerFetches = new Map<string, number>();
    for (const line of requests) {
      const blob = /^(\S+) .*"GET \/v2\/testground\/placebo\/blobs\/sha256:([0-9a-f]{64}) /.exec(line);
      if (!blob || configs.has(blob[2]!)) continue;
      const key = `${blob[1]} ${blob[2]!.slice(0, 12)}`;
      layerFetches.set(key, (layerFetches.get(key) ?? 0) + 1);
    }
    const nodesThatPulled = new Set([...layerFetches.keys()].map((key) => key.split(' ')[0]));
    assert.ok(nodesThatPulled.size >= 2, `several nodes pulled layers: ${[...nodesThatPulled].join(', ')}`);
    for (const [nodeAndLayer, count] of layerFetches) {
      assert.equal(count, 1, `node and layer ${nodeAndLayer} fetched ${count} times`);
    }
  });

  it("ends a group whose memory reservation no node can satisfy as error within 60 s, with swarm's reason", async () => {
    const composition = path.join(scratch.dir, 'too-big.toml');
    await writeFile(
      composition,
      `[global]\nplan = "placebo"\ncase = "ok"\nbuilder = "docker:node"\nrunner = "cluster:swarm"\ntotal_instances = 1\n\n[[groups]]\nid = "huge"\nresources = { memory = "1TiB" }\ninstances = { count = 1 }\n`,
    );
    const started = Date.now();
    const result = await runCli([
      '--endpoint',
      daemon.url,
      'run',
      'composition',
      '-f',
      composition,
      '--wait',
    ]);
    const tookMs = Date.now() - started;
    assert.notEqual(result.code, 0, result.stdout + result.stderr);
    const task = await taskOf(daemon.url, taskIdOf(result.stdout));
    assert.equal(task.outcome, 'error');
    assert.match(task.error ?? '', /cannot be placed.*(insufficient resources|no suitable node)/);
    assert.ok(tookMs < 60_000, `ended within 60 s (took ${tookMs} ms)`);
    await nothingLeft(task.id);
  });

  it('after a SIGKILL of the daemon mid-run, the restarted daemon leaves no service, network or container of the run on any node', async () => {
    const stalled = taskIdOf(
      (await runSingle(daemon.url, 'placebo', 'stall', [...swarm, '--instances', '3', '--timeout', '5m']))
        .stdout,
    );
    await waitFor(
      'the 3 instances to run',
      async () => ((await instancesByNode(stalled)).flat().length === 3 ? true : undefined),
      120_000,
    );
    daemon.child.kill('SIGKILL');
    await new Promise((resolve) => daemon.child.once('exit', resolve));
    assert.ok((await leftovers(stalled)).length > 0, 'the killed daemon left its run on the nodes');
    daemon = await startDaemonProcess({ home, env: daemonEnv() });
    const interrupted = await waitForState(daemon.url, stalled, 'complete');
    assert.equal(interrupted.outcome, 'error');
    await nothingLeft(stalled);
  });

  // Last: it takes a node down, and the next user of the cluster brings it back.
  it('ends the instances of a worker node killed mid-run as crash naming the node; the run fails, the daemon goes on, the other nodes are left clean', async () => {
    let runId: string | undefined;
    const running = runSingle(
      daemon.url,
      'placebo',
      'sleep',
      [...swarm, '--instances', '6', '--test-param', 'seconds=30', '--wait'],
      (stdout) => {
        runId ??= /run (\w+) queued/.exec(stdout)?.[1];
      },
    );
    const byNode = await waitFor(
      'all 6 instances to run, some on node 3',
      async () => {
        if (!runId) return undefined;
        const found = await instancesByNode(runId);
        return found.flat().length === 6 && found[2]!.length > 0 ? found : undefined;
      },
      120_000,
    );
    await killSwarmNode(3);
    const result = await running;
    assert.equal(result.code, 1, result.stdout + result.stderr);
    const task = await taskOf(daemon.url, taskIdOf(result.stdout));
    assert.equal(task.outcome, 'failure');
    const instances = task.result?.instances ?? [];
    const crashed = instances.filter((instance) => instance.outcome === 'crash');
    assert.equal(crashed.length, byNode[2]!.length, `the ${byNode[2]!.length} instance(s) on node 3 crashed`);
    for (const instance of crashed) assert.match(instance.reason ?? '', /node tgsw-n3 .*went down/);
    assert.equal(
      instances.filter((instance) => instance.outcome === 'success').length,
      6 - crashed.length,
      'the instances on the surviving nodes succeeded',
    );
    // The daemon keeps serving.
    assert.equal((await taskOf(daemon.url, task.id)).id, task.id);
    await nothingLeft(task.id, nodes.slice(0, 2));
  });
});

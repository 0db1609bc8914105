/**
 * The swarm seam against the real 3-node swarm of scripts/swarm-cluster.sh: overlay networks, services
 * placed on nodes that pull their image from the registry by digest, host-mode published ports, service
 * logs gathered from the nodes, scheduling failures, scaling and removal.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { packContext } from '../../docker/build-context.ts';
import { DockerEngine } from '../../docker/docker-engine.ts';
import { DockerSwarm } from '../../docker/docker-swarm.ts';
import { SubnetInUseError } from '../../docker/engine-errors.ts';
import { labelFilter, runIdLabel } from '../../docker/labels.ts';
import { RegistryClient } from '../../docker/registry-client.ts';
import type { ServiceSpec, TaskState } from '../../docker/swarm-client.ts';
import { waitFor } from '../helpers/processes.ts';
import { ensureSwarmCluster, type SwarmCluster } from '../helpers/swarm-cluster.ts';
import { connectEngine, randomSubnet, removeScope, testRuntimeImage, testScope } from './docker-fixtures.ts';

const scope = testScope('swarm');
let cluster: SwarmCluster;
let swarm: DockerSwarm;
let nodeEngines: DockerEngine[];
let image: string;
let networkName: string;

// What the probe does is chosen by its first argument: serve (a TCP greeting), talk (both streams, exit 3), tick.
const probeScript = `
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
const mode = process.argv[2];
if (mode === 'serve') {
  writeFileSync('/outputs/probe', 'written');
  createServer((socket) =>
    socket.end(JSON.stringify({ hostname: os.hostname(), probe: process.env.TG_PROBE }) + '\\n'),
  ).listen(8080, () => console.log('listening'));
} else if (mode === 'talk') {
  process.stdout.write('to stdout\\n');
  process.stderr.write('to stderr\\n');
  process.exitCode = 3;
} else if (mode === 'tick') {
  let count = 0;
  setInterval(() => console.log('tick ' + ++count), 200);
}
`;

/**
 * The probe image in the cluster's registry, tagged by what it is made of: built and pushed only when the
 * registry lacks it, so nodes keep it cached across test runs.
 */
async function ensureProbeImage(engine: DockerEngine, registry: string): Promise<string> {
  const runtime = await testRuntimeImage(engine);
  const dockerfile = `FROM ${runtime.ref}\nCOPY probe.mjs /probe.mjs\n`;
  const tag = createHash('sha256')
    .update(runtime.imageId)
    .update(dockerfile)
    .update(probeScript)
    .digest('hex');
  const repo = 'tg-tests/swarm-probe';
  const client = new RegistryClient(registry);
  const present = await client.manifestDigest(repo, tag.slice(0, 24));
  if (present) return `${registry}/${repo}@${present}`;
  const ref = `${registry}/${repo}:${tag.slice(0, 24)}`;
  await engine.buildImage(
    {
      context: {
        tar: packContext([
          { type: 'content', name: 'Dockerfile', content: dockerfile },
          { type: 'content', name: 'probe.mjs', content: probeScript },
        ]),
      },
      tags: [ref],
      labels: scope.labels,
    },
    () => undefined,
  );
  const { digest } = await engine.pushImage(ref);
  return `${registry}/${repo}@${digest}`;
}

before(async () => {
  cluster = await ensureSwarmCluster();
  const engine = await connectEngine();
  image = await ensureProbeImage(engine, cluster.registry);
  swarm = new DockerSwarm({ endpoint: cluster.manager });
  nodeEngines = cluster.nodeSockets.map((socketPath) => new DockerEngine({ socketPath }));
  // What a task's node would do before starting it; done here, a fresh cluster's first pull (the runtime's
  // layers) does not count against the tests' deadlines.
  await Promise.all(nodeEngines.map((node) => node.pullImage(image)));
  networkName = `${scope.runId}-net`;
  await swarm.createNetwork({
    name: networkName,
    subnet: randomSubnet().subnet,
    driver: 'overlay',
    attachable: true,
    labels: scope.labels,
  });
});

after(async () => {
  if (swarm) {
    const services = await swarm.listServices(scope.filter);
    await Promise.all(services.map((service) => swarm.removeService(service.id)));
    // The nodes remove a removed service's containers on their own, a moment later; the networks wait for them.
    for (const engine of nodeEngines) {
      await waitFor('the nodes to remove the services containers', async () =>
        (await engine.listContainers(scope.filter, { all: true })).length === 0 ? true : undefined,
      ).catch(() => removeScope(engine, scope.filter));
    }
    const networks = await swarm.listNetworks(scope.filter);
    await Promise.all(networks.map((network) => swarm.removeNetwork(network.id)));
  }
  await removeScope(await connectEngine(), scope.filter);
});

const name = (what: string): string => `${scope.runId}-${what}`;

function serviceSpec(what: string, overrides: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    name: name(what),
    image,
    labels: scope.labels,
    containerLabels: { ...scope.labels, 'testground.test': what },
    env: {},
    entrypoint: ['node', '/probe.mjs'],
    networks: [{ name: networkName }],
    ...overrides,
  };
}

async function taskOf(
  serviceId: string,
  until: (task: TaskState) => boolean,
  what: string,
): Promise<TaskState> {
  return waitFor(what, async () => (await swarm.listTasks([serviceId])).find(until), 25_000);
}

async function engineOfNode(nodeId: string): Promise<{ engine: DockerEngine; address: string }> {
  const node = (await swarm.listNodes()).find((candidate) => candidate.id === nodeId);
  const index = cluster.nodeHostnames.indexOf(node?.hostname ?? '');
  const engine = nodeEngines[index];
  assert.ok(node && engine, `node ${nodeId} is one of ${cluster.nodeHostnames.join(', ')}`);
  return { engine, address: node.address };
}

function readGreeting(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = connect({ host, port });
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

describe('DockerSwarm', { concurrency: true }, () => {
  it('talks to the manager of an active swarm', async () => {
    const membership = await swarm.swarmMembership();
    assert.equal(membership.state, 'active');
    assert.equal(membership.isManager, true);
    assert.match(membership.nodeId, /^\w{25}$/);
    assert.equal(swarm.endpoint, cluster.manager);
  });

  it('lists the 3 ready nodes with their addresses and resources', async () => {
    const nodes = await swarm.listNodes();
    assert.deepEqual(nodes.map((node) => node.hostname).sort(), cluster.nodeHostnames);
    assert.deepEqual(nodes.map((node) => node.address).sort(), [
      '10.240.77.11',
      '10.240.77.12',
      '10.240.77.13',
    ]);
    for (const node of nodes) {
      assert.equal(node.state, 'ready', `${node.hostname}: ${node.message}`);
      assert.equal(node.availability, 'active');
      assert.ok(node.nanoCpus >= 1e9, `${node.hostname} has ${node.nanoCpus} nano CPUs`);
      assert.ok(node.memoryBytes > 2 ** 27, `${node.hostname} has ${node.memoryBytes} bytes`);
    }
    const managers = nodes.filter((node) => node.role === 'manager');
    assert.deepEqual(
      managers.map((node) => [node.hostname, node.leader]),
      [['tgsw-n1', true]],
    );
  });

  it('refuses an overlay subnet another overlay network holds, and keeps no half-made network', async () => {
    const { subnet } = randomSubnet();
    await swarm.createNetwork({ name: name('holder'), subnet, driver: 'overlay', labels: scope.labels });
    await assert.rejects(
      swarm.createNetwork({ name: name('overlapping'), subnet, driver: 'overlay', labels: scope.labels }),
      (error: Error) => {
        assert.ok(error instanceof SubnetInUseError, `${error.name}: ${error.message}`);
        assert.match(error.message, new RegExp(`${name('holder')} \\(${subnet.replace(/\./g, '\\.')}\\)`));
        return true;
      },
    );
    const names = (await swarm.listNetworks(scope.filter)).map((network) => network.name);
    assert.ok(names.includes(name('holder')));
    assert.ok(!names.includes(name('overlapping')), `left: ${names.join(', ')}`);
  });

  it('publishes a port in host mode on the node its task runs on, with env, hostname, volume and network', async () => {
    const id = await swarm.createService(
      serviceSpec('serve', {
        args: ['serve'],
        env: { TG_PROBE: 'probe-value' },
        hostname: 'probe-host',
        publishPort: 8080,
        mounts: [{ type: 'volume', target: '/outputs' }],
        networks: [{ name: networkName, aliases: ['probe-alias'] }],
        memoryBytes: 256 * 2 ** 20,
        nanoCpus: 500_000_000,
      }),
    );
    const task = await taskOf(
      id,
      (candidate) => candidate.state === 'running' && candidate.publishedPorts.length > 0,
      'the serve task to run with its port published',
    );
    assert.equal(task.containerLabels['testground.test'], 'serve');
    assert.equal(task.exitCode, null);
    const [port] = task.publishedPorts;
    assert.equal(port?.target, 8080);
    const { engine, address } = await engineOfNode(task.nodeId);
    // The port is open once the program listens, a moment after the task counts as running.
    const greeting = await waitFor(
      'the probe to answer',
      () => readGreeting(address, port?.published ?? 0).catch(() => undefined),
      20_000,
    );
    assert.deepEqual(JSON.parse(greeting), { hostname: 'probe-host', probe: 'probe-value' });
    const container = await engine.inspectContainer(task.containerId);
    assert.equal(container.labels[runIdLabel], scope.runId);
    assert.ok(
      container.ipAddresses[networkName],
      `attached to ${Object.keys(container.ipAddresses).join(', ')}`,
    );

    // Scaled to 0, the task stops; its container stays on the node until the service goes.
    await swarm.scaleService(id, 0);
    const shut = await taskOf(
      id,
      (candidate) => candidate.id === task.id && candidate.state === 'shutdown',
      'the task to stop',
    );
    const stopped = await engine.inspectContainer(task.containerId);
    assert.equal(stopped.running, false);
    // Killed at once (no grace period), and the container's exit code is the task's.
    assert.equal(shut.exitCode, stopped.exitCode);
    assert.equal(stopped.exitCode, 137);
    await swarm.removeService(id);
    await waitFor(
      'the node to remove the container',
      async () =>
        (
          await engine.listContainers(
            labelFilter({ [runIdLabel]: scope.runId, 'testground.test': 'serve' }),
            {
              all: true,
            },
          )
        ).length === 0
          ? true
          : undefined,
      20_000,
    );
    assert.deepEqual(await swarm.listTasks([id]), []);
  });

  it('gathers a finished task’s stdout and stderr apart, and its exit code', async () => {
    const id = await swarm.createService(serviceSpec('talk', { args: ['talk'] }));
    const task = await taskOf(id, (candidate) => candidate.state === 'failed', 'the talk task to fail');
    assert.equal(task.exitCode, 3);
    assert.equal(task.error, 'task: non-zero exit (3)');
    let stdout = '';
    let stderr = '';
    const logs = await swarm.serviceLogs(id, {
      follow: false,
      onStdout: (chunk) => void (stdout += chunk.toString()),
      onStderr: (chunk) => void (stderr += chunk.toString()),
    });
    await logs.ended;
    assert.equal(stdout, 'to stdout\n');
    assert.equal(stderr, 'to stderr\n');
  });

  it('follows a running task’s output live until closed', async () => {
    const id = await swarm.createService(serviceSpec('tick', { args: ['tick'] }));
    let stdout = '';
    const logs = await swarm.serviceLogs(id, {
      follow: true,
      onStdout: (chunk) => void (stdout += chunk.toString()),
      onStderr: () => undefined,
    });
    // Lines written after the stream was opened arrive while the task goes on.
    await waitFor('three ticks', async () => (/tick 3\n/.test(stdout) ? true : undefined), 25_000);
    logs.close();
    await logs.ended;
    assert.match(stdout, /^tick 1\ntick 2\ntick 3\n/);
    await swarm.removeService(id);
  });

  it('reports a task no node can take with swarm’s reason', async () => {
    const id = await swarm.createService(serviceSpec('huge', { args: ['tick'], memoryBytes: 2 ** 40 }));
    const task = await taskOf(
      id,
      (candidate) => candidate.error !== '',
      'the scheduler to give up on the task',
    );
    assert.equal(task.state, 'pending');
    assert.equal(task.nodeId, '');
    assert.equal(task.error, 'no suitable node (insufficient resources on 3 nodes)');
    assert.equal(task.exitCode, null);
    await swarm.removeService(id);
  });

  it('lists services by label, and removing one that is gone is success', async () => {
    const id = await swarm.createService(
      serviceSpec('listed', {
        args: ['tick'],
        constraints: ['node.role==manager'],
      }),
    );
    const listed = await swarm.listServices(labelFilter({ [runIdLabel]: scope.runId }));
    assert.ok(listed.some((service) => service.id === id && service.name === name('listed')));
    assert.equal(listed.find((service) => service.id === id)?.labels[runIdLabel], scope.runId);
    const task = await taskOf(id, (candidate) => candidate.nodeId !== '', 'the task to be placed');
    const { address } = await engineOfNode(task.nodeId);
    assert.equal(address, '10.240.77.11', 'the constraint placed it on the manager');
    await swarm.removeService(id);
    await swarm.removeService(id);
    await swarm.removeService('tg-no-such-service');
    assert.deepEqual(await swarm.listServices(labelFilter({ 'testground.no-such-label': 'x' })), []);
  });
});

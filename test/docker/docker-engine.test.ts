/**
 * The Docker seam against the real engine: networks, containers (env, mounts, limits, ports), complete
 * demultiplexed output, exit codes and OOM kills, and the quirks it absorbs (304, 404, 409).
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DependencyError, TestgroundError, ValidationError } from '../../core/errors.ts';
import { packContext } from '../../docker/build-context.ts';
import { DockerEngine } from '../../docker/docker-engine.ts';
import { DockerEngineError, SubnetInUseError } from '../../docker/engine-errors.ts';
import { labelFilter, roleLabel, runIdLabel } from '../../docker/labels.ts';
import {
  connectEngine,
  randomSubnet,
  removeScope,
  runContainer,
  testRuntimeImage,
  testScope,
} from './docker-fixtures.ts';

const scope = testScope('engine');
let engine: DockerEngine;
let nodeImage: string;
let hostDir: string;

before(async () => {
  engine = await connectEngine();
  nodeImage = (await testRuntimeImage(engine)).ref;
  hostDir = await mkdtemp(path.join(os.tmpdir(), 'tg-docker-engine-'));
  // The container runs as root, the directory may belong to someone else: let it write.
  await chmod(hostDir, 0o777);
});

after(async () => {
  if (engine) await removeScope(engine, scope.filter);
  if (hostDir) await rm(hostDir, { recursive: true, force: true });
});

const name = (what: string): string => `${scope.runId}-${what}`;
const node = (script: string): string[] => ['node', '-e', script];

describe('DockerEngine', { concurrency: true }, () => {
  it('reports the engine it talks to', async () => {
    const info = await engine.info();
    assert.match(info.serverVersion, /^\d+\.\d+/);
    assert.match(info.cgroupVersion, /^[12]$/);
  });

  it('an unreachable engine is a DependencyError that says how to start one', async () => {
    const absent = new DockerEngine({ socketPath: path.join(hostDir, 'no-engine.sock') });
    await assert.rejects(absent.ping(), (error: Error) => {
      assert.ok(error instanceof DependencyError, `${error.name}: ${error.message}`);
      assert.match(error.message, /no-engine\.sock/);
      assert.match(error.message, /dockerd/);
      assert.match(error.message, /DOCKER_HOST/);
      return true;
    });
    await assert.rejects(absent.listContainers(scope.filter, { all: true }), DependencyError);
  });

  it('reaches an engine at a unix:// or tcp:// endpoint, and refuses any other', async (t) => {
    const socketPath = engine.endpoint.startsWith('unix://')
      ? engine.endpoint.slice(7)
      : '/var/run/docker.sock';
    const byUnix = new DockerEngine({ endpoint: `unix://${socketPath}` });
    assert.equal(byUnix.endpoint, `unix://${socketPath}`);
    assert.match((await byUnix.info()).serverVersion, /^\d+\.\d+/);
    // The engine listens on no TCP port here: a relay to its socket stands in for one that does.
    const relayed = new Set<Socket>();
    const relay = createServer((client) => {
      const upstream = connect(socketPath);
      relayed.add(client).add(upstream);
      client.pipe(upstream).pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      for (const socket of relayed) socket.destroy();
      relay.close();
    });
    const { port } = relay.address() as AddressInfo;
    const byTcp = new DockerEngine({ endpoint: `tcp://127.0.0.1:${port}` });
    assert.equal(byTcp.endpoint, `tcp://127.0.0.1:${port}`);
    assert.match((await byTcp.info()).serverVersion, /^\d+\.\d+/);

    for (const endpoint of [
      'ssh://user@host',
      'npipe:////./pipe/docker_engine',
      'unix://',
      'tcp://host:2375/v1.41',
    ]) {
      assert.throws(
        () => new DockerEngine({ endpoint }),
        (error: Error) => {
          assert.ok(error instanceof ValidationError, `${endpoint}: ${error.name}: ${error.message}`);
          assert.ok(error.message.includes(JSON.stringify(endpoint)), error.message);
          assert.match(error.message, /unix:\/\/\/path\/to\/docker\.sock or tcp:\/\/host:port/);
          return true;
        },
      );
    }
    assert.throws(() => new DockerEngine({ endpoint: `unix://${socketPath}`, socketPath }), ValidationError);
  });

  it('creates labelled networks, refuses an overlapping subnet, and removes networks idempotently', async () => {
    const { subnet, prefix } = randomSubnet();
    const id = await engine.createNetwork({
      name: name('net'),
      subnet,
      gateway: `${prefix}.1`,
      labels: { ...scope.labels, [roleLabel]: 'instance' },
    });
    const listed = await engine.listNetworks(
      labelFilter({ [runIdLabel]: scope.runId, [roleLabel]: 'instance' }),
    );
    assert.deepEqual(
      listed.map((network) => ({ id: network.id, name: network.name, subnets: network.subnets })),
      [{ id, name: name('net'), subnets: [subnet] }],
    );
    assert.equal(listed[0]?.labels[runIdLabel], scope.runId);

    await assert.rejects(
      engine.createNetwork({ name: name('net-overlap'), subnet: `${prefix}.128/25`, labels: scope.labels }),
      (error: Error) => {
        assert.ok(error instanceof SubnetInUseError, `${error.name}: ${error.message}`);
        // One of ours, with a stable code the API maps, like every other failure mode.
        assert.ok(error instanceof TestgroundError);
        assert.equal(error.code, 'docker_subnet_in_use');
        assert.equal(error.name, 'SubnetInUseError');
        assert.match(error.message, new RegExp(`${prefix.replaceAll('.', '\\.')}\\.128/25`));
        return true;
      },
    );

    await engine.removeNetwork(id);
    await engine.removeNetwork(id);
    const left = await engine.listNetworks(scope.filter);
    assert.ok(!left.some((network) => network.id === id), 'the network is gone');
  });

  it('runs a container with env and bind mounts, and captures stdout and stderr completely and apart', async () => {
    await writeFile(path.join(hostDir, 'input.txt'), 'from the host');
    const script = `
      process.stdout.write('first stdout\\n');
      process.stderr.write('first stderr\\n');
      const fs = require('fs');
      fs.writeFileSync('/out/written.txt', process.env.GREETING + ' ' + fs.readFileSync('/in/input.txt', 'utf8'));
      for (let i = 0; i < 2000; i++) console.log('line ' + i);
      console.error('to stderr');
      process.stdout.write('last, without a newline');
      process.exitCode = 3;`;
    const run = await runContainer(engine, {
      name: name('io'),
      image: nodeImage,
      cmd: node(script),
      env: { GREETING: 'hello=world|x' },
      labels: scope.labels,
      mounts: [
        { source: hostDir, target: '/out' },
        { source: hostDir, target: '/in', readOnly: true },
      ],
    });
    const expected = [
      'first stdout',
      ...Array.from({ length: 2000 }, (_, i) => `line ${i}`),
      'last, without a newline',
    ].join('\n');
    assert.equal(run.stdout, expected);
    assert.equal(run.stderr, 'first stderr\nto stderr\n');
    assert.equal(run.exitCode, 3);
    assert.equal(run.oomKilled, false);
    assert.equal(await readFile(path.join(hostDir, 'written.txt'), 'utf8'), 'hello=world|x from the host');
  });

  it('delivers output written before the container ends, even for an instant exit, and to a late reader', async () => {
    const run = await runContainer(engine, {
      name: name('instant'),
      image: nodeImage,
      cmd: node("process.stdout.write('at once')"),
      env: {},
      labels: scope.labels,
    });
    assert.equal(run.stdout, 'at once');
    assert.equal(run.exitCode, 0);
    // Attached only after it exited: the engine's log still has everything.
    let late = '';
    const logs = await engine.attachLogs(run.id, {
      onStdout: (chunk) => void (late += chunk.toString()),
      onStderr: (chunk) => void (late += chunk.toString()),
    });
    await logs.ended;
    assert.equal(late, 'at once');
  });

  it('close() ends an attachment to a container that is removed without being started', async () => {
    const id = await engine.createContainer({
      name: name('never-started'),
      image: nodeImage,
      cmd: node('1'),
      env: {},
      labels: scope.labels,
    });
    const logs = await engine.attachLogs(id, { onStdout: () => {}, onStderr: () => {} });
    await engine.removeContainer(id, { force: true });
    logs.close();
    await logs.ended;
  });

  it('reports an OOM kill when a process exceeds the memory limit', async () => {
    // 256 MiB of filled buffers (filling touches every page) against a 64 MiB limit without swap.
    const run = await runContainer(engine, {
      name: name('oom'),
      image: nodeImage,
      cmd: node(
        "const held = []; for (let i = 0; i < 256; i++) held.push(Buffer.alloc(1 << 20, 1)); console.log('survived', held.length)",
      ),
      env: {},
      labels: scope.labels,
      memoryBytes: 64 * 1024 * 1024,
    });
    assert.equal(run.oomKilled, true, `exit ${run.exitCode}, stdout ${run.stdout}, stderr ${run.stderr}`);
    assert.equal(run.exitCode, 137);
    assert.doesNotMatch(run.stdout, /survived/);
  });

  it('publishes ports, knows the container address, and treats repeated start/stop/kill as success', async () => {
    const { subnet, prefix } = randomSubnet();
    const network = await engine.createNetwork({ name: name('ports-net'), subnet, labels: scope.labels });
    const id = await engine.createContainer({
      name: name('server'),
      image: nodeImage,
      cmd: node(
        "require('http').createServer((q, s) => s.end('pong')).listen(5050, () => console.log('up'))",
      ),
      env: {},
      labels: { ...scope.labels, [roleLabel]: 'sync-service' },
      network: { name: name('ports-net'), aliases: ['server-alias'] },
      portBindings: [{ containerPort: 5050, hostIp: '127.0.0.1' }],
      nanoCpus: 500_000_000,
    });
    let stdout = '';
    const logs = await engine.attachLogs(id, {
      onStdout: (chunk) => void (stdout += chunk.toString()),
      onStderr: () => {},
    });
    await engine.startContainer(id);
    await engine.startContainer(id); // 304: already started
    const state = await engine.inspectContainer(id);
    assert.equal(state.running, true);
    assert.equal(state.name, name('server'));
    assert.equal(state.labels[roleLabel], 'sync-service');
    assert.ok(
      state.ipAddresses[name('ports-net')]?.startsWith(`${prefix}.`),
      JSON.stringify(state.ipAddresses),
    );
    const published = state.hostPorts.find((binding) => binding.containerPort === 5050);
    assert.ok(published && published.hostPort > 0, JSON.stringify(state.hostPorts));
    assert.equal(published.hostIp, '127.0.0.1');
    await waitFor(() => stdout.includes('up'), 10_000, 'the server to listen');
    const answer = await fetch(`http://127.0.0.1:${published.hostPort}/`, {
      signal: AbortSignal.timeout(5_000),
    });
    assert.equal(await answer.text(), 'pong');

    const listed = await engine.listContainers(
      labelFilter({ [runIdLabel]: scope.runId, [roleLabel]: 'sync-service' }),
      {
        all: false,
      },
    );
    assert.deepEqual(
      listed.map((container) => [container.id, container.name, container.state]),
      [[id, name('server'), 'running']],
    );
    const age = Date.now() - (listed[0]?.createdAt.getTime() ?? 0);
    assert.ok(age >= -5_000 && age < 120_000, `created ${age} ms ago`);

    await engine.killContainer(id);
    const exit = await engine.waitContainer(id);
    assert.deepEqual(exit, { exitCode: 137, oomKilled: false });
    await logs.ended;
    assert.equal(stdout, 'up\n');
    await engine.killContainer(id); // 409: not running
    await engine.stopContainer(id); // 304: already stopped

    await engine.removeContainer(id, { force: false });
    await engine.removeContainer(id, { force: true }); // 404: already gone
    await engine.removeNetwork(network);
    await assert.rejects(engine.inspectContainer(id), (error: Error) => {
      assert.ok(error instanceof DockerEngineError && error.statusCode === 404, error.message);
      assert.equal(error.code, 'docker_failed');
      return true;
    });
  });

  it('passes an abort through as an AbortError', async () => {
    const id = await engine.createContainer({
      name: name('sleeper'),
      image: nodeImage,
      cmd: node('setTimeout(() => {}, 60_000)'),
      env: {},
      labels: scope.labels,
    });
    await engine.startContainer(id);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    await assert.rejects(engine.waitContainer(id, controller.signal), { name: 'AbortError' });
    await engine.removeContainer(id, { force: true });
  });

  it('builds images, streaming every line, and throws the builder message when a step fails', async () => {
    const lines: string[] = [];
    const tag = `testground-test/engine:${scope.runId}`;
    const imageId = await engine.buildImage(
      {
        context: {
          tar: packContext([
            {
              type: 'content',
              name: 'Dockerfile',
              content: `FROM ${nodeImage}\nARG WHO\nCOPY hello.txt /hello.txt\n`,
            },
            { type: 'content', name: 'hello.txt', content: 'hi' },
          ]),
        },
        tags: [tag],
        labels: scope.labels,
        buildArgs: { WHO: 'tests' },
      },
      (line) => lines.push(line),
    );
    assert.match(imageId, /^sha256:[0-9a-f]{64}$/);
    assert.ok(
      lines.some((line) => line.startsWith('Step 2/')),
      lines.join('\n'),
    );
    const image = await engine.inspectImage(tag);
    assert.equal(image?.id, imageId);
    assert.equal(image?.labels[runIdLabel], scope.runId);
    assert.equal(await engine.imageExists(`${tag}-absent`), false);

    await assert.rejects(
      engine.buildImage(
        {
          context: {
            tar: packContext([
              { type: 'content', name: 'Dockerfile', content: `FROM ${nodeImage}\nCOPY missing.txt /\n` },
            ]),
          },
          tags: [`${tag}-broken`],
          labels: scope.labels,
        },
        () => {},
      ),
      (error: Error) => {
        assert.ok(error instanceof DockerEngineError, `${error.name}: ${error.message}`);
        assert.match(error.message, /missing\.txt/);
        return true;
      },
    );

    await engine.removeImage(tag);
    await engine.removeImage(tag); // 404: already gone
    assert.equal(await engine.imageExists(tag), false);
  });

  it('fails a pull fast with the engine reason', async () => {
    const started = performance.now();
    await assert.rejects(engine.pullImage('testground-test/never-published:0'), (error: Error) => {
      assert.ok(error instanceof DockerEngineError, `${error.name}: ${error.message}`);
      assert.match(error.message, /^pull image testground-test\/never-published:0: \S/);
      return true;
    });
    assert.ok(performance.now() - started < 30_000);
  });
});

/**
 * Polls `condition`. A connection through the engine's port proxy made before the server listens can
 * hang instead of being refused, so the test waits for the server's own word first.
 */
async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * The registry client against the swarm cluster's real TLS registry (its CA in /etc/docker/certs.d, as
 * the engines trust it), and the engine's tag and push it checks.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DependencyError } from '../../core/errors.ts';
import { packContext } from '../../docker/build-context.ts';
import type { DockerEngine } from '../../docker/docker-engine.ts';
import { DockerEngineError } from '../../docker/engine-errors.ts';
import { RegistryClient } from '../../docker/registry-client.ts';
import { ensureSwarmCluster, type SwarmCluster } from '../helpers/swarm-cluster.ts';
import { connectEngine, removeScope, testScope } from './docker-fixtures.ts';

const scope = testScope('registry');
let cluster: SwarmCluster;
let engine: DockerEngine;
let emptyCertsDir: string;

before(async () => {
  cluster = await ensureSwarmCluster();
  engine = await connectEngine();
  emptyCertsDir = await mkdtemp(path.join(os.tmpdir(), 'tg-registry-certs-'));
});

after(async () => {
  if (engine) await removeScope(engine, scope.filter);
  if (emptyCertsDir) await rm(emptyCertsDir, { recursive: true, force: true });
});

/** A `FROM scratch` image of one file, unique to this run, so its push uploads something new. */
function buildTinyImage(tag: string): Promise<string> {
  return engine.buildImage(
    {
      context: {
        tar: packContext([
          { type: 'content', name: 'Dockerfile', content: 'FROM scratch\nCOPY hello.txt /hello.txt\n' },
          { type: 'content', name: 'hello.txt', content: `${scope.runId}\n` },
        ]),
      },
      tags: [tag],
      labels: scope.labels,
    },
    () => undefined,
  );
}

describe('RegistryClient', { concurrency: true }, () => {
  it('reaches the registry over TLS with the CA docker trusts for it', async () => {
    await new RegistryClient(cluster.registry).ping();
  });

  it('tells the digest of a pushed tag, the one the push reported, and nothing for an unknown tag', async () => {
    const repo = 'tg-tests/registry-client';
    const local = `${scope.runId}-tiny:built`;
    await buildTinyImage(local);
    await engine.tagImage(local, `${cluster.registry}/${repo}`, scope.runId);
    const pushed = `${cluster.registry}/${repo}:${scope.runId}`;
    // The tag makes a second name of the same image, which the scope's cleanup removes with it.
    assert.equal((await engine.inspectImage(pushed))?.id, (await engine.inspectImage(local))?.id);
    const lines: string[] = [];
    const { digest } = await engine.pushImage(pushed, { onLine: (line) => lines.push(line) });
    assert.match(digest, /^sha256:[0-9a-f]{64}$/);
    assert.ok(
      lines.some((line) => /Pushed|Layer already exists/.test(line)),
      lines.join('\n'),
    );

    const registry = new RegistryClient(cluster.registry);
    assert.equal(await registry.manifestDigest(repo, scope.runId), digest);
    assert.equal(await registry.manifestDigest(`${cluster.registry}/${repo}`, scope.runId), digest);
    assert.equal(await registry.manifestDigest(repo, `${scope.runId}-never-pushed`), undefined);
    assert.equal(await registry.manifestDigest('tg-tests/no-such-repository', 'x'), undefined);
  });

  it('a push to a registry that is not there fails with the engine’s reason', async () => {
    const local = `${scope.runId}-refused:built`;
    await buildTinyImage(local);
    // Nothing listens on port 1 of the registry's host: the engine gives up at once.
    await engine.tagImage(local, '10.240.77.1:1/tg-tests/refused', 'x');
    await assert.rejects(engine.pushImage('10.240.77.1:1/tg-tests/refused:x'), (error: Error) => {
      assert.ok(error instanceof DockerEngineError, `${error.name}: ${error.message}`);
      assert.match(error.message, /^push image 10\.240\.77\.1:1\/tg-tests\/refused:x: .*connection refused/);
      return true;
    });
  });

  it('an address nothing answers on is a DependencyError naming it and why', async () => {
    await assert.rejects(new RegistryClient('127.0.0.1:1').ping(), (error: Error) => {
      assert.ok(error instanceof DependencyError, `${error.name}: ${error.message}`);
      assert.match(error.message, /registry 127\.0\.0\.1:1 is unreachable .*ECONNREFUSED/);
      return true;
    });
  });

  it('without the registry’s CA, the certificate is refused, and the message says where the CA goes', async () => {
    const untrusting = new RegistryClient(cluster.registry, { certsDir: emptyCertsDir });
    await assert.rejects(untrusting.manifestDigest('tg-tests/registry-client', 'x'), (error: Error) => {
      assert.ok(error instanceof DependencyError, `${error.name}: ${error.message}`);
      assert.ok(error.message.includes(path.join(emptyCertsDir, cluster.registry, 'ca.crt')), error.message);
      return true;
    });
  });

  it('a plain-HTTP client of a TLS registry gets an answer that is no registry’s', async () => {
    await assert.rejects(new RegistryClient(cluster.registry, { insecure: true }).ping(), (error: Error) => {
      assert.ok(error instanceof DependencyError, `${error.name}: ${error.message}`);
      assert.match(error.message, /registry 10\.240\.77\.1:5000 answered GET \/v2\/ with HTTP 400/);
      return true;
    });
  });
});

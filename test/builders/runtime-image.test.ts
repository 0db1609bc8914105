/**
 * The Node runtime image on a host without a registry: built once from the host's node, reused, able to
 * run node, and able to resolve a network alias through the engine's DNS; and the pull policy: no pull
 * under `never` (the default), one attempt per daemon under `missing` and `always`, the choice told once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import type { DockerEngine } from '../../docker/docker-engine.ts';
import { daemonLabel, roleLabel } from '../../docker/labels.ts';
import { RuntimeImageProvider, type RuntimeImage } from '../../builders/runtime-image.ts';
import { LocalDockerMaintenance } from '../../runners/local-docker/local-docker-maintenance.ts';
import {
  connectEngine,
  randomSubnet,
  removeScope,
  runContainer,
  testRuntimeDaemonId,
  testScope,
} from '../docker/docker-fixtures.ts';

const scope = testScope('runtime');
let engine: DockerEngine;
let provider: RuntimeImageProvider;
let runtime: RuntimeImage;
const firstLog: string[] = [];
const secondLog: string[] = [];

before(async () => {
  engine = await connectEngine();
  provider = new RuntimeImageProvider(engine, { daemonId: testRuntimeDaemonId });
  // Two callers at once, as two groups' builds would ask: one build (or reuse) serves both.
  const [first, second] = await Promise.all([
    provider.ensure({ log: (line) => firstLog.push(line) }),
    provider.ensure({ log: (line) => secondLog.push(line) }),
  ]);
  assert.deepEqual(first, second);
  runtime = first;
});

after(async () => {
  // The runtime image stays: it is the cache every later build starts from.
  if (engine) await removeScope(engine, scope.filter);
});

describe('RuntimeImageProvider', { concurrency: true }, () => {
  it('falls back to an image built from the host node, says why, and tags and labels it', async () => {
    if (await engine.imageExists('node:20-bookworm-slim')) {
      assert.equal(runtime.origin, 'base', 'node:20-bookworm-slim is present, so it is the runtime');
      return;
    }
    assert.ok(runtime.origin === 'host-built' || runtime.origin === 'host-reused', runtime.origin);
    const tag = await provider.hostRuntimeTag();
    assert.equal(runtime.ref, tag);
    assert.match(
      tag,
      new RegExp(`^testground-runtime/node:${process.versions.node.replaceAll('.', '\\.')}-[0-9a-f]{12}$`),
    );
    // The default policy never pulls: the summary says the base is absent and why it was not pulled.
    assert.match(
      runtime.summary,
      /^base image node:20-bookworm-slim is not present locally \(not pulled under the pull policy "never" \(TESTGROUND_PULL\); set TESTGROUND_PULL=missing to let the daemon pull it\); /,
    );
    assert.ok(runtime.summary.includes(tag), runtime.summary);
    for (const log of [firstLog, secondLog]) {
      assert.ok(!log.some((line) => line.includes('pulling')), log.join('\n'));
    }
    const image = await engine.inspectImage(tag);
    assert.equal(image?.id, runtime.imageId);
    assert.equal(image?.labels[roleLabel], 'runtime');
  });

  it('builds the image from the host node, checks that node runs in it, and labels the check for the leftovers sweep', async () => {
    // A repository of its own forces a real build without touching the shared cache image.
    const repository = `testground-test/runtime-${scope.runId}`;
    const daemonId = `tests-runtime-${randomBytes(4).toString('hex')}`;
    // The real engine, except that the check container is not removed: as if the daemon died mid-check.
    const checks: string[] = [];
    const dying = Object.assign(Object.create(engine) as DockerEngine, {
      removeContainer: async (id: string) => void checks.push(id),
    });
    // `missing`: the base is absent, so it is pulled (and that fails: there is no such image anywhere).
    const fresh = new RuntimeImageProvider(dying, { repository, daemonId, pull: 'missing' });
    const log: string[] = [];
    try {
      const built = await fresh.ensure({
        baseImage: 'testground-test/no-such-base:0',
        log: (line) => log.push(line),
      });
      assert.equal(built.origin, 'host-built');
      assert.ok(built.ref.startsWith(`${repository}:${process.versions.node}-`), built.ref);
      const summary = built.summary;
      assert.match(
        summary,
        /base image testground-test\/no-such-base:0 is not available and cannot be pulled \(pull image/,
      );
      assert.ok(summary.includes(`built ${built.ref} from the host's node`), summary);
      assert.ok(
        log.some((line) => line.includes('Step 2/')),
        'build output reaches the log',
      );
      // The host-built image differs from the shared one by its tag only: same files, same hash.
      assert.equal(built.ref.split(':')[1], (await provider.hostRuntimeTag()).split(':')[1]);

      const image = await engine.inspectImage(built.ref);
      assert.equal(image?.labels[daemonLabel], daemonId, 'the image names the daemon that built it');
      assert.equal(image?.labels[roleLabel], 'runtime');

      assert.equal(checks.length, 1, 'one check container ran');
      const check = await engine.inspectContainer(checks[0]!);
      assert.match(check.name, /^testground-runtime-check-/);
      assert.equal(check.exitCode, 0, 'node ran in the fresh image');
      assert.equal(check.labels[daemonLabel], daemonId);
      assert.equal(check.labels[roleLabel], 'runtime-check');
      const sweep = (runtimeCheckMaxAgeMs?: number): LocalDockerMaintenance =>
        new LocalDockerMaintenance({
          engine,
          runtime: fresh,
          daemonId,
          ...(runtimeCheckMaxAgeMs === undefined ? {} : { runtimeCheckMaxAgeMs }),
        });
      // A young check may be one in progress: left alone. Once older than any check lives, it is a leftover.
      assert.deepEqual((await sweep().findLeftovers(new Set())).containers, []);
      const found = await sweep(0).findLeftovers(new Set());
      assert.deepEqual(
        found.containers.map((container) => container.id),
        [check.id],
      );
      assert.deepEqual(await sweep(0).removeLeftovers(new Set()), { containers: 1, networks: 0 });
      await assert.rejects(engine.inspectContainer(check.id), /no such container/i);
    } finally {
      for (const id of checks) await engine.removeContainer(id, { force: true });
      await engine.removeImage(await fresh.hostRuntimeTag(), { force: true });
    }
  });

  it('reuses the image, and does not try the failed pull again', async () => {
    const log: string[] = [];
    const again = await provider.ensure({ log: (line) => log.push(line) });
    assert.equal(again.ref, runtime.ref);
    assert.equal(again.imageId, runtime.imageId);
    if (runtime.origin !== 'base') {
      assert.equal(again.origin, 'host-reused');
      assert.ok(!log.some((line) => line.includes('pulling')), log.join('\n'));
    }
  });

  it('uses a base image that is present without building anything', async () => {
    const log: string[] = [];
    const viaBase = await new RuntimeImageProvider(engine, { daemonId: testRuntimeDaemonId }).ensure({
      baseImage: runtime.ref,
      log: (line) => log.push(line),
    });
    assert.deepEqual(viaBase, {
      ref: runtime.ref,
      imageId: runtime.imageId,
      origin: 'base',
      summary: `using ${runtime.ref} (present locally)`,
    });
    assert.deepEqual(log, []);
  });

  it('runs node as root with a writable /tmp, the host node version, and PATH set', async () => {
    const script = `
      const fs = require('fs');
      fs.writeFileSync('/tmp/probe', 'x');
      console.log(JSON.stringify({
        version: process.version,
        user: require('os').userInfo().username,
        tmp: (fs.statSync('/tmp').mode & 0o7777).toString(8),
        path: process.env.PATH,
        intl: new Intl.NumberFormat('de-DE').format(1234.5),
      }));`;
    const run = await runContainer(engine, {
      name: `${scope.runId}-node`,
      image: runtime.ref,
      cmd: ['node', '-e', script],
      env: {},
      labels: scope.labels,
    });
    assert.equal(run.exitCode, 0, run.stderr);
    const seen = JSON.parse(run.stdout) as Record<string, string>;
    if (runtime.origin !== 'base') {
      assert.deepEqual(seen, {
        version: process.version,
        user: 'root',
        tmp: '1777',
        path: '/usr/bin:/bin',
        intl: '1.234,5',
      });
    }
  });

  it("resolves another container's network alias through the engine's DNS", async () => {
    const { subnet } = randomSubnet();
    const network = `${scope.runId}-dns`;
    await engine.createNetwork({ name: network, subnet, labels: scope.labels });
    const target = await engine.createContainer({
      name: `${scope.runId}-target`,
      image: runtime.ref,
      cmd: ['node', '-e', 'setTimeout(() => {}, 60_000)'],
      env: {},
      labels: scope.labels,
      network: { name: network, aliases: ['dns-target'] },
    });
    await engine.startContainer(target);
    const address = (await engine.inspectContainer(target)).ipAddresses[network];
    assert.ok(address, 'the target has an address on the network');
    const run = await runContainer(engine, {
      name: `${scope.runId}-resolver`,
      image: runtime.ref,
      // dns.lookup is getaddrinfo, i.e. glibc's resolver reading /etc/nsswitch.conf and /etc/resolv.conf.
      cmd: [
        'node',
        '-e',
        "require('dns').lookup('dns-target', { family: 4 }, (e, a) => { if (e) throw e; console.log(a); })",
      ],
      env: {},
      labels: scope.labels,
      network: { name: network },
    });
    assert.equal(run.exitCode, 0, run.stderr);
    assert.equal(run.stdout.trim(), address);
    await engine.removeContainer(target, { force: true });
  });
});

/** The real engine, counting the pulls asked of it. */
function countingPulls(): { engine: DockerEngine; pulls: string[] } {
  const pulls: string[] = [];
  const counting = Object.assign(Object.create(engine) as DockerEngine, {
    pullImage: async (ref: string, options?: Parameters<DockerEngine['pullImage']>[1]) => {
      pulls.push(ref);
      return engine.pullImage(ref, options);
    },
  });
  return { engine: counting, pulls };
}

describe('RuntimeImageProvider pull policy', { concurrency: true }, () => {
  // Nothing listens on port 1: a pull from there fails at once, without any DNS or internet.
  const unreachable = (name: string): string => `127.0.0.1:1/testground-test/${name}-${scope.runId}:0`;

  it('never (the default) pulls nothing, whatever is missing, and tells its choice once', async () => {
    const { engine: counting, pulls } = countingPulls();
    const decisions: string[] = [];
    const provider = new RuntimeImageProvider(counting, {
      daemonId: testRuntimeDaemonId,
      onDecision: (summary) => decisions.push(summary),
    });
    assert.equal(provider.pullPolicy, 'never');
    const base = unreachable('never');
    const first = await provider.ensure({ baseImage: base, log: () => undefined });
    const second = await provider.ensure({ baseImage: base, log: () => undefined });
    assert.deepEqual(pulls, []);
    assert.equal(first.ref, runtime.origin === 'base' ? first.ref : await provider.hostRuntimeTag());
    assert.deepEqual(second, first);
    assert.deepEqual(decisions, [`runtime image: ${first.summary}`]);
    assert.match(first.summary, /is not present locally \(not pulled under the pull policy "never"/);
  });

  it('missing pulls an absent base once per daemon, and falls back to the host image saying why', async () => {
    const { engine: counting, pulls } = countingPulls();
    const provider = new RuntimeImageProvider(counting, { daemonId: testRuntimeDaemonId, pull: 'missing' });
    const base = unreachable('missing');
    const log: string[] = [];
    const first = await provider.ensure({ baseImage: base, log: (line) => log.push(line) });
    await provider.ensure({ baseImage: base, log: (line) => log.push(line) });
    assert.deepEqual(pulls, [base], 'one attempt, not one per build');
    assert.ok(
      log.includes(`runtime image: pulling ${base} (pull policy "missing" (TESTGROUND_PULL))`),
      log.join('\n'),
    );
    assert.ok(first.origin === 'host-built' || first.origin === 'host-reused', first.origin);
    assert.ok(
      first.summary.startsWith(`base image ${base} is not available and cannot be pulled (`),
      first.summary,
    );
  });

  it('missing does not pull a base the engine has; always pulls it once and keeps it when the pull fails', async () => {
    const present = unreachable('present');
    const [repo, tag] = [present.slice(0, present.lastIndexOf(':')), '0'];
    await engine.tagImage(runtime.imageId, repo, tag);
    try {
      const missing = countingPulls();
      const viaMissing = await new RuntimeImageProvider(missing.engine, {
        daemonId: testRuntimeDaemonId,
        pull: 'missing',
      }).ensure({ baseImage: present, log: () => undefined });
      assert.deepEqual(missing.pulls, []);
      assert.equal(viaMissing.summary, `using ${present} (present locally)`);

      const always = countingPulls();
      const provider = new RuntimeImageProvider(always.engine, {
        daemonId: testRuntimeDaemonId,
        pull: 'always',
      });
      const first = await provider.ensure({ baseImage: present, log: () => undefined });
      await provider.ensure({ baseImage: present, log: () => undefined });
      assert.deepEqual(always.pulls, [present]);
      assert.equal(first.origin, 'base');
      assert.equal(first.imageId, runtime.imageId);
      assert.match(
        first.summary,
        new RegExp(`^using ${present.replace(/[.]/g, '\\.')} as present locally; the pull failed \\(`),
      );
    } finally {
      await engine.removeImage(present, { force: false });
    }
  });
});

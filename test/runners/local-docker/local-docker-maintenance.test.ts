/**
 * local:docker's leftovers sweep against the real engine: what it removes (ended runs of this daemon,
 * whatever role they were labelled with, old runtime checks) and what it leaves (active runs, other
 * daemons, checks that may be in progress), and the healthcheck that reports and fixes them.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { DockerEngine } from '../../../docker/docker-engine.ts';
import { createLabels, daemonLabel, labelFilter, roleLabel, runIdLabel } from '../../../docker/labels.ts';
import { RuntimeImageProvider } from '../../../builders/runtime-image.ts';
import { LocalDockerMaintenance } from '../../../runners/local-docker/local-docker-maintenance.ts';
import {
  connectEngine,
  randomSubnet,
  removeScope,
  testRuntimeDaemonId,
  testRuntimeImage,
} from '../../docker/docker-fixtures.ts';

const suffix = randomBytes(4).toString('hex');
const daemonId = `tests-maintenance-${suffix}`;
const otherDaemonId = `tests-maintenance-other-${suffix}`;
// The check test's own daemon, so the first test's remaining containers are not its leftovers.
const checkDaemonId = `tests-maintenance-check-${suffix}`;
let engine: DockerEngine;
let image: string;
let runtimeImages: RuntimeImageProvider;

before(async () => {
  engine = await connectEngine();
  image = (await testRuntimeImage(engine)).ref;
  runtimeImages = new RuntimeImageProvider(engine, { daemonId: testRuntimeDaemonId });
});

after(async () => {
  for (const id of [daemonId, otherDaemonId, checkDaemonId]) {
    if (engine) await removeScope(engine, labelFilter({ [daemonLabel]: id }));
  }
});

/** A created (never started) container: all a leftover needs to be. */
const container = (name: string, labels: Record<string, string>): Promise<string> =>
  engine.createContainer({ name: `tg-${suffix}-${name}`, image, env: {}, labels });

describe('LocalDockerMaintenance', () => {
  it("removes this daemon's ended runs, old sidecar-labelled ones too, and leaves active runs and other daemons alone", async () => {
    const ended = `ended${suffix}`;
    const active = `active${suffix}`;
    const instance = await container(
      'ended-instance',
      createLabels({ runId: ended, daemonId, role: 'instance' }),
    );
    // Made before the sync service's role was renamed: found by run and daemon, whatever the role.
    const oldSidecar = await container('ended-sidecar', {
      [runIdLabel]: ended,
      [daemonLabel]: daemonId,
      [roleLabel]: 'sidecar',
    });
    const network = await engine.createNetwork({
      name: `tg-${suffix}-ended`,
      subnet: randomSubnet().subnet,
      labels: createLabels({ runId: ended, daemonId, role: 'network' }),
    });
    const running = await container(
      'active-instance',
      createLabels({ runId: active, daemonId, role: 'instance' }),
    );
    const foreign = await container(
      'other-daemon',
      createLabels({ runId: ended, daemonId: otherDaemonId, role: 'instance' }),
    );
    const maintenance = new LocalDockerMaintenance({ engine, runtime: runtimeImages, daemonId });

    const found = await maintenance.findLeftovers(new Set([active]));
    assert.deepEqual(found.containers.map((c) => c.id).sort(), [instance, oldSidecar].sort());
    assert.deepEqual(
      found.networks.map((n) => n.id),
      [network],
    );

    const checks = await maintenance.healthcheck({ fix: true, activeRunIds: new Set([active]) });
    const leftovers = checks.find((check) => check.name === 'leftovers');
    assert.equal(leftovers?.ok, false);
    assert.match(leftovers?.message ?? '', new RegExp(`tg-${suffix}-ended-sidecar`));
    assert.match(leftovers?.message ?? '', new RegExp(`tg-${suffix}-ended\\b`));
    assert.equal(leftovers?.fix, 'removed 2 containers and 1 networks');
    assert.equal(checks.find((check) => check.name === 'engine')?.ok, true);

    for (const id of [instance, oldSidecar])
      await assert.rejects(engine.inspectContainer(id), /no such container/i);
    assert.equal((await engine.inspectContainer(running)).id, running);
    assert.equal((await engine.inspectContainer(foreign)).id, foreign);
    assert.deepEqual(await maintenance.findLeftovers(new Set([active])), { containers: [], networks: [] });
  });

  it('removes a runtime check container only once it is older than any check lives', async () => {
    const check = await container(
      'runtime-check',
      createLabels({ daemonId: checkDaemonId, role: 'runtime-check' }),
    );
    let now = Date.now();
    const maintenance = new LocalDockerMaintenance({
      engine,
      runtime: runtimeImages,
      daemonId: checkDaemonId,
      runtimeCheckMaxAgeMs: 60_000,
      now: () => now,
    });
    assert.deepEqual(await maintenance.removeLeftovers(new Set()), { containers: 0, networks: 0 });
    assert.equal((await engine.inspectContainer(check)).id, check);
    now += 61_000;
    assert.deepEqual(await maintenance.removeLeftovers(new Set()), { containers: 1, networks: 0 });
    await assert.rejects(engine.inspectContainer(check), /no such container/i);
  });
  it('removes a network the engine still holds endpoints on, disconnecting them first, and reports what it cannot remove', async () => {
    const ended = `endpoints${suffix}`;
    const network = await engine.createNetwork({
      name: `tg-${suffix}-endpoints`,
      subnet: randomSubnet().subnet,
      labels: createLabels({ runId: ended, daemonId, role: 'network' }),
    });
    // Not one of this daemon's leftovers (another daemon's label), yet attached and running: the engine
    // refuses to remove the network until it is disconnected, as with the stale endpoints big runs leave.
    const attached = await engine.createContainer({
      name: `tg-${suffix}-attached`,
      image,
      env: {},
      cmd: ['node', '-e', 'setTimeout(() => {}, 300_000)'],
      entrypoint: [],
      labels: createLabels({ runId: ended, daemonId: otherDaemonId, role: 'instance' }),
      network: { name: `tg-${suffix}-endpoints` },
    });
    await engine.startContainer(attached);
    await assert.rejects(engine.removeNetwork(network), 'a plain removal is refused');
    assert.deepEqual(
      (await engine.networkEndpoints(network)).map((endpoint) => endpoint.name),
      [`tg-${suffix}-attached`],
    );

    const maintenance = new LocalDockerMaintenance({
      engine,
      runtime: runtimeImages,
      daemonId,
      networkRemoval: { delayMs: 50 },
    });
    const notRemoved: unknown[] = [];
    assert.deepEqual(
      // The first test's active run is still there, and still active.
      await maintenance.removeLeftovers(new Set([`active${suffix}`]), (item) => notRemoved.push(item)),
      { containers: 0, networks: 1 },
    );
    assert.deepEqual(notRemoved, []);
    assert.deepEqual(await engine.networkEndpoints(network), [], 'the network is gone');
    assert.equal(
      (await engine.inspectContainer(attached)).id,
      attached,
      'the container itself is left alone',
    );
    await engine.removeContainer(attached, { force: true });
  });
});

import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DockerEngine } from '../../docker/docker-engine.ts';
import { labelFilter, roleLabel, runIdLabel } from '../../docker/labels.ts';
import { readTgz } from '../helpers/archive.ts';
import { runSingle, taskIdOf, taskOf, waitForState } from '../helpers/daemon-api.ts';
import { connectEngine } from '../docker/docker-fixtures.ts';
import { runCli, scratchDir, startDaemonProcess, waitFor, type DaemonProcess } from '../helpers/processes.ts';

const docker = ['--builder', 'docker:node', '--runner', 'local:docker'];

describe('local:docker through the real CLI, daemon and Docker engine', () => {
  let engine: DockerEngine;
  let daemon: DaemonProcess;
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  before(async () => {
    engine = await connectEngine();
    scratch = await scratchDir('docker');
    daemon = await startDaemonProcess({ home: path.join(scratch.dir, 'home') });
  });
  after(async () => {
    await daemon?.stop();
    await scratch?.remove();
  });

  const cli = (args: string[], onStdout?: (text: string) => void): ReturnType<typeof runCli> =>
    runCli(['--endpoint', daemon.url, ...args], onStdout ? { onStdout } : {});
  const runObjects = async (
    runId: string,
  ): Promise<{ instances: string[]; syncServices: string[]; networks: string[] }> => {
    const containers = await engine.listContainers(labelFilter({ [runIdLabel]: runId }), { all: true });
    return {
      instances: containers.filter((c) => c.labels[roleLabel] === 'instance').map((c) => c.id),
      syncServices: containers.filter((c) => c.labels[roleLabel] === 'sync-service').map((c) => c.id),
      networks: (await engine.listNetworks(labelFilter({ [runIdLabel]: runId }))).map((n) => n.name),
    };
  };

  it('runs the walkthrough in 10 containers plus the sync service on a data and a control network, and removes them all', async () => {
    const archive = path.join(scratch.dir, 'docker-walkthrough.tgz');
    let runId: string | undefined;
    let sawFullRun:
      | {
          instances: number;
          syncServices: number;
          networks: string[];
          networksOfInstances: string[];
          networksOfSyncService: string[];
        }
      | undefined;
    let watching = true;
    // Watches the engine while the run goes: instance containers exist from creation until the cleanup.
    const watcher = (async () => {
      while (watching) {
        if (runId && !sawFullRun) {
          const objects = await runObjects(runId);
          if (objects.instances.length === 10 && objects.syncServices.length === 1) {
            const attached = async (ids: string[]): Promise<string[]> => {
              const names = await Promise.all(
                ids.map(async (id) => Object.keys((await engine.inspectContainer(id)).ipAddresses)),
              );
              // Instances are created while the sync service starts and have addresses once started.
              if (names.some((list) => list.length === 0)) throw new Error('not all started yet');
              return [...new Set(names.flat())].sort();
            };
            // A container not started yet, or removed between the listing and its inspection (the run is
            // ending): look again.
            sawFullRun = await Promise.all([
              attached(objects.instances),
              attached(objects.syncServices),
            ]).then(
              ([networksOfInstances, networksOfSyncService]) => ({
                instances: objects.instances.length,
                syncServices: objects.syncServices.length,
                networks: [...objects.networks].sort(),
                networksOfInstances,
                networksOfSyncService,
              }),
              () => undefined,
            );
          }
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    const result = await runSingle(
      daemon.url,
      'example',
      'sync',
      [...docker, '--instances', '10', '--wait', '--collect', '--collect-file', archive],
      (stdout) => {
        runId ??= /run (\w+) queued/.exec(stdout)?.[1];
      },
    );
    watching = false;
    await watcher;
    assert.equal(result.code, 0, `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
    assert.match(result.stdout, /^single: 10\/10 ok$/m);
    assert.ok(runId);
    // Instances on the data network (TEST_SUBNET) and the control one; the sync service on the control one only.
    assert.deepEqual(sawFullRun, {
      instances: 10,
      syncServices: 1,
      networks: [`tg-${runId}`, `tg-${runId}-control`],
      networksOfInstances: [`tg-${runId}`, `tg-${runId}-control`],
      networksOfSyncService: [`tg-${runId}-control`],
    });
    assert.deepEqual(
      await runObjects(runId),
      { instances: [], syncServices: [], networks: [] },
      'nothing of the run remains',
    );

    const entries = await readTgz(archive);
    const runOuts = [...entries.keys()].filter((name) => name.endsWith('/run.out'));
    assert.equal(runOuts.length, 10);
    const messages = runOuts.flatMap((name) =>
      entries
        .get(name)!
        .trim()
        .split('\n')
        .map(
          (line) =>
            (
              JSON.parse(line) as {
                event: { type: string; message?: string; outcome?: string; runenv?: { network?: string } };
              }
            ).event,
        ),
    );
    assert.equal(messages.filter((event) => event.message === "i'm the leader.").length, 1);
    assert.equal(messages.filter((event) => event.type === 'finish' && event.outcome === 'ok').length, 10);
    const subnet = messages.find((event) => event.type === 'start')?.runenv?.network ?? '';
    assert.match(subnet, /^10\.(19[2-9]|20[0-7])\.\d+\.0\/20$/, 'TEST_SUBNET is the run network subnet');
  });

  it('runs a plan written against the official @testground/sdk, waitNetworkInitialized included', async () => {
    const source = await readFile(
      path.join(import.meta.dirname, '../../plans/official-sdk/index.js'),
      'utf8',
    );
    assert.match(source, /waitNetworkInitialized/);
    const result = await runSingle(daemon.url, 'official-sdk', 'sync', [
      ...docker,
      '--instances',
      '4',
      '--wait',
    ]);
    assert.equal(result.code, 0, `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
    assert.match(result.stdout, /^single: 4\/4 ok$/m);
  });

  const placeboCases = [
    { testCase: 'failure', instance: 'failure', reason: /placebo failure/ },
    { testCase: 'crash', instance: 'crash', reason: /placebo crash/ },
    { testCase: 'no-outcome', instance: 'no_outcome', reason: /without recording/ },
    { testCase: 'stall', instance: 'timeout', reason: /run timeout 4000 ms/, extra: ['--timeout', '4s'] },
  ];
  it('reports placebo failure, crash, no-outcome and stall (timeout) honestly, all at once', async () => {
    const results = await Promise.all(
      placeboCases.map((expected) =>
        runSingle(daemon.url, 'placebo', expected.testCase, [
          ...docker,
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

  it('reports an instance killed for exceeding its group memory limit as out of memory', async () => {
    const composition = path.join(scratch.dir, 'oom.toml');
    await writeFile(
      composition,
      `[global]\nplan = "placebo"\ncase = "oom"\nbuilder = "docker:node"\nrunner = "local:docker"\ntotal_instances = 1\n\n[[groups]]\nid = "small"\nresources = { memory = "64MiB" }\ninstances = { count = 1 }\n`,
    );
    const result = await cli(['run', 'composition', '-f', composition, '--wait']);
    assert.equal(result.code, 1, result.stdout + result.stderr);
    const instance = (await taskOf(daemon.url, taskIdOf(result.stdout))).result?.instances[0];
    assert.equal(instance?.outcome, 'crash');
    assert.match(instance?.reason ?? '', /out of memory/);
  });

  it('runs two runs submitted at the same moment, each on its own network', async () => {
    const runIds: string[] = [];
    const results = await Promise.all(
      [0, 1].map(() =>
        runSingle(daemon.url, 'example', 'pubsub', [...docker, '--instances', '3', '--wait'], (stdout) => {
          const id = /run (\w+) queued/.exec(stdout)?.[1];
          if (id && !runIds.includes(id)) runIds.push(id);
        }),
      ),
    );
    for (const result of results) assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.equal(runIds.length, 2);
    const subnets = await Promise.all(
      runIds.map(async (id) => {
        const log = await (await fetch(`${daemon.url}/api/v1/tasks/${id}/logs`)).text();
        return /network tg-\w+ with subnet ([\d./]+)/.exec(log)?.[1];
      }),
    );
    assert.ok(subnets[0] && subnets[1]);
    assert.notEqual(subnets[0], subnets[1]);
  });

  it('builds and runs a docker:generic plan from its own Dockerfile', async () => {
    const result = await runSingle(daemon.url, 'generic-docker', 'ok', [
      '--builder',
      'docker:generic',
      '--runner',
      'local:docker',
      '--instances',
      '2',
      '--wait',
    ]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /^single: 2\/2 ok$/m);
  });

  it('removes the containers of a canceled run', async () => {
    const id = taskIdOf(
      (await runSingle(daemon.url, 'placebo', 'stall', [...docker, '--instances', '3', '--timeout', '5m']))
        .stdout,
    );
    await waitFor(
      '3 instance containers to run',
      async () => ((await runObjects(id)).instances.length === 3 ? true : undefined),
      60_000,
    );
    const canceled = await cli(['cancel', '-t', id]);
    assert.equal(canceled.code, 0, canceled.stderr);
    const task = await waitForState(daemon.url, id, 'canceled');
    assert.equal(task.outcome, 'canceled');
    assert.deepEqual(await runObjects(id), { instances: [], syncServices: [], networks: [] });
  });

  it('healthcheck reports the engine, the runtime image and leftovers, and --fix removes leftovers', async () => {
    const daemonId = (await readFile(path.join(daemon.home, 'daemon-id'), 'utf8')).trim();
    const leftover = await engine.createContainer({
      name: `tg-leftover-${daemonId}`,
      image: (await runtimeImageOf(engine)) ?? assert.fail('a runtime image exists after the runs above'),
      env: {},
      labels: { 'testground.daemon': daemonId, [runIdLabel]: 'gone0run', [roleLabel]: 'instance' },
    });
    const check = await cli(['healthcheck', '--runner', 'local:docker']);
    assert.equal(check.code, 1, check.stdout);
    assert.match(check.stdout, /ok\s+engine: Docker/);
    assert.match(check.stdout, /ok\s+runtime image: /);
    assert.match(check.stdout, new RegExp(`FAIL leftovers: .*tg-leftover-${daemonId}`));
    const fixed = await cli(['healthcheck', '--runner', 'local:docker', '--fix']);
    assert.equal(fixed.code, 0, fixed.stdout);
    assert.match(fixed.stdout, /fixed: removed 1 containers/);
    await assert.rejects(engine.inspectContainer(leftover), /404|no such container/i);
    const terminate = await cli(['terminate', '--runner', 'local:docker']);
    assert.equal(terminate.code, 0, terminate.stderr);
    assert.match(terminate.stdout, /canceled 0 task/);
  });
});

/**
 * The runtime image the daemon's runs used: the one built from the host's node under its default name.
 * Other test files build (and remove) runtime images of their own at the same time, so any other image
 * with the runtime label may be gone by the time it is used.
 */
async function runtimeImageOf(engine: DockerEngine): Promise<string | undefined> {
  const images = await engine.listImages(labelFilter({ [roleLabel]: 'runtime' }));
  return images.flatMap((image) => image.tags).find((tag) => tag.startsWith('testground-runtime/node:'));
}

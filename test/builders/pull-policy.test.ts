/**
 * A docker task on a daemon with the default pull policy, against the real engine: docker:node builds
 * placebo and local:docker runs it with no pull asked of the engine (the engine's own client, counted), and
 * which runtime image is used and why is said once in the task's log and once in the daemon's.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, it } from 'node:test';
import pino from 'pino';
import { DockerNodeBuilder } from '../../builders/docker-node.ts';
import { RuntimeImageProvider } from '../../builders/runtime-image.ts';
import { loadDaemonConfig } from '../../daemon/config.ts';
import type { DockerEngine } from '../../docker/docker-engine.ts';
import { daemonLabel, labelFilter } from '../../docker/labels.ts';
import { LocalDockerRunner } from '../../runners/local-docker/local-docker-runner.ts';
import { SyncServiceBundle } from '../../runners/sync-service-bundle.ts';
import { connectEngine, removeScope, testRuntimeDaemonId } from '../docker/docker-fixtures.ts';
import { MemoryTaskLog } from '../helpers/memory-task-log.ts';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const daemonId = `tests-pull-${randomBytes(4).toString('hex')}`;
let engine: DockerEngine;
let scratch: string;

before(async () => {
  engine = await connectEngine();
  scratch = await mkdtemp(path.join(os.tmpdir(), 'tg-pull-policy-'));
});

after(async () => {
  if (engine) await removeScope(engine, labelFilter({ [daemonLabel]: daemonId }));
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

it('builds and runs placebo on local:docker without one pull, saying once which runtime image and why', async () => {
  const config = loadDaemonConfig({});
  assert.equal(config.pull, 'never');
  const pulls: string[] = [];
  const counting = Object.assign(Object.create(engine) as DockerEngine, {
    pullImage: async (ref: string, options?: Parameters<DockerEngine['pullImage']>[1]) => {
      pulls.push(ref);
      return engine.pullImage(ref, options);
    },
  });
  const daemonLog: string[] = [];
  // As daemon/main.ts makes it, with the daemon's default policy.
  const runtimeImages = new RuntimeImageProvider(counting, {
    daemonId: testRuntimeDaemonId,
    pull: config.pull,
    onDecision: (summary) => daemonLog.push(summary),
  });
  const sdkEntry = path.join(repoRoot, 'sdk/index.ts');
  const builder = new DockerNodeBuilder({
    engine: counting,
    runtimeImages,
    sdkEntry,
    tempDir: scratch,
    daemonId,
  });
  const runner = new LocalDockerRunner({
    engine: counting,
    runtime: runtimeImages,
    syncService: new SyncServiceBundle(path.join(scratch, 'sync-service')),
    daemonId,
    logger: pino({ level: 'silent' }),
  });
  const log = new MemoryTaskLog();
  const signal = AbortSignal.timeout(240_000);
  const artifact = await builder.build({
    planDir: path.join(repoRoot, 'plans/placebo'),
    planName: 'placebo',
    buildConfig: {},
    log,
    signal,
  });
  const runId = `t${randomBytes(5).toString('hex')}`;
  const group = {
    id: 'single',
    instances: 2,
    builder: 'docker:node',
    buildConfig: {},
    resources: {},
    testParams: {},
    dependencies: [],
  };
  const output = await runner.run({
    runId,
    run: {
      id: 'default',
      plan: 'placebo',
      testCase: 'ok',
      builder: 'docker:node',
      runner: 'local:docker',
      totalInstances: 2,
      runConfig: {},
      timeoutMs: 120_000,
      disableMetrics: true,
      groups: [group],
    },
    artifacts: new Map([['single', artifact]]),
    outputsDir: path.join(scratch, runId, 'outputs'),
    tempDir: path.join(scratch, runId, 'temp'),
    startTime: new Date(),
    log,
    signal,
  });
  assert.deepEqual(
    output.instances.map((instance) => instance.outcome),
    ['success', 'success'],
    log.text(),
  );
  assert.deepEqual(pulls, [], 'no pull was asked of the engine');
  const said = log.lines.filter((line) => line.includes('runtime image'));
  assert.equal(said.length, 1, said.join('\n'));
  assert.match(
    said[0]!,
    /^runtime image: using \S+ \(|^runtime image: base image node:20-bookworm-slim is not present locally/,
  );
  assert.ok(!/pulling|Pulling/.test(log.text()), log.text());
  assert.equal(daemonLog.length, 1, daemonLog.join('\n'));
  assert.equal(daemonLog[0], said[0]);
});

/**
 * The example and official-sdk plans, each instance a real process, against a real sync service: what a
 * local:exec run does, without the daemon.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseEventLine, type InstanceEvent } from '../../core/contract/events.ts';
import { startSyncService, type SyncService } from '../../sync/sync-service.ts';
import { instanceEnv, repoRoot, scratchDir, spawnInstance, type InstanceRun } from './spawn-instance.ts';

const INSTANCES = 4;
const scratch = scratchDir('plans');
let service: SyncService;
before(async () => {
  service = await startSyncService({ port: 0 });
});
after(async () => {
  await service.close();
  scratch.cleanup();
});

async function runInstances(
  plan: string,
  testCase: string,
  options: { script: string; withTsx: boolean },
): Promise<{ run: InstanceRun; events: InstanceEvent[]; runOut: string }[]> {
  const runId = `${plan}-${testCase}`;
  return Promise.all(
    Array.from({ length: INSTANCES }, async (_, index) => {
      const outputsPath = path.join(scratch.dir, runId, 'single', String(index));
      const run = await spawnInstance(
        options.script,
        instanceEnv({
          TEST_PLAN: plan,
          TEST_CASE: testCase,
          TEST_RUN: runId,
          TEST_INSTANCE_COUNT: String(INSTANCES),
          TEST_GROUP_INSTANCE_COUNT: String(INSTANCES),
          TEST_OUTPUTS_PATH: outputsPath,
          SYNC_SERVICE_HOST: service.host,
          SYNC_SERVICE_PORT: String(service.port),
        }),
        // The official SDK also writes a file named `stdout` into its working directory.
        { withTsx: options.withTsx, ...(options.withTsx ? {} : { cwd: scratch.dir }) },
      );
      const events = run.lines.flatMap((line) => parseEventLine(line) ?? []);
      return { run, events, runOut: readFileSync(path.join(outputsPath, 'run.out'), 'utf8') };
    }),
  );
}

const messages = (events: InstanceEvent[]): string[] =>
  events.flatMap((event) => (event.kind === 'message' ? [event.message] : []));

describe('plans/example', () => {
  const script = path.join(repoRoot, 'plans', 'example', 'index.ts');

  it('sync: one leader releases the followers, and every instance succeeds', async () => {
    const instances = await runInstances('example', 'sync', { script, withTsx: true });
    for (const { run, events, runOut } of instances) {
      assert.equal(run.exitCode, 0, run.stderr);
      assert.equal(events.at(-1)?.kind, 'success');
      assert.equal(messages(events).at(-1), 'done');
      assert.equal(runOut, run.stdout);
    }
    const sequenceIds = instances.map(({ events }) => messages(events)[0]).sort();
    assert.deepEqual(sequenceIds, [
      'my sequence ID: 1',
      'my sequence ID: 2',
      'my sequence ID: 3',
      'my sequence ID: 4',
    ]);
    const roles = instances.map(({ events }) => messages(events)[1]).sort();
    assert.deepEqual(roles, ["i'm a follower.", "i'm a follower.", "i'm a follower.", "i'm the leader."]);
  });

  it('pubsub: every instance receives every instance', async () => {
    const instances = await runInstances('example', 'pubsub', { script, withTsx: true });
    for (const { run, events } of instances) {
      assert.equal(run.exitCode, 0, run.stderr);
      assert.deepEqual(messages(events).at(-1), `received all ${INSTANCES} peers`);
      assert.equal(events.at(-1)?.kind, 'success');
    }
  });
});

describe('plans/official-sdk (the official @testground/sdk from npm)', () => {
  it('sync: signals, passes the barrier and receives every instance on a topic', async () => {
    const script = path.join(repoRoot, 'plans', 'official-sdk', 'index.js');
    const instances = await runInstances('official-sdk', 'sync', { script, withTsx: false });
    for (const { run, events, runOut } of instances) {
      assert.equal(run.exitCode, 0, run.stderr);
      assert.deepEqual(
        events.map((event) => event.kind),
        ['start', 'message', 'message', 'message', 'message', 'success'],
      );
      assert.deepEqual(messages(events).slice(2), [
        `all ${INSTANCES} instances entered`,
        `received all ${INSTANCES} peers`,
      ]);
      // The official SDK writes run.out itself: the same events, each once.
      assert.deepEqual(
        runOut.split('\n').flatMap((line) => parseEventLine(line)?.kind ?? []),
        events.map((event) => event.kind),
      );
    }
  });
});

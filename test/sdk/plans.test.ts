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
  options: { script: string; withTsx: boolean; params?: string },
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
          TEST_INSTANCE_PARAMS: options.params ?? '',
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

  it("sync: the seed's program, one leader releasing the followers once all are ready, its sleeps scaled by sleep_scale", async () => {
    // 0.05: the leader's "ready..." → "set..." → "go" take 50 ms and 250 ms instead of 1 s and 5 s.
    const started = performance.now();
    const instances = await runInstances('example', 'sync', {
      script,
      withTsx: true,
      params: 'sleep_scale=0.05',
    });
    const elapsedMs = performance.now() - started;
    const leaders = instances.filter(({ events }) => messages(events).includes("i'm the leader."));
    assert.equal(leaders.length, 1);
    for (const { run, events, runOut } of instances) {
      assert.equal(run.exitCode, 0, run.stderr);
      assert.equal(events.at(-1)?.kind, 'success');
      assert.equal(runOut, run.stdout);
      const said = messages(events);
      // The seed's SDK waits for the network and claims sequence numbers before the test case runs.
      assert.deepEqual(said.slice(0, 2), [
        'waiting for network to initialize',
        'network initialization complete',
      ]);
      assert.match(said[2] ?? '', /^claimed sequence numbers; global=[1-4], group\(single\)=[1-4]$/);
      assert.match(said[3] ?? '', /^my sequence ID: [1-4]$/);
      if (said.includes("i'm the leader.")) {
        assert.deepEqual(said.slice(3), [
          'my sequence ID: 1',
          "i'm the leader.",
          `waiting for ${INSTANCES - 1} instances to become ready`,
          'the followers are all ready',
          'ready...',
          'set...',
          'go, release followers!',
        ]);
        const at = (message: string): number => {
          const event = events.find(
            (candidate) => candidate.kind === 'message' && candidate.message === message,
          );
          assert.ok(event?.ts, `"${message}" has a time`);
          return event.ts / 1e6;
        };
        assert.ok(
          at('set...') - at('ready...') >= 45,
          'the leader sleeps 1 s × sleep_scale after "ready..."',
        );
        assert.ok(at('go, release followers!') - at('set...') >= 245, 'and 5 s × sleep_scale after "set..."');
      } else {
        assert.equal(said.length, 7, said.join('\n'));
        assert.match(said[4] ?? '', /^i'm a follower; signalling ready after [0-4] seconds$/);
        assert.deepEqual(said.slice(5), ['follower signalling now', 'i have been released']);
      }
    }
    // The leader's 6 s (scaled: 300 ms) come after the slowest follower's up to 4 s (200 ms).
    assert.ok(elapsedMs >= 300, `${elapsedMs} ms`);
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

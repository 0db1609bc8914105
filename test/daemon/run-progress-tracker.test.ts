import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { RunProgress } from '../../core/run-progress.ts';
import { RunProgressTracker } from '../../daemon/run-progress-tracker.ts';
import { startSyncService } from '../../sync/sync-service.ts';
import { RawWsClient } from '../sync/raw-ws-client.ts';
import { MemoryTaskLog } from '../helpers/memory-task-log.ts';

const waitFor = async (check: () => boolean, timeoutMs = 5_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

describe('RunProgressTracker', () => {
  it('counts instances by phase from the log and reads the barriers of a real sync service', async () => {
    const service = await startSyncService();
    after(() => service.close());
    const published: RunProgress[] = [];
    const tracker = new RunProgressTracker({
      runId: 'r1',
      scope: { runId: 'r1', plan: 'p', testCase: 'c' },
      groups: [
        { id: 'a', instances: 2 },
        { id: 'b', instances: 1 },
      ],
      intervalMs: 50,
      publish: async (progress) => {
        published.push(progress);
      },
    });
    const inner = new MemoryTaskLog();
    const log = tracker.wrap(inner);
    tracker.syncServiceAt({ host: service.host, port: service.port });
    tracker.start();

    log.instancePhase?.('a', 0, 'created');
    log.instancePhase?.('a', 0, 'started');
    log.instancePhase?.('a', 1, 'started');
    log.instancePhase?.('b', 0, 'started');
    log.instanceEnd('b', 0, 'failure', 'it said so');
    const client = await RawWsClient.connect(service.port);
    after(() => client.close());
    // Keys as the SDKs namespace them: shown by the state's own name.
    const ready = 'run:r1:plan:p:case:c:states:ready';
    client.send({ id: 'w', barrier: { state: ready, target: 3 } });
    await client.request({ id: 's', signal_entry: { state: ready } });

    await waitFor(() => published.at(-1)?.states.some((state) => state.waiting === 1) ?? false);
    const last = published.at(-1)!;
    assert.deepEqual(last.groups, [
      { group: 'a', instances: 2, started: 2, running: 2, ended: {} },
      { group: 'b', instances: 1, started: 1, running: 0, ended: { failure: 1 } },
    ]);
    assert.deepEqual(last.states, [{ name: 'ready', count: 1, target: 3, waiting: 1 }]);
    // Everything still reaches the task's log.
    assert.match(inner.text(), /b\[0\] ended failure: it said so/);

    // Nothing changes: nothing more is published, however many ticks pass.
    const count = published.length;
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(published.length, count);

    await client.request({ id: 's2', signal_entry: { state: ready } });
    await waitFor(() => published.at(-1)?.states[0]?.count === 2);
    log.instanceEnd('a', 0, 'success', 'ok');
    await tracker.stop();
    await tracker.stop();
    assert.deepEqual(published.at(-1)?.groups[0], {
      group: 'a',
      instances: 2,
      started: 2,
      running: 1,
      ended: { success: 1 },
    });
  });

  it('publishes the instance counts when no sync service answers', async () => {
    const published: RunProgress[] = [];
    const tracker = new RunProgressTracker({
      runId: 'r2',
      groups: [{ id: 'g', instances: 1 }],
      intervalMs: 30,
      publish: async (progress) => {
        published.push(progress);
      },
    });
    tracker.syncServiceAt({ host: '127.0.0.1', port: 1 });
    tracker.wrap(new MemoryTaskLog()).instancePhase?.('g', 0, 'started');
    tracker.start();
    await waitFor(() => published.length > 0);
    await tracker.stop();
    assert.deepEqual(published.at(-1)?.groups, [
      { group: 'g', instances: 1, started: 1, running: 1, ended: {} },
    ]);
    assert.deepEqual(published.at(-1)?.states, []);
  });
});

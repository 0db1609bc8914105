import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runShutdownSteps } from '../../daemon/run-shutdown-steps.ts';
import { memoryLogger } from '../helpers/memory-logger.ts';

describe('runShutdownSteps', () => {
  it('runs every step in order even when some throw or reject, and logs each failure once', async () => {
    const logged = memoryLogger();
    const ran: string[] = [];
    const failed = await runShutdownSteps(
      [
        { name: 'stop runs in progress', run: () => void ran.push('stop') },
        {
          name: 'close the HTTP server',
          run: () => {
            ran.push('server');
            throw new Error('Server is not running.');
          },
        },
        {
          name: 'close the task queue',
          run: async () => {
            ran.push('queue');
            await new Promise((resolve) => setTimeout(resolve, 10));
            throw new Error('Connection is closed.');
          },
        },
        { name: 'stop the embedded redis-server', run: async () => void ran.push('redis') },
      ],
      logged.logger,
    );
    assert.deepEqual(ran, ['stop', 'server', 'queue', 'redis']);
    assert.deepEqual(failed, ['close the HTTP server', 'close the task queue']);
    assert.deepEqual(
      logged.atLevel('error').map((entry) => [entry.step, entry.err?.message, entry.msg]),
      [
        [
          'close the HTTP server',
          'Server is not running.',
          'shutdown: could not close the HTTP server; going on',
        ],
        [
          'close the task queue',
          'Connection is closed.',
          'shutdown: could not close the task queue; going on',
        ],
      ],
    );
  });

  it('resolves with no failures when every step succeeds', async () => {
    const logged = memoryLogger();
    assert.deepEqual(await runShutdownSteps([{ name: 'a', run: async () => undefined }], logged.logger), []);
    assert.deepEqual(logged.atLevel('error'), []);
  });

  it('goes on without a step that does not finish in its time, and says so', async () => {
    const logged = memoryLogger();
    const ran: string[] = [];
    const started = performance.now();
    const failed = await runShutdownSteps(
      [
        { name: 'close the task queue', run: () => new Promise(() => undefined), timeoutMs: 50 },
        { name: 'disconnect from Redis', run: () => void ran.push('redis') },
      ],
      logged.logger,
    );
    assert.deepEqual(failed, ['close the task queue']);
    assert.deepEqual(ran, ['redis'], 'the steps after it still run');
    assert.ok(performance.now() - started < 5_000);
    assert.deepEqual(
      logged.atLevel('error').map((entry) => entry.msg),
      ['shutdown: close the task queue did not finish within 50 ms; going on without it'],
    );
  });
});

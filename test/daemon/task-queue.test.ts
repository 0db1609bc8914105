import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { redisOptions } from '../../daemon/redis-connection.ts';
import { TaskQueue } from '../../daemon/task-queue.ts';
import { Gate } from '../helpers/fake-components.ts';
import { memoryLogger } from '../helpers/memory-logger.ts';
import { waitFor } from '../helpers/processes.ts';
import { startTestRedis } from '../helpers/redis-server.ts';

describe('TaskQueue (real Redis, BullMQ)', () => {
  let redis: Awaited<ReturnType<typeof startTestRedis>>;
  before(async () => {
    redis = await startTestRedis();
  });
  after(async () => {
    await redis.close();
  });

  const newQueue = (t: { after: (fn: () => Promise<void>) => void }) => {
    const logged = memoryLogger();
    const queue = new TaskQueue({
      connection: redisOptions({ socketPath: redis.server.socketPath }),
      prefix: `tq${randomBytes(4).toString('hex')}`,
      concurrency: 1,
      logger: logged.logger,
    });
    t.after(() => queue.close());
    return { queue, logged };
  };
  const isEmpty = async (queue: TaskQueue): Promise<true | undefined> =>
    Object.values(await queue.counts()).every((count) => count === 0) ? true : undefined;

  it('enqueues a job per task id once, and removes a waiting one', async (t) => {
    const { queue } = newQueue(t);
    await queue.enqueue('a1');
    await queue.enqueue('a1');
    await queue.enqueue('a2');
    assert.equal((await queue.counts()).waiting, 2, 'the job id is the task id, so a task is queued once');
    assert.equal(await queue.removeWaiting('a1'), true);
    assert.equal(await queue.removeWaiting('a1'), false, 'already removed');
    assert.equal(await queue.removeWaiting('never-queued'), false);
    assert.equal((await queue.counts()).waiting, 1);
  });

  it('hands each job to the worker; a job being worked on cannot be removed', async (t) => {
    const { queue } = newQueue(t);
    const seen: string[] = [];
    const gate = new Gate();
    const taken = new Gate();
    await queue.startWorker(async (taskId) => {
      seen.push(taskId);
      taken.open();
      await gate.opened;
    });
    await assert.rejects(
      queue.startWorker(async () => undefined),
      /already running/,
    );
    await queue.enqueue('b1');
    await taken.opened;
    assert.equal(await queue.removeWaiting('b1'), false, 'the worker holds its lock');
    gate.open();
    await waitFor('the finished job to be removed', () => isEmpty(queue), 10_000);
    assert.deepEqual(seen, ['b1']);
  });

  it('logs a processor that throws, once, with the task id', async (t) => {
    const { queue, logged } = newQueue(t);
    await queue.startWorker(async () => {
      throw new Error('the processor broke');
    });
    await queue.enqueue('c1');
    const entry = await waitFor(
      'the failure to be logged',
      async () => logged.atLevel('error').find((e) => e.msg === 'task processor threw'),
      10_000,
    );
    assert.equal(entry.taskId, 'c1');
    assert.equal(entry.err?.message, 'the processor broke');
  });

  it('close is safe to call twice, with or without a worker', async (t) => {
    const idle = newQueue(t).queue;
    const first = idle.close();
    assert.equal(idle.close(), first, 'the second call shares the first');
    await first;
    const { queue } = newQueue(t);
    await queue.startWorker(async () => undefined);
    await Promise.all([queue.close(), queue.close()]);
    await queue.close();
  });
});

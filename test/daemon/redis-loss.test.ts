import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ResolvedRun } from '../../core/run.ts';
import { ArtifactStore } from '../../daemon/artifact-store.ts';
import { LogBus } from '../../daemon/log-bus.ts';
import { RedisEpoch, type RedisDataLoss } from '../../daemon/redis-epoch.ts';
import { TaskRunner } from '../../daemon/task-runner.ts';
import { TaskStore } from '../../daemon/task-store.ts';
import type { Composition } from '../../plan/composition.ts';
import { FakeBuilder, FakeRunner, Gate } from '../helpers/fake-components.ts';
import { memoryLogger } from '../helpers/memory-logger.ts';
import { scratchDir, waitFor } from '../helpers/processes.ts';
import { startTestRedis } from '../helpers/redis-server.ts';

describe('a Redis that lost its data (real Redis)', () => {
  let redis: Awaited<ReturnType<typeof startTestRedis>>;
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  before(async () => {
    redis = await startTestRedis();
    scratch = await scratchDir('redis-loss');
  });
  after(async () => {
    await redis.close();
    await scratch.remove();
  });

  /** What a Redis restarted without its data holds of this test's keys: nothing. */
  const forget = async (prefix: string): Promise<void> => {
    const keys = await redis.client.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.client.del(...keys);
  };

  const epochFor = (prefix: string, file: string, losses: RedisDataLoss[]) => {
    const logged = memoryLogger();
    const epoch = new RedisEpoch({
      redis: redis.client,
      prefix,
      file,
      logger: logged.logger,
      onLost: (loss) => {
        losses.push(loss);
      },
    });
    return { epoch, logged };
  };

  it('writes an epoch into an empty Redis, keeps it, and notices when it is gone', async () => {
    const prefix = `ep${randomBytes(4).toString('hex')}`;
    const file = path.join(scratch.dir, `${prefix}-epoch`);
    const losses: RedisDataLoss[] = [];
    const { epoch, logged } = epochFor(prefix, file, losses);
    await epoch.check();
    const written = await redis.client.get(`${prefix}:epoch`);
    assert.ok(written);
    assert.equal(epoch.current, written);
    assert.equal((await readFile(file, 'utf8')).trim(), written, 'remembered in the home');
    await epoch.check();
    assert.equal(losses.length, 0, 'the same Redis, the same data');

    await forget(prefix);
    await epoch.check();
    assert.equal(losses.length, 1);
    assert.match(losses[0]!.message, new RegExp(`Redis lost its data: it no longer holds epoch ${written}`));
    assert.equal(epoch.lost, losses[0]);
    assert.match(logged.atLevel('error')[0]?.msg ?? '', /Redis lost its data/);
    assert.notEqual(epoch.current, written, 'the daemon goes on in the new epoch');
    await epoch.check();
    assert.equal(losses.length, 1, 'one loss is reported once');
  });

  it('a daemon restarting against an empty Redis notices from its home, a first start does not', async () => {
    const prefix = `ep${randomBytes(4).toString('hex')}`;
    const file = path.join(scratch.dir, `${prefix}-epoch`);
    const losses: RedisDataLoss[] = [];
    await epochFor(prefix, file, losses).epoch.check();
    const secondDaemon = epochFor(prefix, path.join(scratch.dir, `${prefix}-other-home`), losses);
    await secondDaemon.epoch.check();
    assert.equal(losses.length, 0, 'a daemon seeing a Redis for the first time takes its epoch');

    await forget(prefix);
    const restarted = epochFor(prefix, file, losses).epoch;
    await restarted.check();
    assert.equal(losses.length, 1);
    assert.equal(restarted.lost, losses[0]);
  });

  it('ends the tasks in progress as error with the reason, writing their lost records anew', async () => {
    const prefix = `ep${randomBytes(4).toString('hex')}`;
    const root = path.join(scratch.dir, prefix);
    const store = new TaskStore(redis.client, prefix);
    const logBus = new LogBus(redis.client, prefix);
    const builder = new FakeBuilder('exec:node', { bundleRoot: path.join(root, 'cache') });
    const runner = new FakeRunner();
    runner.gate = new Gate();
    const taskRunner = new TaskRunner({
      store,
      logBus,
      builders: new Map([[builder.id, builder]]),
      runners: new Map([[runner.id, runner]]),
      artifacts: new ArtifactStore({
        redis: redis.client,
        prefix,
        images: { imageExists: async () => false },
      }),
      tempRoot: path.join(root, 'temp'),
      daemonId: 'daemon-a',
      logger: memoryLogger().logger,
    });
    const resolved: ResolvedRun = {
      id: 'default',
      plan: 'placebo',
      testCase: 'ok',
      builder: 'exec:node',
      runner: runner.id,
      totalInstances: 2,
      runConfig: {},
      timeoutMs: 60_000,
      disableMetrics: true,
      groups: [
        {
          id: 'g0',
          instances: 2,
          builder: 'exec:node',
          buildConfig: {},
          resources: {},
          testParams: {},
          dependencies: [],
        },
      ],
    };
    await store.create({
      id: 'lost1',
      plan: 'placebo',
      testCase: 'ok',
      builder: 'exec:node',
      runner: runner.id,
      instances: 2,
      createdBy: 'alice',
      composition: { global: { plan: 'placebo', case: 'ok' } } as unknown as Composition,
      resolved: {
        plan: 'placebo',
        testCase: 'ok',
        builder: 'exec:node',
        runner: runner.id,
        runs: [resolved],
      },
      runs: [{ id: 'lost1', name: 'default', instances: 2, outputsDir: path.join(root, 'outputs') }],
      planDir: path.join(root, 'plan'),
    });
    const losses: RedisDataLoss[] = [];
    const epoch = new RedisEpoch({
      redis: redis.client,
      prefix,
      file: path.join(scratch.dir, `${prefix}-epoch`),
      logger: memoryLogger().logger,
      onLost: (loss) => {
        losses.push(loss);
        assert.deepEqual(taskRunner.endAllAfterRedisLoss(loss.message), ['lost1']);
      },
    });
    await epoch.check();
    const running = runner.nextRun();
    const processing = taskRunner.process('lost1');
    const run = await running;

    await forget(prefix);
    assert.equal(await store.get('lost1'), undefined, 'the record is gone with the data');
    await epoch.check();
    assert.equal(run.signal.aborted, true, 'the run was stopped');
    await processing;
    const ended = await waitFor('the restored record', async () => store.get('lost1'));
    assert.equal(ended.state, 'complete');
    assert.equal(ended.outcome, 'error');
    assert.match(ended.error ?? '', /^Redis lost its data/);
    assert.equal(ended.runs[0]?.outcome, 'error');
    assert.equal(ended.createdBy, 'alice');
    const lines = [];
    for await (const line of logBus.history('lost1', '0')) lines.push(line);
    assert.equal(lines.at(-1)?.kind, 'end', 'a follower of its log sees it end');
  });
});

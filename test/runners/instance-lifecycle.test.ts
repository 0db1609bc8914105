import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { concludeInstance, StopTrigger, type StopReason } from '../../runners/instance-lifecycle.ts';
import { MemoryTaskLog } from '../helpers/memory-task-log.ts';

describe('StopTrigger', () => {
  it('stops once, at the timeout, and says so', async () => {
    const calls: StopReason[] = [];
    const controller = new AbortController();
    const trigger = new StopTrigger({ timeoutMs: 20, signal: controller.signal, stop: (r) => calls.push(r) });
    assert.equal(trigger.reason, undefined);
    await sleep(60);
    controller.abort();
    trigger.dispose();
    assert.deepEqual(calls, ['timeout']);
    assert.equal(trigger.reason, 'timeout');
  });

  it('stops on a cancel, also one that came before it existed', () => {
    const calls: StopReason[] = [];
    const controller = new AbortController();
    const trigger = new StopTrigger({
      timeoutMs: 60_000,
      signal: controller.signal,
      stop: (r) => calls.push(r),
    });
    controller.abort();
    trigger.dispose();
    const early = new StopTrigger({
      timeoutMs: 60_000,
      signal: AbortSignal.abort(),
      stop: (r) => calls.push(r),
    });
    early.dispose();
    assert.deepEqual(calls, ['canceled', 'canceled']);
    assert.equal(early.reason, 'canceled');
  });

  it('does nothing once disposed', async () => {
    const calls: StopReason[] = [];
    const controller = new AbortController();
    const trigger = new StopTrigger({ timeoutMs: 20, signal: controller.signal, stop: (r) => calls.push(r) });
    trigger.dispose();
    trigger.dispose();
    controller.abort();
    await sleep(60);
    assert.deepEqual(calls, []);
    assert.equal(trigger.reason, undefined);
  });
});

describe('concludeInstance', () => {
  const base = { group: 'g', index: 2, timeoutMs: 4_000 };

  it('decides from the terminal event and the exit, logs the end and returns the result', () => {
    const log = new MemoryTaskLog();
    const result = concludeInstance({
      ...base,
      log,
      terminal: { kind: 'success' },
      ending: { kind: 'exited', exitCode: 0, signal: null },
      stopped: undefined,
      phases: [{ name: 'created', at: '2026-01-01T00:00:00.000Z' }],
      endedAt: new Date('2026-01-01T00:00:02.500Z'),
    });
    assert.deepEqual(result, {
      group: 'g',
      index: 2,
      outcome: 'success',
      reason: 'recorded success and exited with code 0',
      exitCode: 0,
      signal: null,
      phases: [
        { name: 'created', at: '2026-01-01T00:00:00.000Z' },
        { name: 'ended', at: '2026-01-01T00:00:02.500Z' },
      ],
    });
    assert.deepEqual(log.lines, ['g[2] ended success: recorded success and exited with code 0']);
  });

  it('names the run timeout in the reason of an instance it stopped, started or not', () => {
    const log = new MemoryTaskLog();
    const killed = concludeInstance({
      ...base,
      log,
      terminal: undefined,
      ending: { kind: 'exited', exitCode: 137, signal: null },
      stopped: 'timeout',
    });
    assert.equal(killed.outcome, 'timeout');
    assert.equal(
      killed.reason,
      'still running at the run timeout without recording an outcome; killed (run timeout 4000 ms)',
    );
    assert.equal(killed.exitCode, 137);
    const never = concludeInstance({
      ...base,
      log,
      terminal: undefined,
      ending: { kind: 'never-started' },
      stopped: 'timeout',
    });
    assert.deepEqual(
      [never.outcome, never.reason, never.exitCode],
      ['timeout', 'never started: the run was timed out first (run timeout 4000 ms)', null],
    );
  });

  it('ends a canceled instance as canceled, and one that could not start as a crash', () => {
    const log = new MemoryTaskLog();
    const canceled = concludeInstance({
      ...base,
      log,
      terminal: undefined,
      ending: { kind: 'never-started' },
      stopped: 'canceled',
    });
    assert.deepEqual(
      [canceled.outcome, canceled.reason],
      ['canceled', 'never started: the run was canceled first'],
    );
    const oom = concludeInstance({
      ...base,
      log,
      terminal: undefined,
      ending: { kind: 'exited', exitCode: 137, signal: null, oomKilled: true },
      stopped: undefined,
    });
    assert.deepEqual([oom.outcome, oom.reason], ['crash', 'killed: out of memory']);
    const spawnFailed = concludeInstance({
      ...base,
      log,
      terminal: undefined,
      ending: { kind: 'failed-to-start', reason: 'could not start node: spawn ENOENT' },
      stopped: undefined,
    });
    assert.deepEqual(
      [spawnFailed.outcome, spawnFailed.reason, spawnFailed.signal],
      ['crash', 'could not start node: spawn ENOENT', null],
    );
  });
});

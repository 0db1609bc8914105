/**
 * `followTask` in-process, behind a stand-in for the daemon's client: what it prints while a task waits in a
 * pipe, how it leaves out what the submission printed, and what each Ctrl-C does. The real CLI against a real
 * daemon, in a pty and in pipes, is `follow-task.test.ts`.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import type { LogLine, TaskView } from '../../api/schemas.ts';
import { FollowStopped, followTask, type FollowClient } from '../../cli/follow-task.ts';
import { formatLogLine } from '../../cli/log-printer.ts';
import { formatProgress } from '../../cli/progress-view.ts';

const ts = '2026-01-01T00:00:00.000Z';
const progressLine = (count: number): LogLine => ({
  kind: 'progress',
  ts,
  offset: `1-${count}`,
  run: 't1',
  groups: [{ group: 'single', instances: 3, started: 3, running: 3, ended: {} }],
  states: [{ name: 'ready', count, target: 2, waiting: 1 }],
});

function taskView(state: TaskView['state'], outcome: TaskView['outcome'] = null): TaskView {
  return {
    id: 't1',
    type: 'run',
    plan: 'p',
    case: 'c',
    builder: 'exec:node',
    runner: 'local:exec',
    instances: 3,
    created_by: 'me',
    created_at: ts,
    state,
    run_id: 't1',
    states: [],
    outcome,
    error: null,
    result: null,
    runs: [],
    artifacts: [],
    warnings: [],
    cancel_requested: false,
    metadata: {},
    supersedes: [],
    composition: {},
    progress: [],
  };
}

/** A task whose log is `lines`, then nothing until `end()` (or an abort); `canceled` records cancels. */
function standIn(lines: LogLine[]): FollowClient & { end(): void; canceled: string[] } {
  let finish: (() => void) | undefined;
  let ended = false;
  const canceled: string[] = [];
  return {
    canceled,
    end: () => {
      ended = true;
      finish?.();
    },
    getTask: async () => taskView(ended ? 'complete' : 'running', ended ? 'success' : null),
    cancel: async (id) => {
      canceled.push(id);
      return taskView('running');
    },
    readLogs: async (_id, onLine, options) => {
      for (const line of lines) onLine(line);
      await new Promise<void>((resolve) => {
        finish = resolve;
        options.signal?.addEventListener('abort', () => resolve(), { once: true });
      });
      if (ended) onLine({ kind: 'end', ts, offset: '9-0', state: 'complete', outcome: 'success' });
    },
  };
}

const capture = (): {
  out: string[];
  err: string[];
  output: { out(text: string): void; err(text: string): void };
} => {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, output: { out: (text) => out.push(text), err: (text) => err.push(text) } };
};

describe('followTask', () => {
  it('in a pipe: log lines as they come, progress as a plain line every few seconds, none after the end', async () => {
    const client = standIn([
      { kind: 'state', ts, offset: '1-0', state: 'running' },
      { kind: 'log', ts, offset: '1-1', level: 'warn', msg: 'already said' },
      progressLine(1),
    ]);
    const { out, output } = capture();
    const following = followTask(client, 't1', output, {
      terminal: false,
      plainEveryMs: 40,
      skip: (line) => line.kind === 'log' && line.msg === 'already said',
      interrupts: new EventEmitter(),
    });
    await new Promise((resolve) => setTimeout(resolve, 150));
    client.end();
    const task = await following;
    assert.equal(task.outcome, 'success');
    const progress = out.filter((line) => line.startsWith('progress: '));
    assert.ok(progress.length >= 2, out.join('\n'));
    assert.match(
      progress[0]!,
      /^progress: task t1 running \(\d+ s\); single: 3 of 3 started, 3 running; waiting on barrier "ready" \(1 of 2\): 1 instance waiting$/,
    );
    assert.ok(!out.some((line) => line.includes('already said')), 'the skipped warning is not printed again');
    assert.match(out.at(-1)!, /task complete: success/);
    const count = out.length;
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(out.length, count, 'nothing is printed once the task ended');
  });

  it('Ctrl-C: says the task goes on and how to follow or stop it, then exits 130 without canceling', async () => {
    const client = standIn([{ kind: 'state', ts, offset: '1-0', state: 'running' }]);
    const interrupts = new EventEmitter();
    const { err, output } = capture();
    const following = followTask(client, 't1', output, {
      terminal: false,
      interrupts,
      secondInterruptMs: 100,
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    interrupts.emit('SIGINT');
    await assert.rejects(following, (error: unknown) => {
      assert.ok(error instanceof FollowStopped);
      assert.equal(error.exitCode, 130);
      return true;
    });
    assert.deepEqual(err, [
      'task t1 is still running; follow it with "testground logs -f -t t1", stop it with "testground cancel -t t1"',
      '(press Ctrl-C again within 0.1 s to cancel it)',
    ]);
    assert.deepEqual(client.canceled, []);
    assert.equal(interrupts.listenerCount('SIGINT'), 0, 'the handler is gone with the follower');
  });

  it('a second Ctrl-C in time cancels the task and says so, exit 4', async () => {
    const client = standIn([{ kind: 'state', ts, offset: '1-0', state: 'running' }]);
    const interrupts = new EventEmitter();
    const { err, output } = capture();
    const following = followTask(client, 't1', output, { terminal: false, interrupts });
    await new Promise((resolve) => setTimeout(resolve, 20));
    interrupts.emit('SIGINT');
    interrupts.emit('SIGINT');
    await assert.rejects(
      following,
      (error: unknown) => error instanceof FollowStopped && error.exitCode === 4,
    );
    assert.deepEqual(client.canceled, ['t1']);
    assert.equal(err.at(-1), 'canceled task t1 (second Ctrl-C): the daemon stops its instances');
  });
});

describe('progress as text', () => {
  it('a line per group, ended instances by outcome, and a line per barrier being waited on', () => {
    assert.deepEqual(
      formatProgress(
        {
          run: 'r',
          groups: [
            { group: 'a', instances: 4, started: 3, running: 1, ended: { success: 1, failure: 1 } },
            { group: 'b', instances: 2, started: 0, running: 0, ended: {} },
          ],
          states: [
            { name: 'ready', count: 3, target: 5, waiting: 2 },
            { name: 'network-initialized', count: 6, target: 0, waiting: 0 },
          ],
        },
        'second',
      ),
      [
        'second/a: 3 of 4 started, 1 running, ended: 1 success, 1 failure',
        'second/b: 0 of 2 started, 0 running',
        'second: waiting on barrier "ready" (3 of 5): 2 instances waiting',
      ],
    );
  });

  it('`logs` prints a progress line in one line', () => {
    assert.equal(
      formatLogLine({ ...progressLine(1), ts: '2026-01-01T10:11:12.345Z' }),
      '10:11:12.345 progress of run t1: single: 3 of 3 started, 3 running; waiting on barrier "ready" (1 of 2): 1 instance waiting',
    );
  });
});

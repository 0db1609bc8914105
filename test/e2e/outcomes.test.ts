import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  isRunning,
  runCli,
  scratchDir,
  startDaemonProcess,
  type CliResult,
  type DaemonProcess,
} from '../helpers/processes.ts';
import { runSingle, taskIdOf, taskOf, waitForState, type TaskJson } from '../helpers/daemon-api.ts';

describe('placebo outcomes, timeouts and cancel (real daemon, local:exec)', () => {
  let daemon: DaemonProcess;
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  // One worker, so a second task really waits in the queue while the first runs.
  before(async () => {
    scratch = await scratchDir('outcomes');
    daemon = await startDaemonProcess({
      home: path.join(scratch.dir, 'home'),
      env: { TESTGROUND_WORKER_CONCURRENCY: '1' },
    });
  });
  after(async () => {
    await daemon?.stop();
    await scratch?.remove();
  });

  const task = (id: string): Promise<TaskJson> => taskOf(daemon.url, id);
  const placebo = (testCase: string, extra: string[] = []): Promise<CliResult> =>
    runSingle(daemon.url, 'placebo', testCase, ['--instances', '2', ...extra]);

  const cases = [
    { testCase: 'ok', exit: 0, run: 'success', instance: 'success' },
    { testCase: 'failure', exit: 1, run: 'failure', instance: 'failure' },
    { testCase: 'crash', exit: 1, run: 'failure', instance: 'crash' },
    { testCase: 'no-outcome', exit: 1, run: 'failure', instance: 'no_outcome' },
    { testCase: 'stall', exit: 1, run: 'failure', instance: 'timeout', extra: ['--timeout', '3s'] },
  ];
  for (const expected of cases) {
    it(`placebo ${expected.testCase}: run ${expected.run}, every instance ${expected.instance}, exit ${expected.exit}`, async () => {
      const result = await placebo(expected.testCase, ['--wait', ...(expected.extra ?? [])]);
      assert.equal(result.code, expected.exit, `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
      const record = await task(taskIdOf(result.stdout));
      assert.equal(record.state, 'complete');
      assert.equal(record.outcome, expected.run);
      assert.deepEqual(
        record.result?.instances.map((instance) => instance.outcome),
        [expected.instance, expected.instance],
      );
      for (const instance of record.result?.instances ?? [])
        assert.ok(instance.reason.length > 0, 'each outcome says why');
      if (expected.run !== 'success') assert.ok(record.error, 'a failed run carries its reason');
    });
  }

  it('streams instance output live, cancels a queued task at once and a running one, and keeps working', async () => {
    const running = taskIdOf((await placebo('stall', ['--timeout', '5m'])).stdout);
    // Live: the stalling instance's output arrives while the task is still running.
    const response = await fetch(`${daemon.url}/api/v1/tasks/${running}/logs?follow=true`);
    const reader = response.body!.getReader();
    let received = '';
    while (!received.includes('"kind":"output"')) {
      const { value, done } = await reader.read();
      assert.equal(done, false, 'the log stream stayed open while the task runs');
      received += new TextDecoder().decode(value);
    }
    assert.equal((await task(running)).state, 'running');

    const queued = taskIdOf((await placebo('ok')).stdout);
    assert.equal((await task(queued)).state, 'queued');
    const cancelQueued = await runCli(['--endpoint', daemon.url, 'cancel', '-t', queued]);
    assert.equal(cancelQueued.code, 0, cancelQueued.stderr);
    const queuedAfter = await task(queued);
    assert.equal(queuedAfter.state, 'canceled');
    assert.equal(queuedAfter.outcome, 'canceled');

    const pids = (await readFile(path.join(daemon.home, 'temp', running, 'instance.pids'), 'utf8'))
      .trim()
      .split('\n')
      .map(Number);
    assert.equal(pids.length, 3, 'the sync service process and two instances');
    const cancelRunning = await runCli(['--endpoint', daemon.url, 'cancel', '-t', running]);
    assert.equal(cancelRunning.code, 0, cancelRunning.stderr);
    const ended = await waitForState(daemon.url, running, 'canceled');
    assert.equal(ended.outcome, 'canceled');
    assert.deepEqual(
      ended.result?.instances.map((instance) => instance.outcome),
      ['canceled', 'canceled'],
    );
    for (const pid of pids) assert.equal(isRunning(pid), false, 'the instance process is gone');
    // The rest of the follower's stream ends with the canceled end line.
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      received += new TextDecoder().decode(value);
    }
    assert.match(received, /"kind":"end","ts":"[^"]+","state":"canceled"/);

    // Canceling twice is a conflict; the worker is free again for the next run.
    const again = await runCli(['--endpoint', daemon.url, 'cancel', '-t', running]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already ended/);
    const next = await placebo('ok', ['--wait']);
    assert.equal(next.code, 0, next.stdout);

    // The log can be resumed after any line's offset, as a client that lost its connection does.
    const all = (await (await fetch(`${daemon.url}/api/v1/tasks/${running}/logs`)).text()).trim().split('\n');
    const third = JSON.parse(all[2]!) as { offset: string };
    const resumed = (
      await (await fetch(`${daemon.url}/api/v1/tasks/${running}/logs?offset=${third.offset}`)).text()
    )
      .trim()
      .split('\n');
    assert.deepEqual(resumed, all.slice(3));

    const logs = await runCli(['--endpoint', daemon.url, 'logs', '-t', running]);
    assert.equal(logs.code, 4, 'logs exits by the outcome of the task, canceled');
    assert.match(logs.stdout, /task canceled/);
  });
});

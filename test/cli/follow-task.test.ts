/**
 * Following a run as a user does, through the real CLI and a real daemon (local:exec): the example plan's
 * `sync` case on 20 instances, whose leader waits on the `ready` barrier while the followers signal it over
 * 0–4 s and then holds them 6 s on `released`. On a terminal (a real pty, tmux) the status lines are redrawn
 * in place and show the barrier's count rising; in a pipe (a CI log) a progress line comes at least every
 * 5 s; Ctrl-C detaches with a hint and exit 130, a second Ctrl-C within 2 s cancels the task (exit 4).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { taskOf, waitForState } from '../helpers/daemon-api.ts';
import { repoRoot, scratchDir, startDaemonProcess, type DaemonProcess } from '../helpers/processes.ts';

const cliEntry = path.join(repoRoot, 'bin/testground.js');
const runArgs = ['run', 'single', '-p', 'plans/example', '-t', 'sync', '-i', '20', '--wait'];

interface Followed {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Each stdout line with when it arrived (ms since the start). */
  lines: { at: number; text: string }[];
}

/** The CLI in pipes (not a terminal); `onLine` may send it signals. */
function followInPipes(
  url: string,
  onLine: (text: string, send: (signal: NodeJS.Signals) => void) => void = () => {},
): Promise<Followed> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliEntry, '--endpoint', url, ...runArgs], {
      cwd: repoRoot,
      env: { ...process.env, TERM: 'xterm' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const started = Date.now();
    const result: Followed = { code: null, stdout: '', stderr: '', lines: [] };
    let partial = '';
    child.stdout.on('data', (chunk: Buffer) => {
      result.stdout += chunk.toString();
      partial += chunk.toString();
      for (let newline = partial.indexOf('\n'); newline !== -1; newline = partial.indexOf('\n')) {
        const text = partial.slice(0, newline);
        partial = partial.slice(newline + 1);
        result.lines.push({ at: Date.now() - started, text });
        onLine(text, (signal) => child.kill(signal));
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (result.stderr += chunk.toString()));
    child.once('close', (code) => resolve({ ...result, code }));
  });
}

const taskIdIn = (stdout: string): string => {
  const match = /queued \(task (\w+)\)/.exec(stdout);
  assert.ok(match, `no task id in:\n${stdout}`);
  return match[1]!;
};

describe('following a run: progress while it waits, and Ctrl-C', { timeout: 300_000 }, () => {
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  let daemon: DaemonProcess;

  before(async () => {
    scratch = await scratchDir('follow');
    daemon = await startDaemonProcess({ home: path.join(scratch.dir, 'home') });
  });
  after(async () => {
    await daemon?.stop();
    await scratch?.remove();
  });

  it('on a terminal, redraws a status line per group in place and shows the barrier count rising', async () => {
    const socket = `tg-follow-${process.pid}`;
    const tmux = (...args: string[]): string =>
      execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
    const exitFile = path.join(scratch.dir, 'tty-exit');
    const script = path.join(scratch.dir, 'tty.sh');
    const command = [process.execPath, cliEntry, '--endpoint', daemon.url, ...runArgs]
      .map((word) => `'${word}'`)
      .join(' ');
    writeFileSync(script, `cd '${repoRoot}'\n${command}\necho $? > '${exitFile}'\nsleep 600\n`);
    tmux('new-session', '-d', '-s', 'follow', '-x', '200', '-y', '50', `TERM=xterm sh '${script}'`);
    after(() => {
      try {
        tmux('kill-server');
      } catch {
        // Already gone.
      }
    });

    const seenReady: number[] = [];
    const deadline = Date.now() + 120_000;
    let screen = '';
    while (!existsSync(exitFile) || readFileSync(exitFile, 'utf8').trim() === '') {
      assert.ok(Date.now() < deadline, `the run did not end within 120 s; the screen:\n${screen}`);
      screen = tmux('capture-pane', '-p', '-t', 'follow');
      const ready = /waiting on barrier "ready" \((\d+) of 19\): 1 instance waiting/.exec(screen);
      if (ready && Number(ready[1]) !== seenReady.at(-1)) seenReady.push(Number(ready[1]));
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    const everything = tmux('capture-pane', '-p', '-t', 'follow', '-S', '-5000');
    assert.equal(readFileSync(exitFile, 'utf8').trim(), '0', everything);
    assert.ok(
      seenReady.length >= 2,
      `the ready barrier's count was seen rising (seen: ${seenReady.join(', ')})`,
    );
    assert.deepEqual(
      seenReady,
      [...seenReady].sort((a, b) => a - b),
      'the count only rises',
    );
    // Redrawn in place: the status lines never scrolled into the log, and they are gone once it ended.
    assert.doesNotMatch(everything, /waiting on barrier|\d+ of 20 started/);
    assert.match(everything, /single: 20\/20 ok/);
  });

  it('in a pipe, prints a progress line at least every 5 s while the run waits', async () => {
    const followed = await followInPipes(daemon.url);
    assert.equal(followed.code, 0, followed.stderr);
    const progress = followed.lines.filter((line) => line.text.startsWith('progress: '));
    const ended = followed.lines.find((line) => / task complete: /.test(line.text));
    const queued = followed.lines.find((line) => / queued \(task /.test(line.text));
    assert.ok(ended && queued && progress.length >= 2, followed.stdout);
    const times = [queued.at, ...progress.map((line) => line.at), ended.at];
    const gaps = times.slice(1).map((at, index) => at - times[index]!);
    assert.ok(Math.max(...gaps) <= 5_000, `gaps between progress lines: ${gaps.join(', ')} ms`);
    assert.ok(
      progress.some((line) =>
        /single: 20 of 20 started, 20 running; waiting on barrier "released"/.test(line.text),
      ),
      progress.map((line) => line.text).join('\n'),
    );
  });

  it('Ctrl-C stops following with a hint, exit 130, and the task goes on', async () => {
    let interrupted = false;
    const followed = await followInPipes(daemon.url, (text, send) => {
      if (!interrupted && /\] my sequence ID/.test(text)) {
        interrupted = true;
        send('SIGINT');
      }
    });
    const taskId = taskIdIn(followed.stdout);
    assert.equal(followed.code, 130, followed.stderr);
    assert.ok(
      followed.stderr.includes(
        `task ${taskId} is still running; follow it with "testground logs -f -t ${taskId}", stop it with "testground cancel -t ${taskId}"\n` +
          '(press Ctrl-C again within 2 s to cancel it)\n',
      ),
      followed.stderr,
    );
    assert.equal((await taskOf(daemon.url, taskId)).state, 'running');
    const task = await waitForState(daemon.url, taskId, 'complete', 60_000);
    assert.equal(task.outcome, 'success');
  });

  it('a second Ctrl-C within 2 s cancels the task and says so, exit 4', async () => {
    let interrupted = false;
    const followed = await followInPipes(daemon.url, (text, send) => {
      if (!interrupted && /\] my sequence ID/.test(text)) {
        interrupted = true;
        send('SIGINT');
        setTimeout(() => send('SIGINT'), 500);
      }
    });
    const taskId = taskIdIn(followed.stdout);
    assert.equal(followed.code, 4, followed.stderr);
    assert.match(
      followed.stderr,
      new RegExp(`canceled task ${taskId} \\(second Ctrl-C\\): the daemon stops its instances`),
    );
    const task = await waitForState(daemon.url, taskId, 'canceled', 60_000);
    assert.equal(task.outcome, 'canceled');
  });
});

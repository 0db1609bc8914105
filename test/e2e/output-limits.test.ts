import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { LogEntry } from '../../core/task-log.ts';
import {
  repoRoot,
  scratchDir,
  startDaemonProcess,
  waitFor,
  type DaemonProcess,
} from '../helpers/processes.ts';
import { runSingle, taskIdOf, taskOf, waitForState, type TaskJson } from '../helpers/daemon-api.ts';

const run = promisify(execFile);
const chatty = path.join(repoRoot, 'test/fixtures/plans/chatty');
const mib = 1024 * 1024;

/** The task's whole log as the API serves it. */
async function logOf(url: string, id: string): Promise<LogEntry[]> {
  const text = await (await fetch(`${url}/api/v1/tasks/${id}/logs`)).text();
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as LogEntry);
}

function instanceDir(daemon: DaemonProcess, task: TaskJson, plan: string): string {
  return path.join(daemon.home, 'outputs', 'local:exec', plan, task.runs[0]!.id, 'single', '0');
}

/** VmRSS of a live process, in bytes. */
async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 'NaN') * 1024;
}

async function peakRssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 'NaN') * 1024;
}

async function submit(url: string, plan: string, testCase: string, params: string[]): Promise<string> {
  const args = ['--instances', '1', ...params.flatMap((param) => ['--test-param', param])];
  const submitted = await runSingle(url, plan, testCase, args);
  assert.equal(submitted.code, 0, submitted.stdout + submitted.stderr);
  return taskIdOf(submitted.stdout);
}

/** A second run on the same daemon: it must still carry work to success. */
async function assertStillServing(daemon: DaemonProcess): Promise<void> {
  const next = await runSingle(daemon.url, 'placebo', 'ok', ['--instances', '1', '--wait']);
  assert.equal(next.code, 0, `a second run on the same daemon succeeds:\n${next.stdout}${next.stderr}`);
  assert.equal(daemon.child.exitCode, null, 'the daemon is still running');
}

describe('one instance printing 500 MB (real daemon, local:exec)', () => {
  let daemon: DaemonProcess;
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  const cleanups: (() => Promise<unknown>)[] = [];
  before(async () => {
    scratch = await scratchDir('output-limits');
    daemon = await startDaemonProcess({
      home: path.join(scratch.dir, 'home'),
      env: { TESTGROUND_OUTPUT_QUOTA: '64MiB' },
    });
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await daemon?.stop();
    await scratch?.remove();
  });

  it('keeps the daemon under 300 MB and /health under 1 s, ends with the outcome, notes and the quota', async () => {
    const pid = daemon.child.pid!;
    const id = await submit(daemon.url, chatty, 'flood', ['megabytes=500']);
    let maxRss = 0;
    let maxHealthMs = 0;
    let probes = 0;
    let task: TaskJson;
    for (;;) {
      maxRss = Math.max(maxRss, await rssOf(pid));
      const started = performance.now();
      const health = await fetch(`${daemon.url}/api/v1/health`, { signal: AbortSignal.timeout(10_000) });
      await health.arrayBuffer();
      maxHealthMs = Math.max(maxHealthMs, performance.now() - started);
      assert.equal(health.status, 200);
      probes += 1;
      task = await taskOf(daemon.url, id);
      if (task.state === 'complete' || task.state === 'canceled') break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const peak = await peakRssOf(pid);
    console.log(
      `output-limits: 500 MB from one instance: daemon VmRSS max ${(maxRss / mib).toFixed(0)} MiB over ${probes} probes, ` +
        `VmHWM ${(peak / mib).toFixed(0)} MiB, /health max ${maxHealthMs.toFixed(0)} ms`,
    );
    assert.ok(maxRss < 300 * 1_000_000, `daemon RSS stayed under 300 MB (max ${maxRss} bytes)`);
    assert.ok(peak < 300 * 1_000_000, `daemon peak RSS (VmHWM) under 300 MB (${peak} bytes)`);
    assert.ok(maxHealthMs < 1_000, `/health answered within 1 s throughout (max ${maxHealthMs} ms)`);

    assert.equal(task.outcome, 'success', `${task.outcome}: ${task.error}`);
    const instance = task.result?.instances[0];
    assert.equal(instance?.outcome, 'success');
    assert.match(
      instance?.notes?.join('\n') ?? '',
      /run\.out lost .* at the quota|truncated at the quota of 64 MiB/,
    );

    const log = await logOf(daemon.url, id);
    const warnings = log.flatMap((entry) =>
      entry.kind === 'log' && entry.level === 'warn' ? [entry.msg] : [],
    );
    assert.ok(
      warnings.some((msg) => /single\[0\]: \d+ output lines .* were not shown in the live log/.test(msg)),
      `the live log says what it dropped: ${warnings.join('\n')}`,
    );
    const shown = log.filter((entry) => entry.kind === 'output').length;
    assert.ok(shown > 1_000 && shown < 50_000, `the live log took the budget's worth of lines (${shown})`);
    assert.deepEqual(
      log.filter((entry) => entry.kind === 'state').map((entry) => entry.kind === 'state' && entry.state),
      ['queued', 'building', 'running'],
      'every state change is in the log',
    );
    assert.equal(log.at(-1)?.kind, 'end');

    const runOut = path.join(instanceDir(daemon, task, 'chatty'), 'run.out');
    const size = (await stat(runOut)).size;
    assert.ok(
      size > 64 * mib && size < 64 * mib + 1024,
      `run.out holds the 64 MiB quota and a note (${size} bytes)`,
    );
    const handle = await open(runOut);
    const tail = Buffer.alloc(512);
    const { bytesRead } = await handle.read(tail, 0, 512, size - 512);
    await handle.close();
    assert.match(
      tail.subarray(0, bytesRead).toString(),
      /\[testground: run\.out truncated at the output quota of 64 MiB per instance; .* more were not kept\]\n$/,
    );
  });

  it('an output file made unwritable mid-run ends that run as error naming EPERM; the next run succeeds', async () => {
    const id = await submit(daemon.url, chatty, 'trickle', ['seconds=60']);
    const running = await waitForState(daemon.url, id, 'running');
    const runErr = path.join(instanceDir(daemon, running, 'chatty'), 'run.err');
    await waitFor('the instance to write to run.err', async () =>
      ((await stat(runErr).catch(() => undefined))?.size ?? 0) > 0 ? true : undefined,
    );
    // Immutable: even root's writes through the daemon's open descriptor fail, with EPERM.
    await run('chattr', ['+i', runErr]);
    cleanups.push(() => run('chattr', ['-i', runErr]));
    const started = Date.now();
    const task = await waitForState(daemon.url, id, 'complete', 30_000);
    assert.equal(task.outcome, 'error', `${task.outcome}: ${task.error}`);
    assert.match(task.error ?? '', /instance single\[0\]: could not write its output: EPERM on \S+run\.err/);
    assert.ok(Date.now() - started < 20_000, 'the run was stopped, not left to run its 60 s');
    await run('chattr', ['-i', runErr]);
    await assertStillServing(daemon);
  });
});

describe('a full outputs filesystem (real daemon, local:exec, 16 MiB tmpfs)', () => {
  let daemon: DaemonProcess | undefined;
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  let outputs: string;
  let mounted = false;
  before(async () => {
    scratch = await scratchDir('output-full');
    const home = path.join(scratch.dir, 'home');
    outputs = path.join(home, 'outputs');
    await mkdir(outputs, { recursive: true });
    try {
      await run('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', outputs]);
    } catch (error) {
      throw new Error(
        `this test mounts a 16 MiB tmpfs as the daemon's outputs and needs root: ${(error as Error).message}`,
      );
    }
    mounted = true;
    daemon = await startDaemonProcess({ home });
  });
  after(async () => {
    await daemon?.stop();
    if (mounted) await run('umount', [outputs]);
    await scratch?.remove();
  });

  it('ends the run as error naming ENOSPC, and the daemon runs the next one once there is room', async () => {
    const id = await submit(daemon!.url, chatty, 'flood', ['megabytes=64', 'stream=stderr']);
    const task = await waitForState(daemon!.url, id, 'complete', 60_000);
    assert.equal(task.outcome, 'error', `${task.outcome}: ${task.error}`);
    assert.match(task.error ?? '', /instance single\[0\]: could not write its output: ENOSPC on \S+run\.err/);
    // Room again, as an operator would make it: the failed run's outputs go.
    await rm(path.join(outputs, 'local:exec', 'chatty', task.runs[0]!.id), { recursive: true, force: true });
    await assertStillServing(daemon!);
  });
});

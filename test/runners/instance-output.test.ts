import assert from 'node:assert/strict';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FileWriteError } from '../../runners/capped-file.ts';
import { InstanceOutput } from '../../runners/instance-output.ts';
import { MemoryTaskLog } from '../helpers/memory-task-log.ts';
import { scratchDir } from '../helpers/processes.ts';

const event = (body: Record<string, unknown>): string =>
  `${JSON.stringify({ ts: 1, msg: '', group_id: 'single', run_id: 'r', event: body })}\n`;

describe('InstanceOutput', () => {
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  before(async () => {
    scratch = await scratchDir('instance-output');
  });
  after(async () => {
    await scratch?.remove();
  });

  const output = async (
    name: string,
    options: { quotaBytes?: number; onFailure?: (error: FileWriteError) => void; log?: MemoryTaskLog } = {},
  ): Promise<{ output: InstanceOutput; dir: string; log: MemoryTaskLog }> => {
    const dir = path.join(scratch.dir, name, 'out');
    const scratchDirectory = path.join(scratch.dir, name, 'scratch');
    await mkdir(dir, { recursive: true });
    await mkdir(scratchDirectory, { recursive: true });
    const log = options.log ?? new MemoryTaskLog();
    return {
      output: new InstanceOutput({
        group: 'single',
        index: 0,
        log,
        dir,
        scratchDir: scratchDirectory,
        ...(options.quotaBytes === undefined ? {} : { quotaBytes: options.quotaBytes }),
        ...(options.onFailure ? { onFailure: options.onFailure } : {}),
      }),
      dir,
      log,
    };
  };

  it('splits chunks into lines, finds the terminal event, and keeps stdout as run.out', async () => {
    const { output: out, dir } = await output('stdout');
    const text = event({ type: 'start' }) + 'plain line\n' + event({ type: 'finish', outcome: 'ok' });
    // Chunk boundaries fall inside lines and inside a multi-byte character.
    const bytes = Buffer.from(`é${text}`);
    for (let at = 0; at < bytes.length; at += 7) await out.write('stdout', bytes.subarray(at, at + 7));
    await out.write('stderr', Buffer.from('warning\n'));
    await out.finish();
    assert.equal(out.terminal?.kind, 'success');
    assert.equal(await readFile(path.join(dir, 'run.out'), 'utf8'), `é${text}`);
    assert.equal(await readFile(path.join(dir, 'run.err'), 'utf8'), 'warning\n');
  });

  it('marks started at the start event, the stages at their own ts, and what the runner marks, in time order', async () => {
    const { output: out } = await output('phases');
    const at = (iso: string): string =>
      `${JSON.stringify({ ts: 0, msg: '', group_id: 'single', run_id: 'r' })
        .slice(0, -1)
        .replace('"ts":0', `"ts":${Date.parse(iso)}000000`)}`;
    const line = (iso: string, body: Record<string, unknown>): string =>
      `${at(iso)},"event":${JSON.stringify(body)}}\n`;
    out.mark('created', new Date('2026-01-01T00:00:00.000Z'));
    await out.write('stdout', Buffer.from(line('2026-01-01T00:00:01.000Z', { type: 'start' })));
    out.mark('network-initialized', new Date('2026-01-01T00:00:01.500Z'));
    await out.write(
      'stdout',
      Buffer.from(
        line('2026-01-01T00:00:02.000Z', { type: 'stage_start', name: 'dial', group: 'single' }) +
          'plain output\n' +
          line('2026-01-01T00:00:03.250Z', { type: 'stage_end', name: 'dial', group: 'single' }),
      ),
    );
    await out.finish();
    assert.deepEqual(out.phases, [
      { name: 'created', at: '2026-01-01T00:00:00.000Z' },
      { name: 'started', at: '2026-01-01T00:00:01.000Z' },
      { name: 'network-initialized', at: '2026-01-01T00:00:01.500Z' },
      { name: 'stage-start:dial', at: '2026-01-01T00:00:02.000Z' },
      { name: 'stage-end:dial', at: '2026-01-01T00:00:03.250Z' },
    ]);
  });

  it('keeps at most 200 stage marks, so a plan looping over stages cannot swell the task record', async () => {
    const { output: out } = await output('phases-capped');
    let text = '';
    for (let i = 0; i < 150; i++) {
      text += event({ type: 'stage_start', name: `s${i}`, group: 'single' });
      text += event({ type: 'stage_end', name: `s${i}`, group: 'single' });
    }
    await out.write('stdout', Buffer.from(text));
    await out.finish();
    assert.equal(out.phases.filter((phase) => phase.name.startsWith('stage-')).length, 200);
  });

  it('marks started at the first output when it is not a start event', async () => {
    const { output: out } = await output('phases-plain');
    const before = Date.now();
    await out.write('stderr', Buffer.from('booting\n'));
    await out.write('stdout', Buffer.from(event({ type: 'start' })));
    const phases = out.phases;
    assert.deepEqual(
      phases.map((phase) => phase.name),
      ['started'],
    );
    assert.ok(Date.parse(phases[0]!.at) >= before - 1);
    await out.finish();
  });

  it('keeps the run.out the instance wrote, and reads the outcome from it when stdout lost the end', async () => {
    const { output: out, dir } = await output('lost-stdout');
    const own = event({ type: 'start' }) + event({ type: 'finish', outcome: 'failure', error: 'boom' });
    await writeFile(path.join(dir, 'run.out'), own);
    await out.write('stdout', Buffer.from(event({ type: 'start' })));
    await out.finish();
    assert.equal(out.terminal?.kind, 'failure');
    assert.equal(
      await readFile(path.join(dir, 'run.out'), 'utf8'),
      own,
      'each event once, as the instance wrote it',
    );
  });

  it('keeps stdout and stderr up to the quota together, ends each cut file with a note, and says so', async () => {
    const { output: out, dir, log } = await output('quota', { quotaBytes: 1000 });
    const line = `${'o'.repeat(99)}\n`;
    for (let index = 0; index < 8; index += 1) await out.write('stdout', Buffer.from(line));
    for (let index = 0; index < 4; index += 1)
      await out.write('stderr', Buffer.from(line.replace(/o/g, 'e')));
    await out.write('stdout', Buffer.from(event({ type: 'finish', outcome: 'ok' })));
    await out.finish();
    assert.equal(out.terminal?.kind, 'success', 'an event past the quota still decides the outcome');
    const runOut = await readFile(path.join(dir, 'run.out'), 'utf8');
    const runErr = await readFile(path.join(dir, 'run.err'), 'utf8');
    assert.equal(
      runOut,
      line.repeat(8) +
        '\n[testground: run.out truncated at the output quota of 1000 bytes per instance; 92 bytes more were not kept]\n',
    );
    assert.equal(
      runErr,
      `${'e'.repeat(99)}\n${'e'.repeat(99)}\n` +
        '\n[testground: run.err truncated at the output quota of 1000 bytes per instance; 200 bytes more were not kept]\n',
    );
    assert.deepEqual(out.notes, [
      'output truncated at the quota of 1000 bytes per instance: run.out lost 92 bytes, run.err lost 200 bytes',
    ]);
    assert.match(log.text(), /WARN single\[0\]: output truncated at the quota of 1000 bytes/);
    assert.equal(out.failure, undefined);
  });

  it('asks its source to wait while the live log catches up', async () => {
    const log = new MemoryTaskLog();
    let release: () => void = () => undefined;
    const caughtUp = new Promise<void>((resolve) => (release = resolve));
    let busy = true;
    Object.assign(log, { backpressure: () => (busy ? caughtUp : undefined) });
    const { output: out } = await output('backpressure', { log });
    const ready = out.write('stdout', Buffer.from('line\n'));
    assert.ok(ready, 'the source is asked to wait');
    let resumed = false;
    void ready.then(() => (resumed = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(resumed, false);
    busy = false;
    release();
    await ready;
    assert.equal(out.write('stdout', Buffer.from('more\n')), undefined);
    await out.finish();
  });

  it('a file it cannot write is a failure naming the code and the path, reported once and never thrown', async () => {
    const failures: FileWriteError[] = [];
    const { output: out, dir } = await output('unwritable', { onFailure: (error) => failures.push(error) });
    // Done with its files first: one it opened late would otherwise stand where the directory goes.
    await out.finish();
    // Not a file at all: opening it for writing fails (EISDIR), as an unwritable or full disk would.
    await rm(path.join(dir, 'run.err'), { force: true });
    await mkdir(path.join(dir, 'run.err', 'inside'), { recursive: true });
    const broken = new InstanceOutput({
      group: 'single',
      index: 0,
      log: new MemoryTaskLog(),
      dir,
      scratchDir: path.join(scratch.dir, 'unwritable', 'scratch'),
      onFailure: (error) => failures.push(error),
    });
    await broken.write('stderr', Buffer.from('lost\n'));
    await broken.write('stdout', Buffer.from(event({ type: 'finish', outcome: 'ok' })));
    await broken.finish();
    assert.equal(failures.length, 1, failures.map((failure) => failure.message).join('\n'));
    assert.equal(broken.failure?.code, 'EISDIR');
    assert.match(broken.failure?.message ?? '', /^EISDIR on \S+\/unwritable\/out\/run\.err \(EISDIR: /);
    assert.equal(broken.terminal?.kind, 'success', 'what it could read still counts');
  });
});

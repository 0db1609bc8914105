import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
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
  ): Promise<{ output: InstanceOutput; dir: string; log: MemoryTaskLog }> => {
    const dir = path.join(scratch.dir, name, 'out');
    const scratchDirectory = path.join(scratch.dir, name, 'scratch');
    await mkdir(dir, { recursive: true });
    await mkdir(scratchDirectory, { recursive: true });
    const log = new MemoryTaskLog();
    return {
      output: new InstanceOutput({ group: 'single', index: 0, log, dir, scratchDir: scratchDirectory }),
      dir,
      log,
    };
  };

  it('splits chunks into lines, finds the terminal event, and keeps stdout as run.out', async () => {
    const { output: out, dir } = await output('stdout');
    const text = event({ type: 'start' }) + 'plain line\n' + event({ type: 'finish', outcome: 'ok' });
    // Chunk boundaries fall inside lines and inside a multi-byte character.
    const bytes = Buffer.from(`é${text}`);
    for (let at = 0; at < bytes.length; at += 7) out.write('stdout', bytes.subarray(at, at + 7));
    out.write('stderr', Buffer.from('warning\n'));
    await out.finish();
    assert.equal(out.terminal?.kind, 'success');
    assert.equal(await readFile(path.join(dir, 'run.out'), 'utf8'), `é${text}`);
    assert.equal(await readFile(path.join(dir, 'run.err'), 'utf8'), 'warning\n');
  });

  it('keeps the run.out the instance wrote, and reads the outcome from it when stdout lost the end', async () => {
    const { output: out, dir } = await output('lost-stdout');
    const own = event({ type: 'start' }) + event({ type: 'finish', outcome: 'failure', error: 'boom' });
    await writeFile(path.join(dir, 'run.out'), own);
    out.write('stdout', Buffer.from(event({ type: 'start' })));
    await out.finish();
    assert.equal(out.terminal?.kind, 'failure');
    assert.equal(
      await readFile(path.join(dir, 'run.out'), 'utf8'),
      own,
      'each event once, as the instance wrote it',
    );
  });
});

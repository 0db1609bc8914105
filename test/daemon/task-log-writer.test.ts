import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { logStart, type LogEntry } from '../../core/task-log.ts';
import { LogBus } from '../../daemon/log-bus.ts';
import { startTestRedis } from '../helpers/redis-server.ts';

describe('a task log held to its live-log budget (real Redis)', () => {
  let redis: Awaited<ReturnType<typeof startTestRedis>>;
  before(async () => {
    redis = await startTestRedis();
  });
  after(async () => {
    await redis.close();
  });

  let prefix = '';
  const newBus = (budget?: { instanceBytes: number; taskBytes: number }): LogBus => {
    prefix = `w${randomBytes(4).toString('hex')}`;
    return new LogBus(redis.client, prefix, budget ? { budget } : {});
  };
  const entriesOf = async (bus: LogBus, taskId: string): Promise<LogEntry[]> => {
    const entries: LogEntry[] = [];
    for await (const entry of bus.history(taskId, logStart)) entries.push(entry);
    return entries;
  };
  const warnings = (entries: LogEntry[]): string[] =>
    entries.flatMap((entry) => (entry.kind === 'log' && entry.level === 'warn' ? [entry.msg] : []));

  it('keeps every entry of a log past 200,000 entries: nothing is trimmed, state changes included', async () => {
    const bus = newBus({ instanceBytes: 1024 ** 3, taskBytes: 1024 ** 3 });
    await bus.append('big', { kind: 'state', ts: new Date().toISOString(), state: 'running' });
    const log = bus.taskLog('big', (error) => assert.fail(String(error)));
    for (let index = 0; index < 210_000; index += 1) {
      log.output('single', 0, 'stdout', `line ${index}`);
      // As a runner does: wait while the log catches up.
      const ready = log.backpressure?.();
      if (ready) await ready;
    }
    log.instanceEnd('single', 0, 'success', 'done');
    await bus.end('big', { state: 'complete', outcome: 'success' });
    // Counted and sampled in Redis itself: reading 210,000 entries back would only measure the reader.
    const key = `${prefix}:log:big`;
    assert.equal(await redis.client.xlen(key), 210_003);
    const first = await bus.read('big', logStart, { count: 2 });
    assert.deepEqual(
      first.map((entry) =>
        entry.kind === 'state' ? entry.state : entry.kind === 'output' ? entry.line : '',
      ),
      ['running', 'line 0'],
    );
    const last = (await redis.client.xrevrange(key, '+', '-', 'COUNT', 3)).map(
      ([, fields]) => JSON.parse(fields[1]!) as LogEntry,
    );
    assert.deepEqual(
      last.map((entry) => entry.kind),
      ['end', 'instance_end', 'output'],
    );
    assert.equal(last[2]?.kind === 'output' && last[2].line, 'line 209999');
  });

  it("past an instance's budget, says so once, counts what it left out, and says that when the instance ends", async () => {
    const bus = newBus({ instanceBytes: 10_000, taskBytes: 1_000_000 });
    const log = bus.taskLog('chatty', (error) => assert.fail(String(error)));
    for (let index = 0; index < 1_000; index += 1) log.output('single', 0, 'stdout', 'x'.repeat(80));
    log.output('single', 1, 'stderr', 'the other instance has a budget of its own');
    log.instanceEnd('single', 0, 'success', 'done');
    log.instanceEnd('single', 1, 'success', 'done');
    // The next run of the task: the same instance starts over.
    log.output('single', 0, 'stdout', 'next run');
    await bus.append('chatty', { kind: 'state', ts: new Date().toISOString(), state: 'complete' });
    await bus.end('chatty', { state: 'complete', outcome: 'success' });
    const entries = await entriesOf(bus, 'chatty');
    const shown = entries.filter((entry) => entry.kind === 'output' && entry.instance === 0).length;
    // 80 characters, 6 of group, 120 of overhead: 48 lines fit in 10,000 bytes.
    assert.equal(shown, 48 + 1);
    const notes = warnings(entries);
    assert.equal(notes.length, 2, notes.join('\n'));
    assert.match(notes[0]!, /^single\[0\]: live log budget of 9\.8 KiB .* per instance reached/);
    assert.match(
      notes[1]!,
      /^single\[0\]: 952 output lines \(.*\) were not shown in the live log \(budget 9\.8 KiB .* per instance\)/,
    );
    assert.ok(
      entries.some((entry) => entry.kind === 'output' && entry.instance === 1),
      'another instance still shows its lines',
    );
    assert.deepEqual(
      entries.slice(-3).map((entry) => entry.kind),
      ['output', 'state', 'end'],
      'a state change appended directly keeps its place after the output waiting to be sent',
    );
  });

  it("past the task's budget, says so once for all its instances", async () => {
    const bus = newBus({ instanceBytes: 1_000_000, taskBytes: 5_000 });
    const log = bus.taskLog('many', (error) => assert.fail(String(error)));
    for (let instance = 0; instance < 10; instance += 1) {
      for (let index = 0; index < 10; index += 1) log.output('peers', instance, 'stdout', 'y'.repeat(50));
    }
    for (let instance = 0; instance < 10; instance += 1)
      log.instanceEnd('peers', instance, 'success', 'done');
    await bus.end('many', { state: 'complete', outcome: 'success' });
    const notes = warnings(await entriesOf(bus, 'many'));
    assert.equal(notes.filter((msg) => /per task reached/.test(msg)).length, 1, notes.join('\n'));
    assert.ok(
      notes.some((msg) => /^peers\[9\]: 10 output lines .* \(budget 4\.9 KiB .* per task\)/.test(msg)),
    );
  });

  it('asks producers to wait while more than 1 MiB waits for Redis, and lets them go once it is sent', async () => {
    const bus = newBus();
    const log = bus.taskLog('pressure', (error) => assert.fail(String(error)));
    for (let index = 0; index < 3_000; index += 1) log.info('z'.repeat(500));
    const ready = log.backpressure?.();
    assert.ok(ready, 'a producer is asked to wait');
    await ready;
    assert.equal(log.backpressure?.(), undefined);
    await bus.end('pressure', { state: 'complete', outcome: 'success' });
    assert.equal((await entriesOf(bus, 'pressure')).length, 3_001);
  });

  it('does not stall a plan while Redis does not answer: output past 8 MiB behind is left out and counted', async () => {
    const bus = newBus({ instanceBytes: 1024 ** 3, taskBytes: 1024 ** 3 });
    const log = bus.taskLog('stalled', () => undefined);
    // Redis itself holds every write for 3 s, as a stalled or restarting server would.
    await redis.client.call('CLIENT', 'PAUSE', '3000', 'WRITE');
    const started = Date.now();
    const line = 'p'.repeat(1_000);
    for (let index = 0; index < 12_000; index += 1) {
      log.output('single', 0, 'stdout', line);
      const ready = log.backpressure?.();
      if (ready) await ready;
    }
    const elapsedMs = Date.now() - started;
    assert.ok(elapsedMs < 2_500, `12 MB went by in ${elapsedMs} ms, not at Redis's pace`);
    log.instanceEnd('single', 0, 'success', 'done');
    await bus.end('stalled', { state: 'complete', outcome: 'success' });
    const entries = await entriesOf(bus, 'stalled');
    const notes = warnings(entries);
    assert.match(notes[0] ?? '', /^the live log fell 8 MiB behind \(Redis is slow or away\)/);
    assert.match(
      notes[1] ?? '',
      /^single\[0\]: \d+ output lines .* were not shown in the live log \(the live log fell behind\)/,
    );
    const shown = entries.filter((entry) => entry.kind === 'output').length;
    assert.ok(shown > 7_000 && shown < 12_000, `what fit under the cap was kept (${shown} lines)`);
    assert.equal(entries.at(-1)?.kind, 'end');
  });
});

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { parseMetricLine } from '../../core/contract/metrics.ts';
import { Metrics } from '../../sdk/metrics.ts';
import { parseRunEnv } from '../../sdk/runenv.ts';
import { instanceEnv, scratchDir } from './spawn-instance.ts';

const scratch = scratchDir('metrics');
after(() => scratch.cleanup());

let dirs = 0;
function metricsIn(): { metrics: Metrics; lines: () => Record<string, unknown>[] } {
  const outputsPath = path.join(scratch.dir, `outputs-${++dirs}`);
  let ns = 1_700_000_000_000_000_000n;
  let ms = 0;
  const metrics = new Metrics({
    outputsPath,
    clock: () => (ns += 1_000n),
    monotonicMs: () => (ms += 12.5),
  });
  return {
    metrics,
    lines: () =>
      readFileSync(path.join(outputsPath, 'metrics.out'), 'utf8')
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

describe('Metrics', () => {
  it('writes one results.out-shaped line per observation, a counter as its running total', async () => {
    const { metrics, lines } = metricsIn();
    const sent = metrics.counter('messages', 'msg');
    sent.inc();
    sent.inc(4);
    metrics.gauge('peers').set(7);
    metrics.histogram('latency', 'ms').record(3.25);
    metrics.recordPoint('rtt', 0.5, 's');
    const result = await metrics.time('dial', () => 'done');
    assert.equal(result, 'done');
    assert.equal(sent.value, 5);
    assert.equal(metrics.counter('messages'), sent, 'the same name is the same counter');
    assert.deepEqual(lines(), [
      {
        ts: 1_700_000_000_000_001_000,
        type: 'counter',
        name: 'messages',
        measures: { count: 1 },
        unit: 'msg',
      },
      {
        ts: 1_700_000_000_000_002_000,
        type: 'counter',
        name: 'messages',
        measures: { count: 5 },
        unit: 'msg',
      },
      { ts: 1_700_000_000_000_003_000, type: 'gauge', name: 'peers', measures: { value: 7 } },
      {
        ts: 1_700_000_000_000_004_000,
        type: 'histogram',
        name: 'latency',
        measures: { value: 3.25 },
        unit: 'ms',
      },
      { ts: 1_700_000_000_000_005_000, type: 'point', name: 'rtt', measures: { value: 0.5 }, unit: 's' },
      {
        ts: 1_700_000_000_000_006_000,
        type: 'histogram',
        name: 'dial',
        measures: { value: 12.5 },
        unit: 'ms',
      },
    ]);
  });

  it('keeps every nanosecond digit of ts in the file', () => {
    const { metrics } = metricsIn();
    const outputsPath = path.join(scratch.dir, `outputs-${dirs}`);
    metrics.recordPoint('x', 1);
    const text = readFileSync(path.join(outputsPath, 'metrics.out'), 'utf8');
    assert.match(text, /^\{"ts":1700000000000001000,"type":"point"/);
    assert.deepEqual(parseMetricLine(text.trimEnd()), {
      ts: 1.700000000000001e18,
      type: 'point',
      name: 'x',
      value: 1,
    });
  });

  it('times a function that throws, and passes the error on', async () => {
    const { metrics, lines } = metricsIn();
    await assert.rejects(
      metrics.time('fails', async () => {
        throw new Error('dial refused');
      }),
      /dial refused/,
    );
    assert.deepEqual(lines()[0]?.measures, { value: 12.5 });
  });

  it('refuses a name used for two types, a second unit, and values that are not finite numbers', () => {
    const { metrics } = metricsIn();
    metrics.counter('ops');
    assert.throws(() => metrics.histogram('ops'), /metric "ops" is a counter; it cannot also be a histogram/);
    metrics.histogram('lat', 'ms');
    assert.throws(() => metrics.histogram('lat', 's'), /metric "lat" is measured in "ms", not "s"/);
    assert.throws(
      () => metrics.gauge('g').set(Number.NaN),
      /metric "g": value must be a finite number, got NaN/,
    );
    assert.throws(() => metrics.recordPoint('p', '3' as unknown as number), /got "3"/);
    assert.throws(() => metrics.counter(''), /metric name must be a non-empty string/);
  });
});

describe('parseMetricLine', () => {
  it("reads the original's point, counter and gauge records and skips what it does not summarise", () => {
    assert.deepEqual(parseMetricLine('{"ts":5,"type":"point","name":"rtt,peer=3","measures":{"value":2}}'), {
      ts: 5,
      type: 'point',
      name: 'rtt,peer=3',
      value: 2,
    });
    assert.equal(parseMetricLine('{"ts":5,"type":"counter","name":"c","measures":{"count":9}}')?.value, 9);
    assert.equal(parseMetricLine('{"ts":5,"type":"meter","name":"m","measures":{"count":1}}'), undefined);
    assert.equal(parseMetricLine('{"ts":5,"type":"histogram","name":"h","measures":{"p50":1}}'), undefined);
    assert.equal(parseMetricLine('{"ts":5,"type":"point","name":"torn'), undefined);
    assert.equal(parseMetricLine('[1]'), undefined);
  });
});

describe('RunEnv', () => {
  it('writes recordPoint and runenv.metrics to $TEST_OUTPUTS_PATH/metrics.out', () => {
    const outputs = path.join(scratch.dir, 'runenv-outputs');
    const runenv = parseRunEnv(instanceEnv({ TEST_OUTPUTS_PATH: outputs }), { writeStdout: () => {} });
    runenv.recordPoint('throughput', 120, 'MiB/s');
    runenv.metrics.counter('done').inc();
    const records = readFileSync(path.join(outputs, 'metrics.out'), 'utf8')
      .trimEnd()
      .split('\n')
      .map((line) => parseMetricLine(line));
    assert.deepEqual(
      records.map((record) => [record?.type, record?.name, record?.value, record?.unit]),
      [
        ['point', 'throughput', 120, 'MiB/s'],
        ['counter', 'done', 1, undefined],
      ],
    );
  });
});

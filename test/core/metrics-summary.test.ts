import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nearestRank, summarizeMetrics, type MetricPoint } from '../../core/metrics-summary.ts';

const at = '2026-01-01T00:00:00.000Z';
const point = (
  group: string,
  instance: number,
  name: string,
  type: MetricPoint['type'],
  value: number,
): MetricPoint => ({
  group,
  instance,
  name,
  type,
  value,
  ts: at,
});

describe('nearestRank', () => {
  it('is the smallest recorded value with at least p % of the values at or below it', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(nearestRank(values, 50), 50);
    assert.equal(nearestRank(values, 90), 90);
    assert.equal(nearestRank(values, 99), 99);
    assert.equal(nearestRank([15, 20, 35, 40, 50], 30), 20);
    assert.equal(nearestRank([15, 20, 35, 40, 50], 40), 20);
    assert.equal(nearestRank([15, 20, 35, 40, 50], 50), 35);
    assert.equal(nearestRank([7], 99), 7);
    assert.throws(() => nearestRank([], 50), /at least one value/);
  });
});

describe('summarizeMetrics', () => {
  it('summarises histograms by every value and counters by each instance’s final total, per group', () => {
    const summary = summarizeMetrics([
      point('b', 0, 'latency', 'histogram', 9),
      { ...point('a', 0, 'latency', 'histogram', 3), unit: 'ms' },
      point('a', 1, 'latency', 'histogram', 1),
      point('a', 1, 'latency', 'histogram', 2),
      point('a', 0, 'sent', 'counter', 1),
      point('a', 0, 'sent', 'counter', 4),
      point('a', 1, 'sent', 'counter', 10),
      point('a', 1, 'latency', 'gauge', 1000),
    ]);
    assert.deepEqual(Object.keys(summary), ['a', 'b']);
    assert.deepEqual(summary.a?.latency, {
      type: 'histogram',
      unit: 'ms',
      count: 3,
      min: 1,
      p50: 2,
      p90: 3,
      p99: 3,
      max: 3,
      mean: 2,
    });
    assert.deepEqual(summary.a?.sent, {
      type: 'counter',
      count: 2,
      min: 4,
      p50: 4,
      p90: 10,
      p99: 10,
      max: 10,
      mean: 7,
    });
    assert.equal(summary.b?.latency?.count, 1);
  });

  it('sorts numerically, not as text', () => {
    const summary = summarizeMetrics([10, 9, 100, 2].map((value, i) => point('g', i, 'x', 'point', value)));
    assert.deepEqual([summary.g?.x?.min, summary.g?.x?.p50, summary.g?.x?.max], [2, 9, 100]);
  });
});

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { readRunMetricPoints, summarizeRunMetrics } from '../../daemon/metrics-reader.ts';

const root = await mkdtemp(path.join(tmpdir(), 'tg-metrics-reader-'));
after(() => rm(root, { recursive: true, force: true }));

const line = (ts: string, type: string, name: string, measures: string, unit = ''): string =>
  `{"ts":${ts},"type":"${type}","name":"${name}","measures":${measures}${unit ? `,"unit":"${unit}"` : ''}}\n`;

describe('readRunMetricPoints', () => {
  it('reads <group>/<index>/metrics.out of every instance in order, skipping torn lines and links', async () => {
    const run = path.join(root, 'run-1');
    for (const [group, index, text] of [
      ['peers', '10', line('1700000000123456789', 'histogram', 'lat', '{"value":5}', 'ms')],
      ['peers', '2', line('1700000000000000000', 'counter', 'sent', '{"count":3}') + '{"ts":1,"type":"po'],
      ['seeds', '0', line('1700000001000000000', 'point', 'rtt', '{"value":0.25}', 's')],
    ] as const) {
      await mkdir(path.join(run, group, index), { recursive: true });
      await writeFile(path.join(run, group, index, 'metrics.out'), text);
    }
    await mkdir(path.join(run, 'seeds', '1'), { recursive: true });
    await writeFile(path.join(root, 'elsewhere.out'), line('1', 'point', 'secret', '{"value":1}'));
    await symlink(path.join(root, 'elsewhere.out'), path.join(run, 'seeds', '1', 'metrics.out'));

    const { points, dropped } = await readRunMetricPoints(run);
    assert.equal(dropped, 0);
    assert.deepEqual(points, [
      {
        group: 'peers',
        instance: 2,
        name: 'sent',
        type: 'counter',
        value: 3,
        ts: '2023-11-14T22:13:20.000Z',
      },
      {
        group: 'peers',
        instance: 10,
        name: 'lat',
        type: 'histogram',
        value: 5,
        unit: 'ms',
        ts: '2023-11-14T22:13:20.123Z',
      },
      {
        group: 'seeds',
        instance: 0,
        name: 'rtt',
        type: 'point',
        value: 0.25,
        unit: 's',
        ts: '2023-11-14T22:13:21.000Z',
      },
    ]);
    const limited = await readRunMetricPoints(run, 2);
    assert.deepEqual([limited.points.length, limited.dropped], [2, 1]);
    const { summary } = await summarizeRunMetrics(run);
    assert.deepEqual(Object.keys(summary ?? {}), ['peers', 'seeds']);
    assert.equal(summary?.peers?.lat?.p99, 5);
  });

  it('finds nothing in a run directory that is gone or holds no metrics', async () => {
    assert.deepEqual(await readRunMetricPoints(path.join(root, 'gone')), { points: [], dropped: 0 });
    assert.deepEqual(await summarizeRunMetrics(path.join(root, 'gone')), { summary: undefined, dropped: 0 });
  });
});

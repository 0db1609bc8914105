/**
 * plans/benchmarks through the real CLI and daemon: 50 local:exec instances record a latency histogram, a
 * counter and a point; the run's summary from GET /runs/:id/metrics matches the percentiles this test
 * computes itself from the raw points, and every instance carries its phases. The same plan on
 * local:docker (needs a Docker engine: `bash scripts/ensure-deps.sh` starts one).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runMetricsSchema, type MetricPointView, type RunMetrics } from '../../api/schemas.ts';
import { runSingle, taskIdOf, taskOf } from '../helpers/daemon-api.ts';
import { scratchDir, startDaemonProcess, type DaemonProcess } from '../helpers/processes.ts';

// Written out again here rather than imported, so that the check does not share a mistake with the daemon.
function percentile(sorted: number[], p: number): number {
  const index = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.max(0, index)]!;
}

function expectedSummary(points: MetricPointView[]): Record<string, Record<string, unknown>> {
  const byMetric = new Map<string, MetricPointView[]>();
  for (const point of points) {
    const key = `${point.group}\0${point.name}`;
    byMetric.set(key, [...(byMetric.get(key) ?? []), point]);
  }
  const expected: Record<string, Record<string, unknown>> = {};
  for (const [key, list] of byMetric) {
    const [group, name] = key.split('\0') as [string, string];
    const first = list[0]!;
    // A counter: each instance's final total.
    const values =
      first.type === 'counter'
        ? [...new Map(list.map((point) => [point.instance, point.value])).values()]
        : list.map((point) => point.value);
    values.sort((a, b) => a - b);
    (expected[group] ??= {})[name] = {
      type: first.type,
      ...(first.unit === undefined ? {} : { unit: first.unit }),
      count: values.length,
      min: values[0],
      p50: percentile(values, 50),
      p90: percentile(values, 90),
      p99: percentile(values, 99),
      max: values.at(-1),
      mean: values.reduce((sum, value) => sum + value, 0) / values.length,
    };
  }
  return expected;
}

async function metricsOf(url: string, runId: string, raw: boolean): Promise<RunMetrics> {
  const response = await fetch(`${url}/api/v1/runs/${runId}/metrics${raw ? '?raw=true' : ''}`);
  assert.equal(response.status, 200, await response.clone().text());
  return runMetricsSchema.parse(await response.json());
}

describe('plans/benchmarks (real daemon)', () => {
  let daemon: DaemonProcess;
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  before(async () => {
    scratch = await scratchDir('benchmarks');
    daemon = await startDaemonProcess({ home: path.join(scratch.dir, 'home') });
  });
  after(async () => {
    await daemon?.stop();
    await scratch?.remove();
  });

  it('50 local:exec instances: the API summary matches the percentiles of the raw points', async () => {
    const result = await runSingle(daemon.url, 'benchmarks', 'sync-latency', [
      '--instances',
      '50',
      '--test-param',
      'rounds=10',
      '--wait',
    ]);
    assert.equal(result.code, 0, `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
    const taskId = taskIdOf(result.stdout);
    const task = await taskOf(daemon.url, taskId);
    assert.equal(task.outcome, 'success');

    const raw = await metricsOf(daemon.url, task.run_id, true);
    const points = raw.points ?? [];
    const latency = points.filter((point) => point.name === 'sync_signal_ms');
    assert.equal(latency.length, 50 * 10, 'ten timed round trips from each of 50 instances');
    assert.equal(new Set(latency.map((point) => point.instance)).size, 50);
    assert.deepEqual(raw.groups, expectedSummary(points));
    const group = Object.keys(raw.groups)[0]!;
    assert.equal(raw.groups[group]?.sync_signals?.count, 50);
    assert.equal(raw.groups[group]?.sync_signals?.min, 10);
    assert.equal(raw.groups[group]?.barrier_wait_ms?.count, 50);
    assert.equal(raw.groups[group]?.sync_signal_ms?.unit, 'ms');

    const summary = await metricsOf(daemon.url, task.run_id, false);
    assert.equal(summary.points, undefined);
    assert.deepEqual(summary.groups, raw.groups);
    assert.deepEqual(task.runs[0]?.result?.metrics, raw.groups, 'the summary is on the run result');

    // Each instance's phases, in the order they happened (no network-initialized: local:exec without netns
    // has no network to wait for).
    const instances = task.result?.instances ?? [];
    assert.equal(instances.length, 50);
    for (const instance of instances) {
      const phases = instance.phases ?? [];
      assert.deepEqual(
        phases.map((phase) => phase.name),
        [
          'created',
          'started',
          'stage-start:signal',
          'stage-end:signal',
          'stage-start:barrier',
          'stage-end:barrier',
          'ended',
        ],
        `${instance.group}[${instance.index}]`,
      );
      const times = phases.map((phase) => Date.parse(phase.at));
      assert.deepEqual(
        times,
        [...times].sort((a, b) => a - b),
        'in time order',
      );
    }
  });

  it('runs on local:docker too: metrics summarised, phases with network-initialized', async () => {
    const result = await runSingle(daemon.url, 'benchmarks', 'sync-latency', [
      '--builder',
      'docker:node',
      '--runner',
      'local:docker',
      '--instances',
      '4',
      '--test-param',
      'rounds=5',
      '--wait',
    ]);
    assert.equal(result.code, 0, `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
    const task = await taskOf(daemon.url, taskIdOf(result.stdout));
    const raw = await metricsOf(daemon.url, task.run_id, true);
    assert.equal(raw.points?.filter((point) => point.name === 'sync_signal_ms').length, 4 * 5);
    assert.deepEqual(raw.groups, expectedSummary(raw.points ?? []));
    for (const instance of task.result?.instances ?? []) {
      const names = (instance.phases ?? []).map((phase) => phase.name);
      assert.equal(names[0], 'created');
      assert.equal(names.at(-1), 'ended');
      for (const name of ['started', 'network-initialized', 'stage-start:signal', 'stage-end:barrier']) {
        assert.ok(
          names.includes(name),
          `${instance.group}[${instance.index}] has ${name}: ${names.join(', ')}`,
        );
      }
    }
  });
});

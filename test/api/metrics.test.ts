import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { nearestRank } from '../../core/metrics-summary.ts';
import type { RunMetrics, TaskView } from '../../api/schemas.ts';
import { runMetricsSchema } from '../../api/schemas.ts';
import { Metrics } from '../../sdk/metrics.ts';
import { packPlacebo, placeboComposition, startTestApp, type TestApp } from '../helpers/app.ts';
import { Gate } from '../helpers/fake-components.ts';
import { waitFor } from '../helpers/processes.ts';

describe('GET /runs/:id/metrics', () => {
  let api: TestApp;
  let placebo: Buffer;
  before(async () => {
    api = await startTestApp();
    placebo = await packPlacebo();
  });
  after(async () => {
    await api?.close();
  });

  const submit = async (): Promise<{ task_id: string; run_id: string }> => {
    const response = await request(api.app)
      .post('/api/v1/runs')
      .field(
        'composition',
        placeboComposition({}, [
          { id: 'peers', instances: { count: 3 } },
          { id: 'seeds', instances: { count: 1 } },
        ]),
      )
      .attach('plan', placebo, 'plan.tar.gz');
    assert.equal(response.status, 202, JSON.stringify(response.body));
    return response.body as { task_id: string; run_id: string };
  };
  const ended = (id: string) =>
    waitFor(`task ${id} to end`, async () => {
      const task = (await request(api.app).get(`/api/v1/tasks/${id}`)).body as TaskView;
      return task.state === 'complete' || task.state === 'canceled' ? task : undefined;
    });

  it('summarises what the SDK wrote per group when the run ends; raw=true lists the points', async () => {
    const gate = new Gate();
    api.runner.gate = gate;
    const started = api.runner.nextRun();
    const { task_id: taskId, run_id: runId } = await submit();
    const input = await started;
    // Written by the SDK's own writer, where the runner's instances write it.
    for (const index of [0, 1, 2]) {
      const metrics = new Metrics({ outputsPath: path.join(input.outputsDir, 'peers', String(index)) });
      const latency = metrics.histogram('latency', 'ms');
      for (let i = 1; i <= 10; i++) latency.record(index * 10 + i);
      const sent = metrics.counter('sent');
      for (let i = 0; i <= index; i++) sent.inc(5);
    }
    new Metrics({ outputsPath: path.join(input.outputsDir, 'seeds', '0') }).recordPoint('rtt', 0.5, 's');

    const early = await request(api.app).get(`/api/v1/runs/${runId}/metrics`);
    assert.equal(early.status, 409);
    assert.match((early.body as { error: { message: string } }).error.message, /still running/);
    gate.open();
    api.runner.gate = undefined;
    const task = await ended(taskId);

    const response = await request(api.app).get(`/api/v1/runs/${runId}/metrics`);
    assert.equal(response.status, 200, JSON.stringify(response.body));
    const body = runMetricsSchema.parse(response.body);
    assert.equal(body.run_id, runId);
    assert.equal(body.task_id, taskId);
    assert.equal(body.points, undefined);
    const values = Array.from({ length: 30 }, (_, i) => i + 1);
    assert.deepEqual(body.groups.peers?.latency, {
      type: 'histogram',
      unit: 'ms',
      count: 30,
      min: 1,
      p50: nearestRank(values, 50),
      p90: 27,
      p99: 30,
      max: 30,
      mean: 15.5,
    });
    // A counter by each instance's final total: 5, 10, 15.
    assert.deepEqual(body.groups.peers?.sent, {
      type: 'counter',
      count: 3,
      min: 5,
      p50: 10,
      p90: 15,
      p99: 15,
      max: 15,
      mean: 10,
    });
    assert.equal(body.groups.seeds?.rtt?.unit, 's');
    assert.deepEqual(task.runs[0]?.result?.metrics, body.groups, 'the summary is on the run result');

    const raw = await request(api.app).get(`/api/v1/runs/${runId}/metrics?raw=true`);
    assert.equal(raw.status, 200);
    const points = (raw.body as RunMetrics).points ?? [];
    assert.equal(points.length, 30 + (1 + 2 + 3) + 1);
    assert.deepEqual(points.at(-1), {
      group: 'seeds',
      instance: 0,
      name: 'rtt',
      type: 'point',
      value: 0.5,
      unit: 's',
      ts: points.at(-1)?.ts,
    });
    assert.ok(!Number.isNaN(Date.parse(points[0]?.ts ?? '')));
  });

  it('answers empty groups for a run that recorded nothing, 404 for an unknown run, 405 for POST, 400 for a bad raw', async () => {
    const { task_id: taskId, run_id: runId } = await submit();
    await ended(taskId);
    const empty = await request(api.app).get(`/api/v1/runs/${runId}/metrics?raw=1`);
    assert.equal(empty.status, 200);
    assert.deepEqual(empty.body, { run_id: runId, task_id: taskId, groups: {}, points: [] });
    const unknown = await request(api.app).get('/api/v1/runs/zzzzzz/metrics');
    assert.equal(unknown.status, 404);
    assert.equal((await request(api.app).post(`/api/v1/runs/${runId}/metrics`)).status, 405);
    const bad = await request(api.app).get(`/api/v1/runs/${runId}/metrics?raw=maybe`);
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(bad.body), /raw/);
  });
});

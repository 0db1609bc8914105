import assert from 'node:assert/strict';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { readTgz } from '../helpers/archive.ts';
import { packPlacebo, placeboComposition, startTestApp, type TestApp } from '../helpers/app.ts';
import { Gate } from '../helpers/fake-components.ts';
import { waitFor } from '../helpers/processes.ts';

const readBuffer = (response: unknown, done: (error: Error | null, body: unknown) => void): void => {
  const chunks: Buffer[] = [];
  (response as IncomingMessage).on('data', (chunk: Buffer) => chunks.push(chunk));
  (response as IncomingMessage).on('end', () => done(null, Buffer.concat(chunks)));
};

describe('GET /runs/:id/outputs', () => {
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
      .field('composition', placeboComposition({}, [{ id: 'single', instances: { count: 2 } }]))
      .attach('plan', placebo, 'plan.tar.gz');
    assert.equal(response.status, 202, JSON.stringify(response.body));
    return response.body as { task_id: string; run_id: string };
  };
  const ended = (id: string) =>
    waitFor(`task ${id} to end`, async () => {
      const task = (await request(api.app).get(`/api/v1/tasks/${id}`)).body as { state: string };
      return task.state === 'complete' || task.state === 'canceled' ? task : undefined;
    });
  const outputsOf = (runId: string) =>
    request(api.app).get(`/api/v1/runs/${runId}/outputs`).buffer(true).parse(readBuffer);

  it('streams what the instances wrote as <run>/<group>/<instance>/<file>; 409 while the run goes on', async () => {
    const gate = new Gate();
    api.runner.gate = gate;
    const started = api.runner.nextRun();
    const { task_id: taskId, run_id: runId } = await submit();
    const input = await started;
    for (const instance of [0, 1]) {
      const dir = path.join(input.outputsDir, 'single', String(instance));
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, 'run.out'), `instance ${instance}\n`);
    }
    const early = await request(api.app).get(`/api/v1/runs/${runId}/outputs`);
    assert.equal(early.status, 409);
    assert.match((early.body as { error: { message: string } }).error.message, /still running/);
    gate.open();
    api.runner.gate = undefined;
    await ended(taskId);

    const response = await outputsOf(runId);
    assert.equal(response.status, 200);
    assert.equal(response.type, 'application/gzip');
    assert.match(String(response.headers['content-disposition']), new RegExp(`${runId}\\.tgz`));
    const file = path.join(api.dirs.temp, `${runId}.tgz`);
    await writeFile(file, response.body as Buffer);
    const entries = await readTgz(file);
    assert.deepEqual([...entries.keys()].sort(), [`${runId}/single/0/run.out`, `${runId}/single/1/run.out`]);
    assert.equal(entries.get(`${runId}/single/1/run.out`), 'instance 1\n');
  });

  it('answers 404 naming the run when its outputs directory is gone, not an empty archive', async () => {
    const { task_id: taskId, run_id: runId } = await submit();
    await ended(taskId);
    const task = await api.store.get(taskId);
    assert.ok(task);
    await rm(task.outputsDir, { recursive: true, force: true });
    const response = await request(api.app).get(`/api/v1/runs/${runId}/outputs`);
    assert.equal(response.status, 404);
    const error = (response.body as { error: { code: string; message: string } }).error;
    assert.equal(error.code, 'not_found');
    assert.match(error.message, new RegExp(`run ${runId} has no outputs directory`));
    assert.doesNotMatch(error.message, new RegExp(api.dirs.home), 'the daemon keeps its paths to itself');
  });

  it('answers 404 when the run ended before any instance started', async () => {
    api.builder.failure = new Error('the fake build broke');
    try {
      const { task_id: taskId, run_id: runId } = await submit();
      await ended(taskId);
      const response = await request(api.app).get(`/api/v1/runs/${runId}/outputs`);
      assert.equal(response.status, 404);
      assert.match(
        (response.body as { error: { message: string } }).error.message,
        /before any instance started.*the fake build broke/,
      );
    } finally {
      api.builder.failure = undefined;
    }
  });
});

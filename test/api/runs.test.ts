/**
 * Tasks of several runs, build tasks and prebuilt artifacts through the HTTP API, in-process. The
 * composition side (several [[runs]], `run.artifact`, warnings) is stood in by `resolveWithRuns` around
 * the real parser and resolver.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { submittedSchema, taskViewSchema, type Submitted, type TaskView } from '../../api/schemas.ts';
import type { ProblemDetail } from '../../core/errors.ts';
import { RunnerError } from '../../core/errors.ts';
import { readTgz } from '../helpers/archive.ts';
import {
  packPlacebo,
  placeboComposition,
  resolveWithRuns,
  startTestApp,
  type RunStub,
  type TestApp,
} from '../helpers/app.ts';
import { Gate } from '../helpers/fake-components.ts';
import { waitFor } from '../helpers/processes.ts';

const readBuffer = (response: unknown, done: (error: Error | null, body: unknown) => void): void => {
  const chunks: Buffer[] = [];
  (response as IncomingMessage).on('data', (chunk: Buffer) => chunks.push(chunk));
  (response as IncomingMessage).on('end', () => done(null, Buffer.concat(chunks)));
};

const threeRuns: RunStub[] = [
  { id: 'small', instances: 2, testParams: { size: '1' } },
  { id: 'medium', instances: 3, testParams: { size: '2' } },
  { id: 'large', instances: 4, testParams: { size: '3' } },
];

describe('tasks of several runs, builds and artifacts through the API', () => {
  let api: TestApp;
  let placebo: Buffer;
  // What the stand-in resolver hands over for the next submission.
  let stubs: RunStub[] = [{ id: 'default' }];
  let warnings: ProblemDetail[] = [];
  before(async () => {
    api = await startTestApp({
      resolve: (composition, manifest, known) =>
        resolveWithRuns(stubs, warnings)(composition, manifest, known),
    });
    api.runner.writesOutputs = true;
    placebo = await packPlacebo();
  });
  after(async () => {
    await api?.close();
  });

  const post = async (route: '/runs' | '/builds', fields: Record<string, string> = {}) => {
    let pending = request(api.app)
      .post(`/api/v1${route}`)
      .field('composition', placeboComposition())
      .attach('plan', placebo, 'plan.tar.gz');
    for (const [name, value] of Object.entries(fields)) pending = pending.field(name, value);
    return pending;
  };
  const submit = async (
    route: '/runs' | '/builds',
    fields: Record<string, string> = {},
  ): Promise<Submitted> => {
    const response = await post(route, fields);
    assert.equal(response.status, 202, JSON.stringify(response.body));
    return submittedSchema.parse(response.body);
  };
  const taskOf = async (id: string): Promise<TaskView> =>
    taskViewSchema.parse((await request(api.app).get(`/api/v1/tasks/${id}`)).body);
  const ended = (id: string): Promise<TaskView> =>
    waitFor(`task ${id} to end`, async () => {
      const task = await taskOf(id);
      return task.state === 'complete' || task.state === 'canceled' ? task : undefined;
    });
  const outputsOf = (id: string) =>
    request(api.app).get(`/api/v1/runs/${id}/outputs`).buffer(true).parse(readBuffer);
  const archiveEntries = async (id: string, response: request.Response): Promise<Map<string, string>> => {
    assert.equal(response.status, 200, String(response.body));
    const file = path.join(api.dirs.temp, `${id}-${Date.now()}.tgz`);
    await writeFile(file, response.body as Buffer);
    return readTgz(file);
  };
  const refusal = (response: request.Response) =>
    (response.body as { error: { code: string; message: string; details: ProblemDetail[] } }).error;

  it('runs three runs from one build; each has its view, outcome and outputs; the task has the worst', async () => {
    stubs = threeRuns;
    const buildsBefore = api.builder.builds.length;
    api.runner.outcomes.set('medium/single/1', 'failure');
    try {
      const submitted = await submit('/runs');
      const taskId = submitted.task_id;
      assert.deepEqual(submitted.runs, [
        { id: `${taskId}-small`, name: 'small' },
        { id: `${taskId}-medium`, name: 'medium' },
        { id: `${taskId}-large`, name: 'large' },
      ]);
      assert.equal(submitted.run_id, `${taskId}-small`);
      assert.equal(submitted.type, 'run');
      assert.equal(submitted.links.outputs, `/api/v1/runs/${taskId}/outputs`);

      const task = await ended(taskId);
      assert.equal(api.builder.builds.length, buildsBefore + 1, 'one build for the three runs');
      assert.equal(task.state, 'complete');
      assert.equal(task.outcome, 'failure');
      assert.equal(task.error, 'run medium: 1 of 3 instances did not succeed (1 failure)');
      assert.equal(task.instances, 9);
      assert.deepEqual(
        task.runs.map((run) => [run.name, run.instances, run.state, run.outcome, run.result?.groups.single]),
        [
          ['small', 2, 'complete', 'success', { total: 2, ok: 2, outcomes: { success: 2 } }],
          ['medium', 3, 'complete', 'failure', { total: 3, ok: 2, outcomes: { success: 2, failure: 1 } }],
          ['large', 4, 'complete', 'success', { total: 4, ok: 4, outcomes: { success: 4 } }],
        ],
      );
      assert.deepEqual(task.result, task.runs[0]!.result, "the task's result is its first run's");
      assert.equal(task.artifacts.length, 1);
      assert.match(task.artifacts[0]!.artifact, /^bundle:[0-9a-f]{32}$/);

      const medium = await outputsOf(`${taskId}-medium`);
      assert.match(String(medium.headers['content-disposition']), new RegExp(`${taskId}-medium\\.tgz`));
      const mediumEntries = await archiveEntries(`${taskId}-medium`, medium);
      assert.deepEqual(
        [...mediumEntries.keys()].sort(),
        [0, 1, 2].map((index) => `${taskId}-medium/single/${index}/run.out`),
      );
      assert.equal(mediumEntries.get(`${taskId}-medium/single/2/run.out`), `${taskId}-medium single 2\n`);

      const all = await outputsOf(taskId);
      assert.match(String(all.headers['content-disposition']), new RegExp(`filename="?${taskId}\\.tgz`));
      const allEntries = await archiveEntries(taskId, all);
      assert.deepEqual(
        [...allEntries.keys()].sort(),
        [
          ...[0, 1, 2, 3].map((index) => `${taskId}-large/single/${index}/run.out`),
          ...[0, 1, 2].map((index) => `${taskId}-medium/single/${index}/run.out`),
          ...[0, 1].map((index) => `${taskId}-small/single/${index}/run.out`),
        ],
        'every run under its run id',
      );

      const unknown = await request(api.app).get(`/api/v1/runs/${taskId}-huge/outputs`);
      assert.equal(unknown.status, 404);
      assert.equal(
        refusal(unknown).message,
        `task ${taskId} has no run ${taskId}-huge; its runs: ${submitted.runs.map((run) => run.id).join(', ')}`,
      );
    } finally {
      api.runner.outcomes.clear();
    }
  });

  it("serves a run's outputs once it ended, while the task goes on; the task's only once it ended", async () => {
    stubs = threeRuns;
    const first = new Gate();
    api.runner.gate = first;
    const firstStarted = api.runner.nextRun();
    const { task_id: taskId } = await submit('/runs');
    await firstStarted;
    api.runner.gate = new Gate();
    const secondStarted = api.runner.nextRun();
    first.open();
    await secondStarted;
    try {
      const small = await archiveEntries(`${taskId}-small`, await outputsOf(`${taskId}-small`));
      assert.equal(small.size, 2);
      for (const id of [taskId, `${taskId}-medium`, `${taskId}-large`]) {
        const early = await request(api.app).get(`/api/v1/runs/${id}/outputs`);
        assert.equal(early.status, 409, id);
      }
      assert.equal(
        refusal(await request(api.app).get(`/api/v1/runs/${taskId}-large/outputs`)).message,
        `run ${taskId}-large is still pending; collect its outputs after it ends`,
      );
      const running = await taskOf(taskId);
      assert.deepEqual(
        running.runs.map((run) => run.state),
        ['complete', 'running', 'pending'],
      );
      assert.equal((await request(api.app).post(`/api/v1/tasks/${taskId}/cancel`)).status, 200);
    } finally {
      api.runner.gate = undefined;
    }
    const task = await ended(taskId);
    assert.equal(task.state, 'canceled');
    assert.deepEqual(
      task.runs.map((run) => [run.name, run.outcome, run.error]),
      [
        ['small', 'success', null],
        ['medium', 'canceled', 'canceled on request'],
        ['large', 'canceled', 'canceled on request'],
      ],
    );
    const never = await request(api.app).get(`/api/v1/runs/${taskId}-large/outputs`);
    assert.equal(never.status, 404);
    assert.match(refusal(never).message, /before any instance started: canceled on request$/);
    const all = await archiveEntries(taskId, await outputsOf(taskId));
    assert.deepEqual(
      [...new Set([...all.keys()].map((name) => name.split('/')[0]))].sort(),
      [`${taskId}-medium`, `${taskId}-small`],
      'the runs that started',
    );
  });

  it('an error in a run cancels the rest with the reason', async () => {
    stubs = threeRuns;
    api.runner.failures.set('small', new RunnerError('no free subnet in 10.192.0.0/12'));
    try {
      const { task_id: taskId } = await submit('/runs');
      const task = await ended(taskId);
      assert.equal(task.outcome, 'error');
      assert.deepEqual(
        task.runs.map((run) => [run.name, run.state, run.outcome, run.error]),
        [
          ['small', 'complete', 'error', 'no free subnet in 10.192.0.0/12'],
          [
            'medium',
            'canceled',
            'canceled',
            'not run: run small ended in error (no free subnet in 10.192.0.0/12)',
          ],
          [
            'large',
            'canceled',
            'canceled',
            'not run: run small ended in error (no free subnet in 10.192.0.0/12)',
          ],
        ],
      );
    } finally {
      api.runner.failures.clear();
    }
  });

  it('picks and orders runs by run_ids; an unknown one is a 400 listing the known ones', async () => {
    stubs = threeRuns;
    const picked = await submit('/runs', { run_ids: 'large,small' });
    assert.deepEqual(
      picked.runs.map((run) => run.name),
      ['large', 'small'],
    );
    const task = await ended(picked.task_id);
    assert.equal(task.outcome, 'success');
    const refused = await post('/runs', { run_ids: 'small,tiny' });
    assert.equal(refused.status, 400);
    assert.deepEqual(refusal(refused).details, [
      {
        path: 'run_ids',
        message: '"tiny" is not a run of this composition; its runs are: small, medium, large',
      },
    ]);
    const malformed = await post('/runs', { run_ids: 'small,,large' });
    assert.equal(malformed.status, 400);
    assert.equal(refusal(malformed).details[0]?.path, 'run_ids');
  });

  it('answers the submission with its warnings, and logs each once, as a warn line', async () => {
    stubs = [{ id: 'default' }];
    warnings = [{ path: 'global.concurrent_builds', message: 'ignored: this daemon builds one at a time' }];
    try {
      const submitted = await submit('/runs');
      assert.deepEqual(submitted.warnings, warnings);
      await ended(submitted.task_id);
      const log = (await request(api.app).get(`/api/v1/tasks/${submitted.task_id}/logs`)).text
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { kind: string; level?: string; msg?: string });
      const warned = log.filter((line) => line.kind === 'log' && line.level === 'warn');
      assert.deepEqual(
        warned.map((line) => line.msg),
        ['global.concurrent_builds: ignored: this daemon builds one at a time'],
      );
      const firstBuildLine = log.findIndex((line) => line.msg?.startsWith('building group'));
      assert.ok(log.indexOf(warned[0]!) < firstBuildLine, 'before the build');
      assert.deepEqual((await taskOf(submitted.task_id)).warnings, warnings);
    } finally {
      warnings = [];
    }
  });

  it('a build task lists its artifacts; a run naming them builds nothing; unknown, wrong or gone ones are refused', async () => {
    stubs = [{ id: 'default' }];
    const submitted = await submit('/builds');
    assert.equal(submitted.type, 'build');
    assert.deepEqual(submitted.runs, []);
    assert.equal(submitted.links.outputs, undefined);
    const build = await ended(submitted.task_id);
    assert.equal(build.type, 'build');
    assert.equal(build.outcome, 'success');
    assert.deepEqual(
      build.states.map((entry) => entry.state),
      ['queued', 'building', 'complete'],
    );
    assert.equal(build.artifacts.length, 1);
    const [built] = build.artifacts;
    assert.equal(built?.group, 'single');
    assert.equal(built?.builder, 'exec:node');
    assert.match(built!.artifact, /^bundle:[0-9a-f]{32}$/);
    const buildOutputs = await request(api.app).get(`/api/v1/runs/${build.id}/outputs`);
    assert.equal(buildOutputs.status, 404);
    assert.match(refusal(buildOutputs).message, /is a build: it has no outputs/);

    const buildsBefore = api.builder.builds.length;
    stubs = [{ id: 'default', artifact: built!.artifact }];
    const run = await ended((await submit('/runs')).task_id);
    assert.equal(run.outcome, 'success');
    assert.equal(api.builder.builds.length, buildsBefore, 'the run built nothing');
    const record = await api.artifacts.get(built!.artifact);
    assert.deepEqual(api.runner.runs.at(-1)?.artifacts.get('single'), {
      kind: 'bundle',
      path: record?.path,
      cached: true,
    });
    const runLog = (await request(api.app).get(`/api/v1/tasks/${run.id}/logs`)).text;
    assert.doesNotMatch(runLog, /building group|fake build/, 'the run log shows no build');

    stubs = [{ id: 'default', artifact: 'bundle:00000000000000000000000000000000' }];
    const unknown = await post('/runs');
    assert.equal(unknown.status, 400);
    assert.equal(refusal(unknown).details[0]?.path, 'groups[0].run.artifact');
    assert.match(
      refusal(unknown).message,
      /artifact "bundle:0{32}" \(run\.artifact, or --use-build\) is not known/,
    );

    const imageId = `sha256:${'cd'.repeat(32)}`;
    await api.artifacts.record(
      { kind: 'image', imageId, cached: false },
      { builder: 'docker:node', plan: 'placebo', task: 'elsewhere' },
    );
    stubs = [{ id: 'default', artifact: imageId }];
    const wrongKind = await post('/runs');
    assert.equal(wrongKind.status, 400);
    assert.deepEqual(refusal(wrongKind).details, [
      {
        path: 'groups[0].run.artifact',
        message: `artifact "${imageId}" is an image (built by docker:node), but runner "local:exec" starts bundles; use an artifact built by exec:node`,
      },
    ]);

    await rm(record!.path!);
    stubs = [{ id: 'default', artifact: built!.artifact }];
    const gone = await ended((await submit('/runs')).task_id);
    assert.equal(gone.outcome, 'error');
    assert.match(gone.error ?? '', new RegExp(`artifact ${built!.artifact} no longer exists`));
  });
});

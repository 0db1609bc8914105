/**
 * Every answer the running app gives must be one the OpenAPI document declares: the status for that
 * path and method, the media type, and a body its schema accepts (no field it does not allow, none it
 * requires missing). The document is the one the app serves.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { pino } from 'pino';
import request from 'supertest';
import { createApp } from '../../api/app.ts';
import type { ApiDeps } from '../../api/deps.ts';
import { RedisUnavailableError } from '../../core/errors.ts';
import { Gate } from '../helpers/fake-components.ts';
import {
  buildTestApp,
  packPlacebo,
  placeboComposition,
  resolveWithRuns,
  startTestApp,
  type RunStub,
  type TestApp,
} from '../helpers/app.ts';
import { waitFor } from '../helpers/processes.ts';

const token = 'openapi-test-token';
const auth = { authorization: `Bearer ${token}` };

type Method = 'get' | 'post';
interface Operation {
  responses: Record<string, { content?: Record<string, { schema?: unknown }> }>;
}
interface Document {
  openapi: string;
  paths: Record<string, Partial<Record<Method, Operation>>>;
}

/** Checks answers against the document and remembers which operations were answered. */
class Contract {
  readonly document: Document;
  readonly answered = new Set<string>();
  private readonly ajv: Ajv2020;
  private readonly validators = new Map<string, ValidateFunction>();

  constructor(document: Document) {
    this.document = document;
    this.ajv = new Ajv2020({ strict: true, allErrors: true });
    addFormats.default(this.ajv);
    // OpenAPI's own top-level fields: annotations to a JSON Schema validator, so the document can be
    // added whole and its schemas reached by JSON pointer, $refs and all.
    this.ajv.addVocabulary(['openapi', 'info', 'servers', 'security', 'paths', 'components']);
    this.ajv.addSchema(document as object, 'openapi.json');
  }

  /** The validator of the body schema the document declares for this answer, or undefined for none. */
  schemaFor(
    method: Method,
    template: string,
    status: number,
    mediaType: string,
  ): ValidateFunction | undefined {
    const operation = this.document.paths[template]?.[method];
    assert.ok(operation, `the document declares ${method.toUpperCase()} ${template}`);
    const response = operation.responses[String(status)];
    assert.ok(
      response,
      `${method.toUpperCase()} ${template} answered ${status}, a status the document does not declare for it`,
    );
    const media = response.content?.[mediaType];
    assert.ok(
      media,
      `${method.toUpperCase()} ${template} ${status} answered ${mediaType}, not one of ${Object.keys(response.content ?? {}).join(', ')}`,
    );
    if (media.schema === undefined) return undefined;
    const pointer = ['paths', template, method, 'responses', String(status), 'content', mediaType, 'schema']
      .map((part) => part.replace(/~/g, '~0').replace(/\//g, '~1'))
      .join('/');
    let validate = this.validators.get(pointer);
    if (!validate) {
      validate = this.ajv.getSchema(`openapi.json#/${pointer}`);
      assert.ok(validate, `ajv compiled ${pointer}`);
      this.validators.set(pointer, validate);
    }
    return validate;
  }

  /** Asserts the answer conforms and returns its body (NDJSON: the parsed lines). */
  conforms<T = unknown>(method: Method, template: string, response: request.Response): T {
    const mediaType = response.type;
    const validate = this.schemaFor(method, template, response.status, mediaType);
    this.answered.add(`${method} ${template} ${response.status}`);
    const bodies: unknown[] =
      mediaType === 'application/x-ndjson'
        ? (response.body as string)
            .split('\n')
            .filter((line) => line !== '')
            .map((line) => JSON.parse(line) as unknown)
        : [response.body];
    if (validate) {
      for (const body of bodies) {
        assert.ok(
          validate(body),
          `${method.toUpperCase()} ${template} ${response.status}: ${JSON.stringify(body)}\ndoes not match the document: ${this.ajv.errorsText(validate.errors)}`,
        );
      }
    }
    return (mediaType === 'application/x-ndjson' ? bodies : response.body) as T;
  }
}

/** superagent buffers only text and JSON by itself; NDJSON and gzip bodies are read here. */
type BodyParser = (response: unknown, done: (error: Error | null, body: unknown) => void) => void;
const readBody =
  (decode: (data: Buffer) => unknown): BodyParser =>
  (response, done) => {
    const stream = response as IncomingMessage;
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('error', (error) => done(error, undefined));
    stream.on('end', () => done(null, decode(Buffer.concat(chunks))));
  };
const asText = readBody((data) => data.toString('utf8'));
const asBuffer = readBody((data) => data);

interface TaskBody {
  id: string;
  state: string;
  outcome: string | null;
  run_id: string;
}

describe('the running app answers as its OpenAPI document says', () => {
  let api: TestApp;
  let contract: Contract;
  let placebo: Buffer;
  // What the stand-in for the composition side hands over: one `default` run unless a test says otherwise.
  let stubs: RunStub[] = [{ id: 'default' }];
  before(async () => {
    api = await startTestApp({
      token,
      maxUploadBytes: 256 * 1024,
      resolve: (composition, manifest, known) => resolveWithRuns(stubs, [])(composition, manifest, known),
      retention: { policy: { outputs: {}, snapshots: {}, cache: {}, images: {} } },
    });
    placebo = await packPlacebo();
    const served = await request(api.app).get('/api/v1/openapi.json');
    assert.equal(served.status, 200);
    contract = new Contract(served.body as Document);
    contract.conforms('get', '/openapi.json', served);
  });
  after(async () => {
    await api?.close();
  });

  const submit = (composition: string, plan: Buffer = placebo) =>
    request(api.app)
      .post('/api/v1/runs')
      .set(auth)
      .field('composition', composition)
      .attach('plan', plan, 'plan.tar.gz');
  const getTask = async (id: string): Promise<TaskBody> =>
    contract.conforms<TaskBody>(
      'get',
      '/tasks/{id}',
      await request(api.app).get(`/api/v1/tasks/${id}`).set(auth),
    );
  const untilState = (id: string, states: string[]): Promise<TaskBody> =>
    waitFor(`task ${id} to be ${states.join(' or ')}`, async () => {
      const task = await getTask(id);
      return states.includes(task.state) ? task : undefined;
    });

  it('the validator has teeth: an extra field or a missing required one fails', () => {
    const validate = contract.schemaFor('get', '/tasks/{id}', 200, 'application/json');
    assert.ok(validate);
    const task = {
      id: 'abc',
      run_id: 'abc',
      type: 'run',
      plan: 'placebo',
      case: 'ok',
      builder: 'exec:node',
      runner: 'local:exec',
      instances: 1,
      created_by: 'anonymous',
      created_at: '2024-05-01T10:00:00.000Z',
      state: 'queued',
      states: [{ state: 'queued', at: '2024-05-01T10:00:00.000Z' }],
      outcome: null,
      error: null,
      result: null,
      runs: [
        {
          id: 'abc',
          name: 'default',
          instances: 1,
          state: 'pending',
          outcome: null,
          error: null,
          result: null,
          started_at: null,
          ended_at: null,
        },
      ],
      artifacts: [],
      warnings: [],
      cancel_requested: false,
      metadata: {},
      supersedes: [],
      composition: {},
      progress: [],
    };
    assert.equal(validate(task), true, JSON.stringify(validate.errors));
    assert.equal(validate({ ...task, planDir: '/secret/path' }), false, 'an undeclared field is refused');
    const { run_id: _dropped, ...missing } = task;
    assert.equal(validate(missing), false, 'a missing required field is refused');
    assert.equal(validate({ ...task, state: 'sleeping' }), false, 'a value outside the enum is refused');
    assert.equal(
      validate({ ...task, runs: [{ ...task.runs[0], outputsDir: '/secret' }] }),
      false,
      'an undeclared field of a run is refused',
    );
  });

  it('health, submit, task, list, logs and outputs of a run', async () => {
    contract.conforms('get', '/health', await request(api.app).get('/api/v1/health'));

    const gate = new Gate();
    api.runner.gate = gate;
    const started = api.runner.nextRun();
    const submitted = contract.conforms<{ task_id: string; run_id: string }>(
      'post',
      '/runs',
      await submit(placeboComposition()),
    );
    const input = await started;
    // Lines of every kind: the fake builder logged, the state changed; an instance writes a line now.
    input.log.output('single', 0, 'stdout', 'hello from the instance');
    gate.open();
    api.runner.gate = undefined;

    const lines = contract.conforms<{ kind: string }[]>(
      'get',
      '/tasks/{id}/logs',
      await request(api.app)
        .get(`/api/v1/tasks/${submitted.task_id}/logs?follow=true`)
        .set(auth)
        .buffer(true)
        .parse(asText),
    );
    assert.deepEqual(
      [...new Set(lines.map((line) => line.kind))].sort(),
      ['end', 'instance_end', 'log', 'output', 'progress', 'state'],
      'the log had a line of every kind',
    );
    const task = await untilState(submitted.task_id, ['complete']);
    assert.equal(task.outcome, 'success');

    const listed = contract.conforms<{ tasks: TaskBody[] }>(
      'get',
      '/tasks',
      await request(api.app).get('/api/v1/tasks?state=complete&limit=5').set(auth),
    );
    assert.ok(listed.tasks.some((item) => item.id === task.id));
    contract.conforms(
      'get',
      '/tasks/{id}/logs',
      await request(api.app).get(`/api/v1/tasks/${task.id}/logs`).set(auth).buffer(true).parse(asText),
    );
    const outputs = await request(api.app)
      .get(`/api/v1/runs/${task.run_id}/outputs`)
      .set(auth)
      .buffer(true)
      .parse(asBuffer);
    contract.conforms('get', '/runs/{id}/outputs', outputs);
    assert.equal(outputs.status, 200);
    const metrics = await request(api.app).get(`/api/v1/runs/${task.run_id}/metrics?raw=true`).set(auth);
    contract.conforms('get', '/runs/{id}/metrics', metrics);
    assert.equal(metrics.status, 200);

    await rm(api.dirs.outputs, { recursive: true, force: true });
    contract.conforms(
      'get',
      '/runs/{id}/metrics',
      await request(api.app).get(`/api/v1/runs/${task.run_id}/metrics?raw=true`).set(auth),
    );
    contract.conforms(
      'get',
      '/runs/{id}/outputs',
      await request(api.app).get(`/api/v1/runs/${task.run_id}/outputs`).set(auth),
    );
  });

  it('a task of several runs, the outputs of one run, and a build', async () => {
    stubs = [
      { id: 'small', instances: 1 },
      { id: 'large', instances: 2, testParams: { size: 'large' } },
    ];
    try {
      const submitted = contract.conforms<{ task_id: string; runs: { id: string }[] }>(
        'post',
        '/runs',
        await submit(placeboComposition()),
      );
      assert.equal(submitted.runs.length, 2);
      const task = await untilState(submitted.task_id, ['complete']);
      assert.equal(task.outcome, 'success');
      const [, large] = submitted.runs;
      const outputs = await request(api.app)
        .get(`/api/v1/runs/${large!.id}/outputs`)
        .set(auth)
        .buffer(true)
        .parse(asBuffer);
      assert.equal(outputs.status, 200, 'the outputs of one run, by its run id');
      contract.conforms('get', '/runs/{id}/outputs', outputs);

      const report = contract.conforms<{ runs: { name: string; outcome: string }[] }>(
        'get',
        '/tasks/{id}/report',
        await request(api.app).get(`/api/v1/tasks/${task.id}/report`).set(auth),
      );
      assert.deepEqual(
        report.runs.map((run) => [run.name, run.outcome]),
        [
          ['small', 'success'],
          ['large', 'success'],
        ],
      );
      for (const format of ['junit', 'csv', 'markdown']) {
        const answer = await request(api.app)
          .get(`/api/v1/tasks/${task.id}/report?format=${format}`)
          .set(auth)
          .buffer(true)
          .parse(asText);
        assert.equal(answer.status, 200, String(answer.body));
        contract.conforms('get', '/tasks/{id}/report', answer);
      }
    } finally {
      stubs = [{ id: 'default' }];
    }

    const build = contract.conforms<{ task_id: string; type: string }>(
      'post',
      '/builds',
      await request(api.app)
        .post('/api/v1/builds')
        .set(auth)
        .field('composition', placeboComposition())
        .attach('plan', placebo, 'plan.tar.gz'),
    );
    assert.equal(build.type, 'build');
    const built = await untilState(build.task_id, ['complete']);
    assert.equal(built.outcome, 'success');
    const refused = await request(api.app)
      .post('/api/v1/builds')
      .set(auth)
      .field('composition', placeboComposition({ case: 'nope' }))
      .attach('plan', placebo, 'plan.tar.gz');
    assert.equal(refused.status, 400);
    contract.conforms('post', '/builds', refused);
  });

  it('cancel, and cancel again', async () => {
    const gate = new Gate();
    api.runner.gate = gate;
    const submitted = (await submit(placeboComposition())).body as { task_id: string };
    await untilState(submitted.task_id, ['running']);
    const canceled = contract.conforms<TaskBody>(
      'post',
      '/tasks/{id}/cancel',
      await request(api.app).post(`/api/v1/tasks/${submitted.task_id}/cancel`).set(auth),
    );
    assert.equal(canceled.id, submitted.task_id);
    await untilState(submitted.task_id, ['canceled']);
    api.runner.gate = undefined;
    const again = await request(api.app).post(`/api/v1/tasks/${submitted.task_id}/cancel`).set(auth);
    assert.equal(again.status, 409);
    contract.conforms('post', '/tasks/{id}/cancel', again);
  });

  it('runner healthcheck and terminate', async () => {
    contract.conforms(
      'post',
      '/runners/{id}/healthcheck',
      await request(api.app).post('/api/v1/runners/local%3Aexec/healthcheck?fix=false').set(auth),
    );
    contract.conforms(
      'post',
      '/runners/{id}/terminate',
      await request(api.app).post('/api/v1/runners/local%3Aexec/terminate').set(auth),
    );
    const unknown = await request(api.app).post('/api/v1/runners/cluster%3Ak9s/healthcheck').set(auth);
    assert.equal(unknown.status, 404);
    contract.conforms('post', '/runners/{id}/healthcheck', unknown);
    const badFlag = await request(api.app)
      .post('/api/v1/runners/local%3Aexec/healthcheck?fix=maybe')
      .set(auth);
    assert.equal(badFlag.status, 400);
    contract.conforms('post', '/runners/{id}/healthcheck', badFlag);
  });

  it('refusals: 400, 401, 404, 409, 413', async () => {
    const expect = (response: request.Response, status: number): request.Response => {
      assert.equal(response.status, status, JSON.stringify(response.body));
      return response;
    };
    contract.conforms(
      'get',
      '/tasks',
      expect(await request(api.app).get('/api/v1/tasks?limit=0').set(auth), 400),
    );
    contract.conforms('get', '/tasks', expect(await request(api.app).get('/api/v1/tasks'), 401));
    contract.conforms(
      'get',
      '/tasks/{id}',
      expect(await request(api.app).get('/api/v1/tasks/zzzzzzzzzzzz').set(auth), 404),
    );
    contract.conforms(
      'get',
      '/tasks/{id}/logs',
      expect(await request(api.app).get('/api/v1/tasks/zzzzzzzzzzzz/logs').set(auth), 404),
    );
    contract.conforms(
      'get',
      '/tasks/{id}/logs',
      expect(await request(api.app).get('/api/v1/tasks/abc/logs?offset=yesterday').set(auth), 400),
    );
    contract.conforms('post', '/runs', expect(await submit('{"global": '), 400));
    contract.conforms(
      'post',
      '/runs',
      expect(await submit(placeboComposition(), Buffer.alloc(512 * 1024, 7)), 413),
    );

    const gate = new Gate();
    api.runner.gate = gate;
    const submitted = (await submit(placeboComposition())).body as { task_id: string; run_id: string };
    await untilState(submitted.task_id, ['running']);
    contract.conforms(
      'get',
      '/runs/{id}/outputs',
      expect(await request(api.app).get(`/api/v1/runs/${submitted.run_id}/outputs`).set(auth), 409),
    );
    gate.open();
    api.runner.gate = undefined;
    await untilState(submitted.task_id, ['complete']);
  });

  it('gc, a dry run and a collection; build purge; a queue limit is a 429', async (t) => {
    for (const query of ['?dry_run=true', '']) {
      const response = await request(api.app).post(`/api/v1/gc${query}`).set(auth);
      assert.equal(response.status, 200, JSON.stringify(response.body));
      contract.conforms('post', '/gc', response);
    }
    const purged = await request(api.app).post('/api/v1/builders/exec%3Anode/purge?plan=placebo').set(auth);
    assert.equal(purged.status, 200, JSON.stringify(purged.body));
    contract.conforms('post', '/builders/{id}/purge', purged);
    const unknown = await request(api.app).post('/api/v1/builders/exec%3Ago/purge?plan=placebo').set(auth);
    assert.equal(unknown.status, 400, JSON.stringify(unknown.body));
    contract.conforms('post', '/builders/{id}/purge', unknown);
    const limited = await buildTestApp(t, {
      admission: { maxActivePerUser: 0, maxActive: 1, uploadQuotaWindowMs: 60_000 },
    });
    limited.runner.gate = new Gate();
    const submitTo = () =>
      request(limited.app)
        .post('/api/v1/runs')
        .field('composition', placeboComposition())
        .attach('plan', placebo, 'plan.tar.gz');
    assert.equal((await submitTo()).status, 202);
    const refused = await submitTo();
    assert.equal(refused.status, 429, JSON.stringify(refused.body));
    contract.conforms('post', '/runs', refused);
    limited.runner.gate.open();
  });

  it('a failing dependency and an internal error, through stand-in ports', async () => {
    const logger = pino({ level: 'silent' });
    const broken = (): never => {
      throw new Error('ECONNRESET at /var/lib/secret');
    };
    const deps: ApiDeps = {
      tasks: { submitRun: broken, submitBuild: broken, get: broken, cancel: broken },
      reports: { render: broken },
      taskList: { summaries: broken },
      logs: { history: broken, follow: broken },
      outputs: { archive: broken, metricPoints: broken },
      maintenance: { healthcheck: broken, terminate: broken },
      health: async () => ({
        ok: false,
        checks: { redis: { ok: false, message: 'no answer within 1000 ms' } },
        version: '1',
      }),
      uploadDir: api.dirs.uploads,
      maxUploadBytes: 1024,
      logger,
    };
    const app = createApp(deps);
    const health = await request(app).get('/api/v1/health');
    assert.equal(health.status, 503);
    contract.conforms('get', '/health', health);
    const internal = await request(app).get('/api/v1/tasks/abc');
    assert.equal(internal.status, 500);
    contract.conforms('get', '/tasks/{id}', internal);
    const redisAway = createApp({
      ...deps,
      redis: {
        assertAvailable: () => {
          throw new RedisUnavailableError('Redis is unavailable (connection reconnecting)');
        },
        explain: () => undefined,
      },
    });
    const unavailable = await request(redisAway).get('/api/v1/tasks');
    assert.equal(unavailable.status, 503);
    assert.equal((unavailable.body as { error: { code: string } }).error.code, 'redis_unavailable');
    contract.conforms('get', '/tasks', unavailable);
  });

  it('every operation of the document was answered with a success by some test above', () => {
    const successes = new Set(
      [...contract.answered].filter((key) => / 2\d\d$/.test(key)).map((key) => key.replace(/ \d+$/, '')),
    );
    const declared = Object.entries(contract.document.paths).flatMap(([template, operations]) =>
      Object.keys(operations).map((method) => `${method} ${template}`),
    );
    assert.deepEqual(
      declared.filter((operation) => !successes.has(operation)),
      [],
    );
  });
});

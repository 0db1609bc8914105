import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { pack as tarPack, type Header } from 'tar-stream';
import { packPlanDirectory } from '../../cli/pack-plan.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { repoRoot, waitFor } from '../helpers/processes.ts';

const token = 'test-token-1234';

/** A .tar.gz made entry by entry, so tests can write what no honest packer would. */
async function craftedArchive(
  entries: (Partial<Header> & { name: string; body?: string })[],
): Promise<Buffer> {
  const packer = tarPack();
  const chunks: Buffer[] = [];
  packer.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
  const done = new Promise<void>((resolve) => packer.on('end', () => resolve()));
  for (const { body, ...header } of entries) packer.entry(header, body ?? '');
  packer.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

const manifest = `name = "placebo"\n[defaults]\nbuilder = "exec:node"\nrunner = "local:exec"\n[builders."exec:node"]\nenabled = true\n[runners."local:exec"]\nenabled = true\n[[testcases]]\nname = "ok"\ninstances = { min = 1, max = 5, default = 1 }\n`;

describe('bad input gets a 4xx naming the field, and the API keeps serving', () => {
  let api: TestApp;
  let placebo: Buffer;
  before(async () => {
    api = await startTestApp({ token, maxUploadBytes: 1024 * 1024 });
    placebo = await packPlanDirectory(path.join(repoRoot, 'plans/placebo'));
  });
  after(async () => {
    await api?.close();
  });

  const composition = (
    overrides: Record<string, unknown> = {},
    groups: unknown[] = [{ id: 'single', instances: { count: 1 } }],
  ): string =>
    JSON.stringify({
      global: { plan: 'placebo', case: 'ok', builder: 'exec:node', runner: 'local:exec', ...overrides },
      groups,
    });

  type Answer = {
    status: number;
    body: {
      error?: { code: string; message: string; details: { path: string; message: string }[] };
      task_id?: string;
    };
  };
  const auth = { authorization: `Bearer ${token}` };

  const submit = async (
    fields: { composition?: string; plan?: Buffer; run_ids?: string },
    headers: Record<string, string> = auth,
    route: '/runs' | '/builds' = '/runs',
  ): Promise<Answer> => {
    let pending = request(api.app).post(`/api/v1${route}`).set(headers);
    if (fields.composition !== undefined) pending = pending.field('composition', fields.composition);
    if (fields.run_ids !== undefined) pending = pending.field('run_ids', fields.run_ids);
    if (fields.plan) pending = pending.attach('plan', fields.plan, 'plan.tar.gz');
    const response = await pending;
    return { status: response.status, body: response.body as Answer['body'] };
  };
  const get = async (route: string, headers: Record<string, string> = auth): Promise<Answer> => {
    const response = await request(api.app).get(route).set(headers);
    return { status: response.status, body: response.body as Answer['body'] };
  };

  const expectRefused = (result: Answer, status: number, code: string, mentions: RegExp): void => {
    assert.equal(result.status, status, JSON.stringify(result.body));
    assert.equal(result.body.error?.code, code);
    const text = `${result.body.error?.message} ${JSON.stringify(result.body.error?.details)}`;
    assert.match(text, mentions);
  };

  it('rejects malformed compositions', async () => {
    expectRefused(
      await submit({ composition: '[global\nplan = ', plan: placebo }),
      400,
      'invalid_request',
      /TOML|line/i,
    );
    expectRefused(
      await submit({ composition: '{"global": ', plan: placebo }),
      400,
      'invalid_request',
      /JSON/i,
    );
    expectRefused(await submit({ plan: placebo }), 400, 'invalid_request', /composition/);
    expectRefused(await submit({ composition: composition() }), 400, 'invalid_request', /plan/);
    expectRefused(
      await submit({ composition: composition(), plan: placebo, run_ids: 'a, b' }),
      400,
      'invalid_request',
      /run_ids.*comma/,
    );
    expectRefused(
      await submit({ composition: composition(), plan: placebo, run_ids: 'other' }),
      400,
      'invalid_request',
      /"other" is not a run of this composition; its runs are: default/,
    );
    expectRefused(await submit({ plan: placebo }, auth, '/builds'), 400, 'invalid_request', /composition/);
    expectRefused(
      await submit({ composition: composition() }, auth, '/builds'),
      400,
      'invalid_request',
      /plan/,
    );
    expectRefused(
      await submit({ composition: composition({ case: 'nope' }), plan: placebo }, auth, '/builds'),
      400,
      'invalid_request',
      /global\.case/,
    );
  });

  // A global.plan naming another plan is only a warning (issue 7: the original took it as a path).
  it('rejects unknown test cases, builders and runners, listing the valid ones', async () => {
    expectRefused(
      await submit({ composition: composition({ case: 'nope' }), plan: placebo }),
      400,
      'invalid_request',
      /nope[\s\S]*stall/,
    );
    expectRefused(
      await submit({ composition: composition({ builder: 'docker:rust' }), plan: placebo }),
      400,
      'invalid_request',
      /docker:rust[\s\S]*exec:node/,
    );
    expectRefused(
      await submit({ composition: composition({ runner: 'cluster:k9s' }), plan: placebo }),
      400,
      'invalid_request',
      /cluster:k9s[\s\S]*local:exec/,
    );
  });

  it('rejects instance counts outside the manifest range', async () => {
    const result = await submit({
      composition: composition({}, [{ id: 'single', instances: { count: 5000 } }]),
      plan: placebo,
    });
    expectRefused(result, 400, 'invalid_request', /5000/);
  });

  it('rejects build_config and run_config typos at submit, naming the key and the accepted keys', async () => {
    const result = await submit({
      composition: composition({ build_config: { entyr: 'main.ts' }, run_config: { keep_container: true } }),
      plan: placebo,
    });
    assert.equal(result.status, 400, JSON.stringify(result.body));
    const details = new Map(result.body.error?.details.map((detail) => [detail.path, detail.message]));
    assert.match(
      details.get('global.build_config.entyr') ?? '',
      /unknown key "entyr"; accepted keys here: entry/,
    );
    assert.match(
      details.get('global.run_config.keep_container') ?? '',
      /unknown key "keep_container"; accepted keys here: timeout/,
    );
  });

  it('rejects archives that are not gzip or not tar', async () => {
    expectRefused(
      await submit({ composition: composition(), plan: Buffer.from('plain text, not an archive') }),
      400,
      'invalid_archive',
      /gzip/i,
    );
    expectRefused(
      await submit({ composition: composition(), plan: gzipSync(Buffer.from('x'.repeat(2000))) }),
      400,
      'invalid_archive',
      /tar/i,
    );
  });

  it('rejects archives whose entries escape the upload directory, writing nothing outside it', async () => {
    const escapes: { entries: (Partial<Header> & { name: string; body?: string })[]; mentions: RegExp }[] = [
      {
        entries: [
          { name: 'manifest.toml', body: manifest },
          { name: '../../escaped.txt', body: 'x' },
        ],
        mentions: /\.\.\/\.\.\/escaped\.txt/,
      },
      {
        entries: [
          { name: 'manifest.toml', body: manifest },
          { name: '/tmp/absolute-escape.txt', body: 'x' },
        ],
        mentions: /absolute-escape\.txt/,
      },
      {
        entries: [
          { name: 'manifest.toml', body: manifest },
          { name: 'link', type: 'symlink', linkname: '../../../..' },
          { name: 'link/escaped-through-link.txt', body: 'x' },
        ],
        mentions: /link/,
      },
      {
        entries: [
          { name: 'manifest.toml', body: manifest },
          { name: 'hard', type: 'link', linkname: '/etc/passwd' },
        ],
        mentions: /hard/,
      },
    ];
    for (const { entries, mentions } of escapes) {
      expectRefused(
        await submit({ composition: composition(), plan: await craftedArchive(entries) }),
        400,
        'invalid_archive',
        mentions,
      );
    }
    assert.equal(existsSync(path.join(api.dirs.home, 'escaped.txt')), false);
    assert.equal(existsSync(path.join(api.dirs.plans, 'escaped.txt')), false);
    assert.equal(existsSync('/tmp/absolute-escape.txt'), false);
    assert.equal(existsSync('/escaped-through-link.txt'), false);
  });

  it('answers 413 to an upload over the limit', async () => {
    const big = Buffer.alloc(2 * 1024 * 1024, 7);
    expectRefused(await submit({ composition: composition(), plan: big }), 413, 'too_large', /1048576|limit/);
  });

  it('rejects bad ids, queries, tokens and routes', async () => {
    expectRefused(await get('/api/v1/tasks/zzzzzzzzzzzz'), 404, 'not_found', /zzzzzzzzzzzz/);
    expectRefused(await get('/api/v1/tasks/..%2Fetc'), 400, 'invalid_request', /not a task id/);
    expectRefused(await get('/api/v1/runs/..%2Fetc/outputs'), 400, 'invalid_request', /not a run or task id/);
    expectRefused(await get('/api/v1/runs/zzzzzzzzzzzz-a/outputs'), 404, 'not_found', /zzzzzzzzzzzz/);
    expectRefused(await get('/api/v1/tasks?state=sleeping'), 400, 'invalid_request', /state/);
    expectRefused(await get('/api/v1/tasks?limit=-3'), 400, 'invalid_request', /limit/);
    expectRefused(await get('/api/v1/tasks', {}), 401, 'unauthorized', /token/);
    expectRefused(
      await get('/api/v1/tasks', { authorization: 'Bearer wrong-token-000' }),
      401,
      'unauthorized',
      /token/,
    );
    expectRefused(await get('/api/v2/anything'), 404, 'not_found', /\/api\/v1/);
    const buildNotMultipart = await request(api.app).post('/api/v1/builds').set(auth).send({});
    expectRefused(
      { status: buildNotMultipart.status, body: buildNotMultipart.body as Answer['body'] },
      400,
      'invalid_request',
      /POST \/api\/v1\/builds takes multipart\/form-data/,
    );
    const notMultipart = await request(api.app)
      .post('/api/v1/runs')
      .set(auth)
      .set('content-type', 'application/json')
      .send('{}');
    expectRefused(
      { status: notMultipart.status, body: notMultipart.body as Answer['body'] },
      400,
      'invalid_request',
      /multipart\/form-data/,
    );
  });

  // Issue 9, item 9: each of these was a 500 (or, for the group id, accepted).
  it('answers 400 naming the field to unreadable forms, undecodable paths and outsized values', async () => {
    const raw = async (contentType: string, body: string): Promise<Answer> => {
      const response = await request(api.app)
        .post('/api/v1/runs')
        .set(auth)
        .set('content-type', contentType)
        .send(body);
      return { status: response.status, body: response.body as Answer['body'] };
    };
    const part = (boundary: string, headers: string) =>
      `--${boundary}\r\n${headers}\r\n\r\n${composition()}\r\n--${boundary}--\r\n`;
    expectRefused(
      await raw('multipart/form-data', part('AAA', 'content-disposition: form-data; name="composition"')),
      400,
      'invalid_request',
      /multipart\/form-data body cannot be read \(Multipart: Boundary not found\)[\s\S]*"path":"body"/,
    );
    expectRefused(
      await raw(
        'multipart/form-data; boundary=AAA',
        part('BBB', 'content-disposition: form-data; name="composition"'),
      ),
      400,
      'invalid_request',
      /cannot be read \(Unexpected end of form\)[\s\S]*"path":"body"/,
    );
    expectRefused(
      await raw('multipart/form-data; boundary=AAA', `--AAA\r\n\r\n${composition()}\r\n--AAA--\r\n`),
      400,
      'invalid_request',
      /cannot be read \(Malformed part header\)[\s\S]*"path":"body"/,
    );

    expectRefused(await get('/api/v1/tasks/%ZZ'), 400, 'invalid_request', /%ZZ[\s\S]*"path":"path"/);
    const runnerPath = await request(api.app).post('/api/v1/runners/%ZZ/healthcheck').set(auth);
    expectRefused(
      { status: runnerPath.status, body: runnerPath.body as Answer['body'] },
      400,
      'invalid_request',
      /percent-encoding/,
    );

    const longName = `${'d'.repeat(200)}/`.repeat(40) + 'file.txt';
    assert.ok(longName.length > 8_000);
    expectRefused(
      await submit({
        composition: composition(),
        plan: await craftedArchive([
          { name: 'manifest.toml', body: manifest },
          { name: longName, body: 'x' },
        ]),
      }),
      400,
      'invalid_archive',
      /is 8048 bytes long; archive paths may be at most 1024 bytes/,
    );
    expectRefused(
      await submit({
        composition: composition(),
        plan: await craftedArchive([
          { name: 'manifest.toml', body: manifest },
          { name: `${'n'.repeat(300)}.txt`, body: 'x' },
        ]),
      }),
      400,
      'invalid_archive',
      /304-byte file or directory name; names may be at most 255 bytes/,
    );

    const deep = (levels: number): string => '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);
    for (const where of ['run_config', 'build_config'] as const) {
      const text = JSON.stringify({
        global: { plan: 'placebo', case: 'ok', builder: 'exec:node', runner: 'local:exec' },
        groups: [{ id: 'single', instances: { count: 1 }, [where]: { x: 'DEEP' } }],
      }).replace('"DEEP"', deep(5_000));
      expectRefused(
        await submit({ composition: text, plan: placebo }),
        400,
        'invalid_request',
        new RegExp(`"path":"groups\\[0\\]\\.${where}\\.x(\\.a)+","message":"nested more than 32 levels deep`),
      );
    }

    const longGroup = await submit({
      composition: composition({}, [{ id: 'g'.repeat(10_000), instances: { count: 1 } }]),
      plan: placebo,
    });
    expectRefused(
      longGroup,
      400,
      'invalid_request',
      /groups\[0\]\.id[\s\S]*10000 characters long; group ids may be at most 64/,
    );
    assert.ok(JSON.stringify(longGroup.body).length < 2_000, 'the answer does not repeat the whole id');

    expectRefused(
      await submit({ composition: composition({ run_config: { timeout: '597h' } }), plan: placebo }),
      400,
      'invalid_request',
      /global\.run_config\.timeout[\s\S]*"597h" \(2149200000 ms\) is longer than the longest run timeout, 596h31m23s \(2147483647 ms/,
    );
    const longest = await submit({
      composition: composition({ run_config: { timeout: '596h31m23s' } }),
      plan: placebo,
    });
    assert.equal(longest.status, 202, JSON.stringify(longest.body));
    await request(api.app).post(`/api/v1/tasks/${longest.body.task_id}/cancel`).set(auth);
  });

  it('answers 405 with Allow to a method a path does not take, and 404 to paths that do not exist', async () => {
    const cases: { method: 'get' | 'post' | 'put' | 'delete' | 'patch'; url: string; allow: string }[] = [
      { method: 'get', url: '/api/v1/runs', allow: 'POST' },
      { method: 'put', url: '/api/v1/builds', allow: 'POST' },
      { method: 'delete', url: '/api/v1/tasks', allow: 'GET, HEAD' },
      { method: 'post', url: '/api/v1/tasks', allow: 'GET, HEAD' },
      { method: 'delete', url: '/api/v1/tasks/abc123', allow: 'GET, HEAD' },
      { method: 'get', url: '/api/v1/tasks/abc123/cancel', allow: 'POST' },
      { method: 'post', url: '/api/v1/tasks/abc123/logs', allow: 'GET, HEAD' },
      { method: 'patch', url: '/api/v1/tasks/abc123/report', allow: 'GET, HEAD' },
      { method: 'post', url: '/api/v1/runs/abc123/outputs', allow: 'GET, HEAD' },
      { method: 'get', url: '/api/v1/runners/local%3Aexec/healthcheck', allow: 'POST' },
      { method: 'get', url: '/api/v1/runners/local%3Aexec/terminate', allow: 'POST' },
      { method: 'post', url: '/api/v1/health', allow: 'GET, HEAD' },
      { method: 'delete', url: '/api/v1/openapi.json', allow: 'GET, HEAD' },
    ];
    for (const { method, url, allow } of cases) {
      const response = await request(api.app)[method](url).set(auth);
      expectRefused(
        { status: response.status, body: response.body as Answer['body'] },
        405,
        'method_not_allowed',
        new RegExp(`${method.toUpperCase()} .* is not allowed; it takes ${allow}`),
      );
      assert.equal(response.headers.allow, allow, `${method} ${url}`);
    }
    const options = await request(api.app).options('/api/v1/tasks').set(auth);
    assert.equal(options.status, 204);
    assert.equal(options.headers.allow, 'GET, HEAD, OPTIONS');
    expectRefused(await get('/api/v1/tasks/abc123/nothing'), 404, 'not_found', /no route GET/);
  });

  it('still serves, and still runs a valid plan, after all of that', async () => {
    assert.equal((await request(api.app).get('/api/v1/health')).status, 200);
    const accepted = await submit({ composition: composition(), plan: placebo });
    assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
    const id = accepted.body.task_id!;
    const task = await waitFor(`task ${id} to end`, async () => {
      const body = (await get(`/api/v1/tasks/${id}`)).body as unknown as { state: string; outcome: string };
      return body.state === 'complete' || body.state === 'canceled' ? body : undefined;
    });
    assert.equal(task.outcome, 'success');
    assert.equal(api.runner.runs.length, 1, 'the run reached the runner');
    const conflict = await request(api.app).post(`/api/v1/tasks/${id}/cancel`).set(auth);
    expectRefused(
      { status: conflict.status, body: conflict.body as Answer['body'] },
      409,
      'conflict',
      /already ended/,
    );
    const openapi = await get('/api/v1/openapi.json');
    assert.equal(openapi.status, 200);
    assert.equal((openapi.body as { openapi?: string }).openapi, '3.1.0');
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { matchToken } from '../../api/auth.ts';
import { hashToken, newToken, type TokenEntry } from '../../core/token-file.ts';
import { Gate } from '../helpers/fake-components.ts';
import { buildTestApp, packPlacebo, placeboComposition, startTestApp, type TestApp } from '../helpers/app.ts';
import { waitFor } from '../helpers/processes.ts';

const tokens = {
  alice: { token: newToken(), user: 'alice', role: 'admin' as const },
  bob: { token: newToken(), user: 'bob', role: 'user' as const },
  carol: { token: newToken(), user: 'carol', role: 'user' as const },
  vic: { token: newToken(), user: 'vic', role: 'viewer' as const },
};
const as = (who: keyof typeof tokens): Record<string, string> => ({
  authorization: `Bearer ${tokens[who].token}`,
});

interface ErrorAnswer {
  error?: { code: string; message: string; details: { path: string; message: string }[] };
}
interface Task {
  id: string;
  state: string;
  created_by: string;
  outcome: string | null;
}

describe('with a tokens file, the token decides who asks and what they may do', () => {
  let api: TestApp;
  let placebo: Buffer;
  let openapi: { paths: Record<string, Record<string, { security?: unknown[] }>> };

  before(async () => {
    api = await startTestApp({ tokens: Object.values(tokens) });
    placebo = await packPlacebo();
    openapi = (await request(api.app).get('/api/v1/openapi.json')).body as typeof openapi;
  });
  after(async () => {
    api.runner.gate?.open();
    await api?.close();
  });

  const submit = async (
    headers: Record<string, string>,
    fields: Record<string, string> = {},
  ): Promise<request.Response> => {
    let pending = request(api.app)
      .post('/api/v1/runs')
      .set(headers)
      .field('composition', placeboComposition());
    for (const [name, value] of Object.entries(fields)) pending = pending.field(name, value);
    return pending.attach('plan', placebo, 'plan.tar.gz');
  };

  it('answers /health and the OpenAPI document without a token, and every other route only with one', async () => {
    assert.equal((await request(api.app).get('/api/v1/health')).status, 200);
    assert.equal((await request(api.app).get('/api/v1/openapi.json')).status, 200);
    // Every operation the document declares, so a route added later is covered without editing this test.
    const operations = Object.entries(openapi.paths).flatMap(([template, methods]) =>
      Object.entries(methods).map(([method, operation]) => ({ template, method, operation })),
    );
    assert.ok(operations.length >= 10, `the document declares ${operations.length} operations`);
    const checked: string[] = [];
    for (const { template, method, operation } of operations) {
      const url = `/api/v1${template.replace('{id}', template.startsWith('/runners') ? 'local%3Aexec' : 'abc123')}`;
      const isPublic = Array.isArray(operation.security) && operation.security.length === 0;
      for (const headers of [{}, { authorization: 'Bearer ' }, { authorization: `Bearer ${newToken()}` }]) {
        const answer = await request(api.app)[method as 'get' | 'post'](url).set(headers);
        if (isPublic) assert.notEqual(answer.status, 401, `${method} ${url} is public`);
        else {
          assert.equal(answer.status, 401, `${method} ${url} with ${JSON.stringify(headers)}`);
          assert.equal((answer.body as ErrorAnswer).error?.code, 'unauthorized');
        }
      }
      checked.push(`${method} ${template}${isPublic ? ' (public)' : ''}`);
    }
    assert.deepEqual(checked.filter((entry) => entry.endsWith('(public)')).sort(), [
      'get /health (public)',
      'get /openapi.json (public)',
    ]);
  });

  it("records the token's user as the creator, whatever X-Testground-User claims", async () => {
    const answer = await submit({ ...as('bob'), 'x-testground-user': 'alice' });
    assert.equal(answer.status, 202, JSON.stringify(answer.body));
    const id = (answer.body as { task_id: string }).task_id;
    const task = (await request(api.app).get(`/api/v1/tasks/${id}`).set(as('vic'))).body as Task;
    assert.equal(task.created_by, 'bob');
    await waitFor(`task ${id} to end`, async () => {
      const view = (await request(api.app).get(`/api/v1/tasks/${id}`).set(as('bob'))).body as Task;
      return view.state === 'complete' ? view : undefined;
    });
  });

  it("lets a user cancel only their own tasks (403 for another's), and an admin anyone's", async () => {
    api.runner.gate = new Gate();
    const bobs = (await submit(as('bob'))).body as { task_id: string };
    const carols = (await submit(as('carol'))).body as { task_id: string };
    const cancel = (id: string, who: keyof typeof tokens) =>
      request(api.app).post(`/api/v1/tasks/${id}/cancel`).set(as(who));

    const refused = await cancel(bobs.task_id, 'carol');
    assert.equal(refused.status, 403, JSON.stringify(refused.body));
    const error = (refused.body as ErrorAnswer).error!;
    assert.equal(error.code, 'forbidden');
    assert.match(error.message, /created by "bob"; user "carol" \(role user\) may cancel only their own/);
    const stillThere = (await request(api.app).get(`/api/v1/tasks/${bobs.task_id}`).set(as('bob')))
      .body as Task;
    assert.notEqual(stillThere.state, 'canceled', "carol's refused cancel left bob's task alone");

    const viewer = await cancel(bobs.task_id, 'vic');
    assert.equal(viewer.status, 403);
    assert.match((viewer.body as ErrorAnswer).error!.message, /role viewer; .* needs role user or admin/);

    const own = await cancel(bobs.task_id, 'bob');
    assert.equal(own.status, 200, JSON.stringify(own.body));
    const byAdmin = await cancel(carols.task_id, 'alice');
    assert.equal(byAdmin.status, 200, JSON.stringify(byAdmin.body));
    for (const id of [bobs.task_id, carols.task_id]) {
      await waitFor(`task ${id} to be canceled`, async () => {
        const view = (await request(api.app).get(`/api/v1/tasks/${id}`).set(as('alice'))).body as Task;
        return view.state === 'canceled' ? view : undefined;
      });
    }
    api.runner.gate.open();
    api.runner.gate = undefined;
  });

  it('keeps viewers to reading, and terminate and healthcheck --fix to admins', async () => {
    const list = await request(api.app).get('/api/v1/tasks').set(as('vic'));
    assert.equal(list.status, 200);
    const viewerSubmit = await submit(as('vic'));
    assert.equal(viewerSubmit.status, 403);
    assert.match((viewerSubmit.body as ErrorAnswer).error!.message, /"vic" has role viewer/);
    const viewerBuild = await request(api.app).post('/api/v1/builds').set(as('vic'));
    assert.equal(viewerBuild.status, 403);

    const bobs = await submit(as('bob'));
    assert.equal(bobs.status, 202, JSON.stringify(bobs.body));
    const runId = (bobs.body as { run_id: string }).run_id;
    await waitFor(`run ${runId} to end`, async () => {
      const task = await request(api.app).get(`/api/v1/tasks/${runId}`).set(as('vic'));
      return (task.body as { state: string }).state === 'complete' ? true : undefined;
    });
    const metrics = await request(api.app).get(`/api/v1/runs/${runId}/metrics?raw=true`).set(as('vic'));
    assert.equal(metrics.status, 200, 'a viewer reads the metrics of any run');
    assert.equal((await request(api.app).get(`/api/v1/runs/${runId}/metrics`)).status, 401);

    const runner = '/api/v1/runners/local%3Aexec';
    const userTerminate = await request(api.app).post(`${runner}/terminate`).set(as('bob'));
    assert.equal(userTerminate.status, 403);
    assert.match((userTerminate.body as ErrorAnswer).error!.message, /terminate needs role admin/);
    const userFix = await request(api.app).post(`${runner}/healthcheck?fix=true`).set(as('bob'));
    assert.equal(userFix.status, 403);
    assert.equal((userFix.body as ErrorAnswer).error!.details[0]?.path, 'fix');
    assert.equal((await request(api.app).post(`${runner}/healthcheck`).set(as('bob'))).status, 200);
    assert.equal(
      (await request(api.app).post(`${runner}/healthcheck?fix=true`).set(as('alice'))).status,
      200,
    );
    assert.equal((await request(api.app).post(`${runner}/terminate`).set(as('alice'))).status, 200);
  });

  it("supersedes only the submitter's own queued tasks unless an admin submits", async () => {
    api.builder.gate = new Gate();
    const metadata = { metadata_repo: 'org/repo', metadata_branch: 'main', supersede: 'true' };
    // The first task holds the worker in its build; the next ones stay queued behind it.
    const ids: string[] = [];
    for (const who of ['alice', 'alice', 'bob'] as const) {
      const answer = await submit(as(who), metadata);
      assert.equal(answer.status, 202, JSON.stringify(answer.body));
      ids.push((answer.body as { task_id: string }).task_id);
    }
    const carols = await submit(as('carol'), metadata);
    assert.deepEqual(
      (carols.body as { superseded: string[] }).superseded,
      [],
      "carol's submission cancels none of the others' queued tasks",
    );
    const bobs = await submit(as('bob'), metadata);
    const bobSuperseded = (bobs.body as { superseded: string[] }).superseded;
    assert.ok(
      bobSuperseded.includes(ids[2]!),
      `bob supersedes his own earlier task: ${bobSuperseded.join()}`,
    );
    for (const id of bobSuperseded) {
      const view = (await request(api.app).get(`/api/v1/tasks/${id}`).set(as('alice'))).body as Task;
      assert.equal(view.created_by, 'bob');
    }
    const admins = await submit(as('alice'), metadata);
    const adminSuperseded = (admins.body as { superseded: string[] }).superseded;
    assert.ok(
      adminSuperseded.includes((carols.body as { task_id: string }).task_id),
      "an admin's supersede reaches carol's queued task",
    );
    api.builder.gate.open();
    api.builder.gate = undefined;
    const all = (await request(api.app).get('/api/v1/tasks?limit=100').set(as('alice'))).body as {
      tasks: Task[];
    };
    for (const task of all.tasks.filter((candidate) => candidate.state !== 'complete')) {
      await request(api.app).post(`/api/v1/tasks/${task.id}/cancel`).set(as('alice'));
    }
  });
});

describe('without tokens (loopback), the network is trusted as before', () => {
  it('names the creator by X-Testground-User and lets anyone cancel', async (t) => {
    const api = await buildTestApp(t);
    api.runner.gate = new Gate();
    t.after(() => api.runner.gate?.open());
    const answer = await request(api.app)
      .post('/api/v1/runs')
      .set('x-testground-user', 'dora')
      .field('composition', placeboComposition())
      .attach('plan', await packPlacebo(), 'plan.tar.gz');
    assert.equal(answer.status, 202, JSON.stringify(answer.body));
    const id = (answer.body as { task_id: string }).task_id;
    assert.equal(((await request(api.app).get(`/api/v1/tasks/${id}`)).body as Task).created_by, 'dora');
    const canceled = await request(api.app)
      .post(`/api/v1/tasks/${id}/cancel`)
      .set('x-testground-user', 'eve');
    assert.equal(canceled.status, 200, JSON.stringify(canceled.body));
  });

  it('takes the single TESTGROUND_TOKEN as an admin token of user "admin"', async (t) => {
    const api = await buildTestApp(t, { token: 'legacy-token-1234' });
    const answer = await request(api.app)
      .post('/api/v1/runs')
      .set({ authorization: 'Bearer legacy-token-1234', 'x-testground-user': 'someone' })
      .field('composition', placeboComposition())
      .attach('plan', await packPlacebo(), 'plan.tar.gz');
    assert.equal(answer.status, 202, JSON.stringify(answer.body));
    const id = (answer.body as { task_id: string }).task_id;
    const view = await request(api.app)
      .get(`/api/v1/tasks/${id}`)
      .set({ authorization: 'Bearer legacy-token-1234' });
    assert.equal((view.body as Task).created_by, 'admin');
  });
});

describe('matchToken', () => {
  const entries: TokenEntry[] = [
    { hash: hashToken('first-token-aaaa'), user: 'first', role: 'user' },
    { hash: hashToken('second-token-bbbb'), user: 'second', role: 'admin' },
  ];

  it('finds the entry whose hash is the token, comparing digests of one length', () => {
    assert.equal(matchToken(entries, 'second-token-bbbb')?.user, 'second');
    assert.equal(matchToken(entries, 'first-token-aaaa')?.user, 'first');
    // Prefixes, extensions and other lengths compare as 32-byte digests: no RangeError, no match.
    for (const wrong of ['', 'f', 'first-token-aaa', 'first-token-aaaaa', 'x'.repeat(10_000)])
      assert.equal(matchToken(entries, wrong), undefined, JSON.stringify(wrong.slice(0, 20)));
  });

  it('never matches an entry whose stored hash is malformed', () => {
    const broken: TokenEntry[] = [{ hash: 'sha256:abc', user: 'broken', role: 'admin' }];
    assert.equal(matchToken(broken, ''), undefined);
    assert.equal(matchToken(broken, 'abc'), undefined);
  });
});

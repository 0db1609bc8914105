/**
 * The queue limits (per user and in total) and the upload quota through the HTTP API, in-process, on a
 * real redis-server and the real TaskService: refusals are 429 with `Retry-After` (413 for an archive
 * larger than the whole quota), and a slot frees when a task ends or a submission fails.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import request from 'supertest';
import { errorBodySchema } from '../../api/schemas.ts';
import { buildTestApp, packPlacebo, placeboComposition, type TestApp } from '../helpers/app.ts';
import { Gate } from '../helpers/fake-components.ts';
import { waitFor } from '../helpers/processes.ts';

const submit = (api: TestApp, user: string, plan: Buffer, composition = placeboComposition()) =>
  request(api.app)
    .post('/api/v1/runs')
    .set('x-testground-user', user)
    .field('composition', composition)
    .attach('plan', plan, 'plan.tar.gz');

describe('queue limits and the upload quota', () => {
  it('refuses a user past their unfinished tasks, and everyone past the total, with 429 and Retry-After', async (t) => {
    const api = await buildTestApp(t, {
      admission: { maxActivePerUser: 2, maxActive: 3, uploadQuotaWindowMs: 60_000 },
    });
    const plan = await packPlacebo();
    api.runner.gate = new Gate();
    for (const user of ['alice', 'alice', 'bob']) {
      const accepted = await submit(api, user, plan);
      assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
    }

    const third = await submit(api, 'alice', plan);
    assert.equal(third.status, 429, JSON.stringify(third.body));
    assert.equal(third.headers['retry-after'], '30');
    const body = errorBodySchema.parse(third.body);
    assert.equal(body.error.code, 'too_many_requests');
    assert.match(body.error.message, /user "alice" has 2 unfinished tasks/);
    assert.match(body.error.message, /TESTGROUND_MAX_ACTIVE_PER_USER=2/);

    const total = await submit(api, 'carol', plan);
    assert.equal(total.status, 429, JSON.stringify(total.body));
    assert.match(total.body.error.message, /the daemon has 3 unfinished tasks.*TESTGROUND_MAX_ACTIVE=3/);
    assert.ok(Number(total.headers['retry-after']) > 0);
    // Refused submissions leave nothing: no task, no snapshot.
    assert.equal((await api.store.list({ limit: 100 })).length, 3);

    // Once the tasks end, their slots are free again.
    api.runner.gate.open();
    await waitFor(
      'the tasks to complete',
      async () => {
        const tasks = await api.store.list({ limit: 100 });
        return tasks.every((task) => task.state === 'complete') || undefined;
      },
      10_000,
    );
    const again = await submit(api, 'alice', plan);
    assert.equal(again.status, 202, JSON.stringify(again.body));
  });

  it('gives the slot back when a submission is refused for its content', async (t) => {
    const api = await buildTestApp(t, {
      admission: { maxActivePerUser: 1, maxActive: 0, uploadQuotaWindowMs: 60_000 },
    });
    const plan = await packPlacebo();
    api.runner.gate = new Gate();
    const bad = await submit(api, 'dave', plan, placeboComposition({ case: 'no-such-case' }));
    assert.equal(bad.status, 400, JSON.stringify(bad.body));
    const good = await submit(api, 'dave', plan);
    assert.equal(good.status, 202, JSON.stringify(good.body));
    api.runner.gate.open();
  });

  it('meters uploads per user over a window: 429 with the time until enough leaves it, 413 past the whole quota', async (t) => {
    const plan = await packPlacebo();
    const quota = Math.floor(plan.length * 2.5);
    const api = await buildTestApp(t, {
      admission: {
        maxActivePerUser: 0,
        maxActive: 0,
        uploadQuotaBytes: quota,
        uploadQuotaWindowMs: 120_000,
      },
    });
    for (let index = 0; index < 2; index += 1) {
      const accepted = await submit(api, 'erin', plan);
      assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
    }
    const over = await submit(api, 'erin', plan);
    assert.equal(over.status, 429, JSON.stringify(over.body));
    const retryAfter = Number(over.headers['retry-after']);
    assert.ok(retryAfter > 100 && retryAfter <= 120, `Retry-After ${retryAfter}`);
    assert.match(over.body.error.message, /upload quota \(TESTGROUND_UPLOAD_QUOTA=\d+ bytes per 120 s\)/);
    assert.equal(over.body.error.details[0].path, 'plan');

    // Another user has a quota of their own.
    assert.equal((await submit(api, 'frank', plan)).status, 202);

    const big = Buffer.concat([plan, Buffer.alloc(quota)]);
    const tooLarge = await submit(api, 'frank', big);
    assert.equal(tooLarge.status, 413, JSON.stringify(tooLarge.body));
    assert.match(tooLarge.body.error.message, /more than the whole upload quota/);
  });
});

/**
 * `GET /tasks` (summaries, a cursor) through the in-process app, and the CLI's `tasks` command paging
 * through it on a port.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { runCli as testground } from '../../cli/main.ts';
import type { ResolvedTask } from '../../core/run.ts';
import type { Composition } from '../../plan/composition.ts';
import type { TaskList } from '../../api/schemas.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';

describe('listing tasks', () => {
  let api: TestApp;
  let server: Server;
  let endpoint: string;
  before(async () => {
    api = await startTestApp();
    // 7 tasks, newest last: t6 is the newest. Written as submission would, without running them.
    for (let index = 0; index < 7; index += 1) {
      await api.store.create({
        id: `t${index}`,
        plan: index % 2 === 0 ? 'example' : 'placebo',
        testCase: 'ok',
        builder: 'exec:node',
        runner: 'local:exec',
        instances: 2,
        createdBy: 'alice',
        composition: { global: { plan: 'example' } } as unknown as Composition,
        resolved: { runs: [] } as unknown as ResolvedTask,
        runs: [{ id: `t${index}`, name: 'default', instances: 2, outputsDir: `/outputs/t${index}` }],
        planDir: '/plans/x',
      });
      await new Promise((resolve) => setTimeout(resolve, 3));
    }
    server = api.app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await api?.close();
  });

  it('answers pages of summaries and a cursor to the next, until the last page', async () => {
    const ids: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 5; page += 1) {
      const response = await request(api.app)
        .get('/api/v1/tasks')
        .query({ limit: 3, ...(cursor ? { cursor } : {}) });
      assert.equal(response.status, 200);
      const body = response.body as TaskList;
      ids.push(...body.tasks.map((task) => task.id));
      cursor = body.next_cursor;
      if (cursor === null) break;
    }
    assert.deepEqual(ids, ['t6', 't5', 't4', 't3', 't2', 't1', 't0']);
    const first = ((await request(api.app).get('/api/v1/tasks?limit=1')).body as TaskList).tasks[0]!;
    assert.deepEqual(first, {
      id: 't6',
      type: 'run',
      plan: 'example',
      case: 'ok',
      builder: 'exec:node',
      runner: 'local:exec',
      instances: 2,
      created_by: 'alice',
      created_at: first.created_at,
      ended_at: null,
      state: 'queued',
      outcome: null,
      error: null,
      cancel_requested: false,
      metadata: {},
      links: { task: '/api/v1/tasks/t6' },
    });
    const placebo = (await request(api.app).get('/api/v1/tasks?plan=placebo')).body as TaskList;
    assert.deepEqual(
      placebo.tasks.map((task) => task.id),
      ['t5', 't3', 't1'],
    );
    assert.equal(placebo.next_cursor, null);
  });

  it('refuses a cursor it did not hand out, naming the field', async () => {
    const response = await request(api.app).get('/api/v1/tasks?cursor=../../etc');
    assert.equal(response.status, 400);
    const body = response.body as { error: { code: string; details: { path: string }[] } };
    assert.equal(body.error.code, 'invalid_request');
    assert.deepEqual(
      body.error.details.map((detail) => detail.path),
      ['cursor'],
    );
  });

  it('testground tasks pages through the listing and says how to go on', async () => {
    const cli = async (...args: string[]) => {
      const out: string[] = [];
      const err: string[] = [];
      const code = await testground(
        ['node', 'testground', '--endpoint', endpoint, ...args],
        {
          runDaemon: () => assert.fail('no daemon is started here'),
          runSyncService: () => assert.fail('no sync service is started here'),
        },
        { out: (text) => out.push(text), err: (text) => err.push(text) },
      );
      return { code, out, err: err.join('\n') };
    };
    const all = await cli('tasks');
    assert.equal(all.code, 0);
    assert.deepEqual(
      all.out.slice(1).map((line) => line.split(' ')[0]),
      ['t6', 't5', 't4', 't3', 't2', 't1', 't0'],
    );
    assert.equal(all.err, '', 'nothing more to list');

    const some = await cli('tasks', '--limit', '2');
    assert.deepEqual(
      some.out.slice(1).map((line) => line.split(' ')[0]),
      ['t6', 't5'],
    );
    const next = /testground tasks --cursor (\S+)/.exec(some.err)?.[1];
    assert.ok(next, some.err);
    const rest = await cli('tasks', '--cursor', next, '--limit', '3');
    assert.deepEqual(
      rest.out.slice(1).map((line) => line.split(' ')[0]),
      ['t4', 't3', 't2'],
    );
  });
});

import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import type { LogLine } from '../../api/schemas.ts';
import { packPlacebo, placeboComposition, startTestApp, type TestApp } from '../helpers/app.ts';
import { Gate } from '../helpers/fake-components.ts';
import { waitFor } from '../helpers/processes.ts';

/** Reads an NDJSON response line by line as it arrives. */
async function* ndjsonLines(response: Response): AsyncGenerator<LogLine> {
  const decoder = new TextDecoder();
  let partial = '';
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    partial += decoder.decode(chunk, { stream: true });
    for (let newline = partial.indexOf('\n'); newline !== -1; newline = partial.indexOf('\n')) {
      yield JSON.parse(partial.slice(0, newline)) as LogLine;
      partial = partial.slice(newline + 1);
    }
  }
}

describe('GET /tasks/:id/logs', () => {
  let api: TestApp;
  let placebo: Buffer;
  let server: Server;
  let url: string;
  before(async () => {
    api = await startTestApp();
    placebo = await packPlacebo();
    // Following needs a real connection the test can read from while it is open, and drop.
    server = api.app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await api?.close();
  });

  const submitHeld = async (): Promise<{ taskId: string; gate: Gate; log: () => Promise<void> }> => {
    const gate = new Gate();
    api.runner.gate = gate;
    const started = api.runner.nextRun();
    const response = await request(api.app)
      .post('/api/v1/runs')
      .field('composition', placeboComposition())
      .attach('plan', placebo, 'plan.tar.gz');
    assert.equal(response.status, 202, JSON.stringify(response.body));
    const input = await started;
    return {
      taskId: (response.body as { task_id: string }).task_id,
      gate,
      log: async () => input.log.output('single', 0, 'stdout', 'live line'),
    };
  };
  const followers = async (taskId: string): Promise<number> =>
    ((await api.redis.client('LIST')) as string)
      .split('\n')
      .filter((line) => line.includes(` name=${api.prefix}:log-follower:${taskId} `)).length;

  it('follows a running task live and ends with its end line', async () => {
    const held = await submitHeld();
    const response = await fetch(`${url}/api/v1/tasks/${held.taskId}/logs?follow=true`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'application/x-ndjson');
    const seen: LogLine[] = [];
    for await (const line of ndjsonLines(response)) {
      seen.push(line);
      if (line.kind === 'state' && line.state === 'running') await held.log();
      if (line.kind === 'output') {
        assert.equal(line.line, 'live line');
        held.gate.open();
      }
    }
    api.runner.gate = undefined;
    const names = seen.map((line) => (line.kind === 'state' ? `state:${line.state}` : line.kind));
    assert.deepEqual(
      names.filter((name) => name !== 'log' && name !== 'progress'),
      ['state:queued', 'state:building', 'state:running', 'output', 'instance_end', 'end'],
    );
    assert.ok(names.includes('log'), 'the build logged');
    // The run's last progress (its instance ended) comes once it has ended and before the task's end.
    const lastProgress = seen.findLast((line) => line.kind === 'progress');
    assert.ok(names.lastIndexOf('progress') > names.indexOf('instance_end'));
    assert.ok(names.lastIndexOf('progress') < names.indexOf('end'));
    assert.equal(lastProgress?.kind === 'progress' && lastProgress.groups[0]?.ended.success, 1);

    const running = names.indexOf('state:running');
    const from = seen[running]!.offset;
    const rest = await request(api.app)
      .get(`/api/v1/tasks/${held.taskId}/logs?offset=${from}`)
      .buffer(true)
      .parse((stream, done) => {
        let text = '';
        stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
        stream.on('end', () => done(null, text));
      });
    assert.deepEqual(
      (rest.body as string)
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as LogLine).kind),
      names.slice(running + 1),
      'resumes after the offset it was given',
    );
  });

  it('releases the follower when the client goes away', async () => {
    const held = await submitHeld();
    const client = new AbortController();
    const response = await fetch(`${url}/api/v1/tasks/${held.taskId}/logs?follow=true`, {
      signal: client.signal,
    });
    const lines = ndjsonLines(response);
    await lines.next();
    await waitFor('the follower to be connected', async () =>
      (await followers(held.taskId)) === 1 ? true : undefined,
    );
    client.abort();
    await waitFor(
      'the follower to be released',
      async () => ((await followers(held.taskId)) === 0 ? true : undefined),
      5_000,
    );
    held.gate.open();
    api.runner.gate = undefined;
  });

  it('ends a follow when the record says the task ended but the end line is gone', async () => {
    const held = await submitHeld();
    held.gate.open();
    api.runner.gate = undefined;
    await waitFor('the task to end', async () =>
      (await api.tasks.get(held.taskId)).state === 'complete' ? true : undefined,
    );
    // A very long log trims its oldest lines, and after a long time even its end: drop it by hand.
    const key = `${api.prefix}:log:${held.taskId}`;
    const last = (await api.redis.xrevrange(key, '+', '-', 'COUNT', 1))[0];
    assert.ok(last);
    await api.redis.xdel(key, last[0]);
    const started = Date.now();
    const response = await request(api.app)
      .get(`/api/v1/tasks/${held.taskId}/logs?follow=true`)
      .buffer(true)
      .parse((stream, done) => {
        let text = '';
        stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
        stream.on('end', () => done(null, text));
      });
    assert.equal(response.status, 200);
    assert.doesNotMatch(response.body as string, /"kind":"end"/);
    assert.ok(Date.now() - started < 5_000, 'the follow ended after a quiet wait, not at a timeout');
  });
});

/**
 * waitForLogLine against the real engine: the line comes (even as an unterminated last line), the output
 * ends first, the line never comes, and the caller gives up (abort, close).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DockerEngine } from '../../docker/docker-engine.ts';
import { LogLineError, waitForLogLine } from '../../docker/wait-for-log-line.ts';
import { connectEngine, removeScope, testRuntimeImage, testScope } from './docker-fixtures.ts';

const scope = testScope('log-line');
let engine: DockerEngine;
let nodeImage: string;

before(async () => {
  engine = await connectEngine();
  nodeImage = (await testRuntimeImage(engine)).ref;
});

after(async () => {
  if (engine) await removeScope(engine, scope.filter);
});

/** A created (not started) container running `script` with node. */
const created = (what: string, script: string): Promise<string> =>
  engine.createContainer({
    name: `${scope.runId}-${what}`,
    image: nodeImage,
    cmd: ['node', '-e', script],
    env: {},
    labels: scope.labels,
  });

describe('waitForLogLine', { concurrency: true }, () => {
  it('resolves with the first matching line, attached before the start so nothing is missed', async () => {
    const id = await created(
      'prints',
      "console.log('starting'); console.error('on stderr: ready soon'); setTimeout(() => console.log('ready on 4242'), 300); setInterval(() => {}, 1_000);",
    );
    const ready = await waitForLogLine(engine, id, /^ready on \d+$/, 30_000);
    await engine.startContainer(id);
    assert.equal(await ready.line, 'ready on 4242');
    await engine.killContainer(id);
  });

  it('matches a last line written without a newline just before the container exits', async () => {
    const id = await created('unterminated', "process.stdout.write('first\\nv1.2.3')");
    const version = await waitForLogLine(engine, id, 'v1.2.3', 30_000);
    await engine.startContainer(id);
    assert.equal(await version.line, 'v1.2.3');
  });

  it('rejects saying the container exited before printing the line, with its output', async () => {
    const id = await created(
      'exits',
      "console.log('loading config'); console.error('fatal: port 5050 is taken'); process.exit(3)",
    );
    const listening = await waitForLogLine(engine, id, 'listening on', 30_000);
    await engine.startContainer(id);
    await assert.rejects(listening.line, (error: Error) => {
      assert.ok(error instanceof LogLineError, `${error.name}: ${error.message}`);
      assert.equal(error.reason, 'exited');
      assert.equal(error.code, 'docker_failed');
      assert.match(error.message, /exited before printing a line matching "listening on"/);
      assert.match(error.message, /loading config/);
      assert.match(error.message, /fatal: port 5050 is taken/);
      assert.match(error.output, /fatal: port 5050 is taken/);
      return true;
    });
  });

  it('rejects after the timeout when the line never comes, with the output so far', async () => {
    const id = await created('silent', "console.log('still thinking'); setInterval(() => {}, 1_000);");
    // Once it has printed, a second wait reads its log from the first byte: the timeout can be short
    // without racing the container's start.
    const thinking = await waitForLogLine(engine, id, 'still thinking', 30_000);
    await engine.startContainer(id);
    await thinking.line;
    const started = performance.now();
    const listening = await waitForLogLine(engine, id, /listening/, 1_000);
    await assert.rejects(listening.line, (error: Error) => {
      assert.ok(error instanceof LogLineError, `${error.name}: ${error.message}`);
      assert.equal(error.reason, 'timeout');
      assert.match(error.message, /did not print a line matching \/listening\/ within 1000 ms/);
      assert.match(error.message, /its output: still thinking/);
      return true;
    });
    assert.ok(performance.now() - started >= 950, 'it waited for the timeout');
    await engine.killContainer(id);
  });

  it('rejects with an AbortError when the signal fires, and when the caller closes it', async () => {
    const id = await created('aborted', 'setInterval(() => {}, 1_000);');
    const controller = new AbortController();
    const aborted = await waitForLogLine(engine, id, 'never', 30_000, controller.signal);
    await engine.startContainer(id);
    controller.abort();
    await assert.rejects(aborted.line, { name: 'AbortError' });
    await engine.killContainer(id);

    // Never started: close() must release the attachment, which would otherwise stay open.
    const idle = await created('never-started', 'setInterval(() => {}, 1_000);');
    const closed = await waitForLogLine(engine, idle, 'never', 30_000);
    closed.close();
    await assert.rejects(closed.line, { name: 'AbortError' });

    const alreadyAborted = AbortSignal.abort();
    await assert.rejects(waitForLogLine(engine, idle, 'never', 30_000, alreadyAborted), {
      name: 'AbortError',
    });
  });
});

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, it } from 'node:test';
import { describeThrown, EventRecorder } from '../../sdk/event-recorder.ts';
import { instanceEnv, repoRoot, scratchDir, spawnInstance } from './spawn-instance.ts';

const scratch = scratchDir('events');
after(() => scratch.cleanup());

describe('EventRecorder', () => {
  it('creates the outputs directory and appends each line to run.out as it writes it to stdout', () => {
    const outputsPath = path.join(scratch.dir, 'nested', 'single', '0');
    const stdout: string[] = [];
    const recorder = new EventRecorder({
      runId: 'r"1',
      groupId: 'single',
      outputsPath,
      writeStdout: (line) => stdout.push(line),
      clock: () => 12_345_678_901_234_567_890n,
    });
    assert.equal(recorder.record({ type: 'message', message: 'line\nbreak "quoted"' }), true);
    assert.equal(
      stdout[0],
      '{"ts":12345678901234567890,"msg":"","group_id":"single","run_id":"r\\"1","event":{"type":"message","message":"line\\nbreak \\"quoted\\""}}\n',
    );
    // Every line stays one JSON object even when values hold newlines and quotes.
    assert.deepEqual(JSON.parse(stdout[0] ?? '').event, { type: 'message', message: 'line\nbreak "quoted"' });
    assert.equal(readFileSync(path.join(outputsPath, 'run.out'), 'utf8'), stdout.join(''));
  });

  it('writes only the first finish event', () => {
    const stdout: string[] = [];
    const recorder = new EventRecorder({
      runId: 'r',
      groupId: 'g',
      outputsPath: path.join(scratch.dir, 'once'),
      writeStdout: (line) => stdout.push(line),
    });
    assert.equal(recorder.outcome, undefined);
    assert.equal(recorder.record({ type: 'finish', outcome: 'ok' }), true);
    assert.equal(recorder.record({ type: 'finish', outcome: 'failure', error: 'second' }), false);
    assert.equal(
      recorder.record({ type: 'finish', outcome: 'crash', error: 'third', stacktrace: '' }),
      false,
    );
    assert.equal(recorder.record({ type: 'message', message: 'after' }), true);
    assert.equal(recorder.outcome, 'ok');
    assert.deepEqual(
      stdout.map((line) => (JSON.parse(line) as { event: { type: string } }).event.type),
      ['finish', 'message'],
    );
  });

  it('stamps wall-clock nanoseconds by default', () => {
    const stdout: string[] = [];
    const before = Date.now();
    new EventRecorder({
      runId: 'r',
      groupId: 'g',
      outputsPath: path.join(scratch.dir, 'clock'),
      writeStdout: (line) => stdout.push(line),
    }).record({ type: 'message', message: 'now' });
    const ts = (JSON.parse(stdout[0] ?? '') as { ts: number }).ts;
    assert.ok(
      ts >= (before - 1) * 1e6 && ts <= (Date.now() + 1) * 1e6,
      `ts ${ts} is not around ${before} ms`,
    );
  });

  it('says why it could not create the outputs directory', () => {
    const file = path.join(scratch.dir, 'a-file');
    writeFileSync(file, '');
    const recorder = new EventRecorder({
      runId: 'r',
      groupId: 'g',
      outputsPath: path.join(file, 'sub'),
      writeStdout: () => {},
    });
    assert.throws(() => recorder.record({ type: 'message', message: 'x' }), {
      message:
        /^cannot write event to .*a-file\/sub\/run.out: .*TEST_OUTPUTS_PATH must be a writable directory/,
    });
  });
});

describe('describeThrown', () => {
  it('describes errors and anything else that can be thrown', () => {
    const error = new TypeError('bad type');
    assert.deepEqual(describeThrown(error), { message: 'bad type', stack: error.stack });
    assert.equal(describeThrown(new Error('')).message, 'Error');
    assert.deepEqual(describeThrown('plain'), { message: 'non-error value thrown: plain', stack: '' });
    assert.equal(describeThrown({ code: 7 }).message, 'non-error value thrown: {"code":7}');
    assert.equal(describeThrown(undefined).message, 'non-error value thrown: undefined');
    assert.equal(describeThrown(10n).message, 'non-error value thrown: 10');
  });
});

describe('event recording in a real instance process', () => {
  // Node drops stdout still queued for a pipe at process.exit() (seen under load), so only run.out,
  // written synchronously, can promise every event; stdout must carry a prefix of the same lines.
  it('has every event in run.out even when the process exits right after, and the same lines on stdout', async () => {
    const script = path.join(scratch.dir, 'record-and-exit.mts');
    const sdk = pathToFileURL(path.join(repoRoot, 'sdk', 'index.ts')).href;
    writeFileSync(
      script,
      [
        `import { parseRunEnv } from ${JSON.stringify(sdk)};`,
        'const runenv = parseRunEnv(process.env);',
        'runenv.recordStart();',
        "for (let i = 0; i < 200; i++) runenv.recordMessage(`message ${i} ${'x'.repeat(500)}`);",
        'runenv.recordSuccess();',
        'process.exit(0);',
      ].join('\n'),
    );
    const outputsPath = path.join(scratch.dir, 'instance', 'single', '0');
    const run = await spawnInstance(
      script,
      instanceEnv({ TEST_OUTPUTS_PATH: outputsPath, TEST_INSTANCE_PARAMS_JSON: '{"a":"1|2"}' }),
    );

    assert.equal(run.exitCode, 0, run.stderr);
    const runOut = readFileSync(path.join(outputsPath, 'run.out'), 'utf8');
    const lines = runOut.trim().split('\n');
    assert.equal(lines.length, 202);
    assert.ok(
      run.stdout.length > 0 && runOut.startsWith(run.stdout),
      'stdout carries the same lines, in order',
    );
    const events = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(events[0], {
      ts: events[0]?.ts,
      msg: '',
      group_id: 'single',
      run_id: 'run-1',
      event: {
        type: 'start',
        runenv: {
          plan: 'placebo',
          case: 'ok',
          run: 'run-1',
          params: { a: '1|2' },
          instances: 1,
          outputs_path: outputsPath,
          network: '127.1.0.0/16',
          group: 'single',
          group_instances: 1,
        },
      },
    });
    assert.equal(typeof events[0]?.ts, 'number');
    assert.deepEqual(events.at(-1)?.event, { type: 'finish', outcome: 'ok' });
  });
});

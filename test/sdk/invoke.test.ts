import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, it } from 'node:test';
import {
  dispatchTestCase,
  runTestCase,
  syncConnectMark,
  type RunTestCaseDeps,
  type TestCase,
} from '../../sdk/invoke.ts';
import { metricsFileName, parseMetricLine } from '../../core/contract/metrics.ts';
import type { SyncClientApi } from '../../sdk/lazy-sync-client.ts';
import type { RunEnv } from '../../sdk/runenv.ts';
import { parseEventLine, type InstanceEvent } from '../../core/contract/events.ts';
import { decideInstanceOutcome, pickTerminalEvent, type InstanceDecision } from '../../core/outcome.ts';
import { instanceEnv, repoRoot, scratchDir, spawnInstance, type InstanceRun } from './spawn-instance.ts';

const scratch = scratchDir('invoke');
after(() => scratch.cleanup());
let instanceCounter = 0;

interface Harness {
  deps: RunTestCaseDeps;
  events: () => Record<string, unknown>[];
  stderr: string[];
  crash: (error: unknown) => void;
  connections: RunEnv[];
}

function harness(
  overrides: Partial<RunTestCaseDeps> & { envOverrides?: Record<string, string> } = {},
): Harness {
  const lines: string[] = [];
  const stderr: string[] = [];
  const connections: RunEnv[] = [];
  let onCrash: (error: unknown) => void = () =>
    assert.fail('crash reported before runTestCase watched for it');
  const { envOverrides, ...depsOverrides } = overrides;
  const deps: RunTestCaseDeps = {
    env: instanceEnv({
      TEST_OUTPUTS_PATH: path.join(scratch.dir, `in-process-${++instanceCounter}`),
      ...envOverrides,
    }),
    connect: (runenv) => {
      connections.push(runenv);
      return Promise.reject(new Error('this test case was not expected to connect'));
    },
    watchCrashes: (callback) => {
      onCrash = callback;
    },
    writeStderr: (text) => stderr.push(text),
    runEnvOptions: { writeStdout: (line) => lines.push(line) },
    ...depsOverrides,
  };
  return {
    deps,
    events: () => lines.map((line) => (JSON.parse(line) as { event: Record<string, unknown> }).event),
    stderr,
    crash: (error) => onCrash(error),
    connections,
  };
}

function fakeClient(calls: string[], close: () => Promise<void> = async () => {}): SyncClientApi {
  const unused = (): never => assert.fail('not used by this test');
  return {
    signalEntry: async (state) => {
      calls.push(`signalEntry ${state}`);
      return 1;
    },
    barrier: async (state, target) => {
      calls.push(`barrier ${state} ${target}`);
    },
    signalAndWait: async () => unused(),
    publish: async () => unused(),
    subscribe: () => unused(),
    publishSubscribe: async () => unused(),
    close: async () => {
      calls.push('close');
      await close();
    },
  };
}

const eventTypes = (events: Record<string, unknown>[]): unknown[] =>
  events.map((event) => (event.type === 'finish' ? `finish:${String(event.outcome)}` : event.type));

describe('runTestCase', () => {
  it('records start and ok when the test case resolves, exit code 0, without connecting', async () => {
    const h = harness();
    const code = await runTestCase((runenv) => runenv.recordMessage('hi'), h.deps);
    assert.equal(code, 0);
    assert.deepEqual(eventTypes(h.events()), ['start', 'message', 'finish:ok']);
    assert.deepEqual(h.connections, []);
    assert.deepEqual(h.stderr, []);
  });

  it('records a failure with the error when the test case throws, exit code 1', async () => {
    const h = harness();
    const code = await runTestCase(async () => {
      throw new Error('peer 3 never answered');
    }, h.deps);
    assert.equal(code, 1);
    assert.deepEqual(h.events().at(-1), {
      type: 'finish',
      outcome: 'failure',
      error: 'peer 3 never answered',
    });
  });

  it('records a crash for an error that escapes the test case, exit code 1', async () => {
    const h = harness();
    const code = await runTestCase(() => {
      setImmediate(() => h.crash(new RangeError('escaped')));
      return new Promise<void>(() => {});
    }, h.deps);
    assert.equal(code, 1);
    const finish = h.events().at(-1);
    assert.equal(finish?.outcome, 'crash');
    assert.equal(finish?.error, 'escaped');
    assert.match(String(finish?.stacktrace), /^RangeError: escaped\n/);
  });

  it('keeps the recorded outcome when an error escapes after it, and says so on stderr', async () => {
    const h = harness();
    assert.equal(await runTestCase(() => {}, h.deps), 0);
    h.crash(new Error('late rejection'));
    assert.deepEqual(eventTypes(h.events()), ['start', 'finish:ok']);
    assert.match(h.stderr.join(''), /error after the outcome was recorded: Error: late rejection/);
  });

  it('keeps a failure the test case recorded itself before returning, and exits 1', async () => {
    const h = harness();
    const code = await runTestCase((runenv) => runenv.recordFailure(new Error('own verdict')), h.deps);
    assert.equal(code, 1);
    assert.deepEqual(eventTypes(h.events()), ['start', 'finish:failure']);
  });

  it('connects on first use with the run environment, once, and closes the client at the end', async () => {
    const calls: string[] = [];
    const h = harness({
      envOverrides: { TEST_RUN: 'run-42', SYNC_SERVICE_HOST: 'sync.test', SYNC_SERVICE_PORT: '7070' },
    });
    h.deps.connect = async (runenv) => {
      h.connections.push(runenv);
      return fakeClient(calls);
    };
    const code = await runTestCase(async (_runenv, client) => {
      calls.push('case started');
      await client.signalEntry('a');
      await client.barrier('a', 1);
    }, h.deps);
    assert.equal(code, 0);
    assert.deepEqual(calls, ['case started', 'signalEntry a', 'barrier a 1', 'close']);
    assert.equal(h.connections.length, 1);
    const runenv = h.connections[0];
    assert.deepEqual(
      [runenv?.testRun, runenv?.syncServiceHost, runenv?.syncServicePort],
      ['run-42', 'sync.test', 7070],
    );
  });

  it('marks when the sync connection opened and each barrier released it, as points in metrics.out', async () => {
    const calls: string[] = [];
    const h = harness();
    h.deps.connect = async () => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      return fakeClient(calls);
    };
    const before = Date.now();
    const code = await runTestCase(async (_runenv, client) => {
      await client.signalEntry('a');
      await client.barrier('all-ready', 1);
    }, h.deps);
    assert.equal(code, 0);
    const outputs = h.deps.env.TEST_OUTPUTS_PATH!;
    const points = readFileSync(path.join(outputs, metricsFileName), 'utf8')
      .trim()
      .split('\n')
      .map((line) => parseMetricLine(line)!);
    assert.deepEqual(
      points.map((point) => [point.name, point.type, point.unit]),
      [
        [syncConnectMark, 'point', 'ms'],
        ['barrier:all-ready', 'point', 'ms'],
      ],
    );
    const [connect, barrier] = points;
    assert.ok(connect!.value >= 15, `the connection took 20 ms, the point says ${connect!.value}`);
    assert.ok(connect!.ts / 1e6 >= before + 15 && connect!.ts <= barrier!.ts, 'ts is when it connected');
  });

  it('records a failure naming the connection error when the sync service cannot be reached', async () => {
    const h = harness();
    const code = await runTestCase(async (_runenv, client) => {
      await client.signalEntry('a');
    }, h.deps);
    assert.equal(code, 1);
    assert.deepEqual(h.events().at(-1), {
      type: 'finish',
      outcome: 'failure',
      error: 'this test case was not expected to connect',
    });
  });

  it('exits anyway when closing the sync client hangs', async () => {
    const calls: string[] = [];
    const h = harness({ closeTimeoutMs: 50 });
    h.deps.connect = async () => fakeClient(calls, () => new Promise(() => {}));
    const code = await runTestCase((_runenv, client) => client.barrier('a', 1), h.deps);
    assert.equal(code, 0);
    assert.match(h.stderr.join(''), /the sync client did not close within 50 ms; exiting anyway/);
  });

  it('names every bad variable on stderr and records nothing when the environment is invalid', async () => {
    const h = harness({ envOverrides: { TEST_RUN: '', TEST_INSTANCE_COUNT: 'many' } });
    const code = await runTestCase(() => assert.fail('must not run'), h.deps);
    assert.equal(code, 1);
    assert.deepEqual(h.events(), []);
    assert.match(
      h.stderr.join(''),
      /cannot start the test case: invalid instance environment \(2 problems\): TEST_RUN is not set; TEST_INSTANCE_COUNT must be a positive integer, got "many"/,
    );
  });
});

describe('dispatchTestCase', () => {
  const cases: Record<string, TestCase> = {
    first: (runenv) => runenv.recordMessage('first ran'),
    second: () => {},
  };

  it('runs the case TEST_CASE names', async () => {
    const h = harness({ envOverrides: { TEST_CASE: 'first' } });
    assert.equal(await runTestCase(dispatchTestCase(cases), h.deps), 0);
    assert.deepEqual(h.events()[1], { type: 'message', message: 'first ran' });
  });

  it('fails naming the known cases for an unknown one, including names of Object.prototype', async () => {
    for (const name of ['third', 'constructor']) {
      const h = harness({ envOverrides: { TEST_CASE: name } });
      assert.equal(await runTestCase(dispatchTestCase(cases), h.deps), 1);
      assert.deepEqual(h.events().at(-1), {
        type: 'finish',
        outcome: 'failure',
        error: `unknown test case "${name}"; this plan has: first, second`,
      });
    }
  });
});

/** What the runners would decide for this process: its terminal event and exit, through the shared rules. */
function decide(run: InstanceRun, exit: { timedOut?: boolean } = {}): InstanceDecision {
  const terminal = run.lines
    .map((line) => parseEventLine(line))
    .reduce<InstanceEvent | undefined>(
      (kept, event) => (event ? pickTerminalEvent(kept, event) : kept),
      undefined,
    );
  return decideInstanceOutcome(terminal, {
    exitCode: run.exitCode,
    signal: run.signal,
    timedOut: exit.timedOut ?? false,
    canceled: false,
  });
}

function runPlacebo(testCase: string, options: { stopWhen?: (line: string) => boolean } = {}) {
  const outputsPath = path.join(scratch.dir, `placebo-${testCase}`);
  const run = spawnInstance(
    path.join(repoRoot, 'plans', 'placebo', 'index.ts'),
    instanceEnv({ TEST_CASE: testCase, TEST_OUTPUTS_PATH: outputsPath }),
    options,
  );
  return { run, runOut: () => readFileSync(path.join(outputsPath, 'run.out'), 'utf8') };
}

const kinds = (run: InstanceRun): (string | undefined)[] =>
  run.lines.map((line) => parseEventLine(line)?.kind);

describe('the placebo plan, one real process per case', () => {
  it('ok: records success and exits 0', async () => {
    const placebo = runPlacebo('ok');
    const run = await placebo.run;
    assert.equal(run.exitCode, 0, run.stderr);
    assert.deepEqual(kinds(run), ['start', 'message', 'success']);
    assert.equal(placebo.runOut(), run.stdout);
    assert.deepEqual(decide(run), { outcome: 'success', reason: 'recorded success and exited with code 0' });
  });

  it('failure: records the error and exits 1', async () => {
    const run = await runPlacebo('failure').run;
    assert.equal(run.exitCode, 1, run.stderr);
    assert.deepEqual(kinds(run), ['start', 'failure']);
    assert.deepEqual(decide(run), { outcome: 'failure', reason: 'placebo failure' });
  });

  it('crash: records the uncaught error with its stack and exits 1', async () => {
    const run = await runPlacebo('crash').run;
    assert.equal(run.exitCode, 1, run.stderr);
    const crash = parseEventLine(run.lines.at(-1) ?? '');
    assert.equal(crash?.kind, 'crash');
    assert.match(crash?.kind === 'crash' ? (crash.stacktrace ?? '') : '', /Error: placebo crash\n\s+at /);
    assert.deepEqual(decide(run), { outcome: 'crash', reason: 'placebo crash' });
  });

  it('no-outcome: exits 0 having recorded only its start', async () => {
    const placebo = runPlacebo('no-outcome');
    const run = await placebo.run;
    assert.equal(run.exitCode, 0, run.stderr);
    assert.deepEqual(kinds(run), ['start']);
    assert.equal(placebo.runOut(), run.stdout);
    assert.deepEqual(decide(run), { outcome: 'no_outcome', reason: 'exited 0 without recording an outcome' });
  });

  it('stall: keeps running until killed', async () => {
    const run = await runPlacebo('stall', { stopWhen: (line) => parseEventLine(line)?.kind === 'start' }).run;
    assert.equal(run.signal, 'SIGTERM');
    assert.deepEqual(kinds(run), ['start']);
    assert.equal(decide(run, { timedOut: true }).outcome, 'timeout');
  });

  it('an unknown case: records a failure naming the plan cases', async () => {
    const run = await runPlacebo('nope').run;
    assert.equal(run.exitCode, 1);
    assert.deepEqual(decide(run), {
      outcome: 'failure',
      reason: 'unknown test case "nope"; this plan has: ok, failure, crash, stall, oom, sleep, no-outcome',
    });
  });
});

describe('invoke in a real process', () => {
  it('records a crash instead of exiting 0 when the test case awaits something that can never happen', async () => {
    const script = path.join(scratch.dir, 'never-settles.mts');
    const sdk = pathToFileURL(path.join(repoRoot, 'sdk', 'index.ts')).href;
    writeFileSync(
      script,
      `import { invoke } from ${JSON.stringify(sdk)};\nawait invoke(() => new Promise<void>(() => {}));\n`,
    );
    const run = await spawnInstance(
      script,
      instanceEnv({ TEST_OUTPUTS_PATH: path.join(scratch.dir, 'never') }),
    );
    assert.equal(run.exitCode, 1, run.stderr);
    assert.equal(decide(run).outcome, 'crash');
    assert.match(decide(run).reason, /^the test case never finished/);
  });

  it('exits 1 naming the missing variables when started outside a runner', async () => {
    const run = await spawnInstance(path.join(repoRoot, 'plans', 'placebo', 'index.ts'), {});
    assert.equal(run.exitCode, 1);
    assert.deepEqual(run.lines, []);
    assert.match(
      run.stderr,
      /invalid instance environment \(7 problems\): TEST_PLAN is not set; TEST_CASE is not set/,
    );
  });
});

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { parseRunEnv, parseRunParams, RunEnvError, TestParamError, type RunEnv } from '../../sdk/runenv.ts';
import { instanceEnv, scratchDir } from './spawn-instance.ts';

const scratch = scratchDir('runenv');
after(() => scratch.cleanup());

const fullEnv = instanceEnv({
  TEST_PLAN: 'example',
  TEST_CASE: 'sync',
  TEST_RUN: 'e217c3a8a089',
  TEST_INSTANCE_COUNT: '10',
  TEST_GROUP_ID: 'miners',
  TEST_GROUP_INSTANCE_COUNT: '4',
  TEST_INSTANCE_PARAMS: 'peers=3|mode=fast',
  TEST_INSTANCE_ROLE: 'miner',
  TEST_REPO: 'github.com/acme/p2p',
  TEST_BRANCH: 'main',
  TEST_TAG: 'v1',
  TEST_OUTPUTS_PATH: path.join(scratch.dir, 'outputs'),
  TEST_TEMP_PATH: path.join(scratch.dir, 'temp'),
  TEST_SIDECAR: 'true',
  TEST_SUBNET: '16.0.0.0/16',
  TEST_START_TIME: '2020-05-06T12:30:59Z',
  TEST_DISABLE_METRICS: 'true',
  SYNC_SERVICE_HOST: 'sync.local',
  SYNC_SERVICE_PORT: '6060',
});

function runenvWith(params: Record<string, string>): RunEnv {
  return parseRunEnv(
    { ...fullEnv, TEST_INSTANCE_PARAMS: '', TEST_INSTANCE_PARAMS_JSON: JSON.stringify(params) },
    { writeStdout: () => {} },
  );
}

describe('parseRunParams', () => {
  it('reads every variable of CONTRACT §2', () => {
    assert.deepEqual(parseRunParams(fullEnv), {
      testPlan: 'example',
      testCase: 'sync',
      testRun: 'e217c3a8a089',
      testInstanceCount: 10,
      testGroupId: 'miners',
      testGroupInstanceCount: 4,
      testInstanceParams: { peers: '3', mode: 'fast' },
      testInstanceRole: 'miner',
      testRepo: 'github.com/acme/p2p',
      testBranch: 'main',
      testTag: 'v1',
      testOutputsPath: path.join(scratch.dir, 'outputs'),
      testTempPath: path.join(scratch.dir, 'temp'),
      testSidecar: true,
      testSubnet: '16.0.0.0/16',
      testStartTime: new Date('2020-05-06T12:30:59Z'),
      testDisableMetrics: true,
      syncServiceHost: 'sync.local',
      syncServicePort: 6060,
    });
  });

  it('defaults the optional ones', () => {
    const now = new Date('2021-01-02T03:04:05Z');
    const params = parseRunParams(
      {
        TEST_PLAN: 'p',
        TEST_CASE: 'c',
        TEST_RUN: 'r',
        TEST_INSTANCE_COUNT: '1',
        TEST_GROUP_ID: 'g',
        TEST_GROUP_INSTANCE_COUNT: '1',
        TEST_OUTPUTS_PATH: '/outputs',
      },
      () => now,
    );
    assert.deepEqual(params.testInstanceParams, {});
    assert.equal(params.testSidecar, false);
    assert.equal(params.testDisableMetrics, false);
    assert.equal(params.testSubnet, '');
    assert.equal(params.testStartTime, now);
    assert.equal(params.syncServiceHost, 'testground-sync-service');
    assert.equal(params.syncServicePort, 5050);
    assert.ok(params.testTempPath.length > 0);
  });

  it('prefers TEST_INSTANCE_PARAMS_JSON, whose values may hold | and =', () => {
    const params = parseRunParams({
      ...fullEnv,
      TEST_INSTANCE_PARAMS: 'ignored=1',
      TEST_INSTANCE_PARAMS_JSON: JSON.stringify({ query: 'a=b|c', empty: '' }),
    });
    assert.deepEqual(params.testInstanceParams, { query: 'a=b|c', empty: '' });
  });

  it('keeps = inside packed values and allows empty ones', () => {
    const params = parseRunParams({ ...fullEnv, TEST_INSTANCE_PARAMS: 'expr=a=b|empty=' });
    assert.deepEqual(params.testInstanceParams, { expr: 'a=b', empty: '' });
  });

  it('lists every missing and invalid variable in one error', () => {
    const env = {
      ...fullEnv,
      TEST_RUN: '',
      TEST_GROUP_ID: undefined,
      TEST_INSTANCE_COUNT: 'ten',
      TEST_GROUP_INSTANCE_COUNT: '0',
      TEST_SIDECAR: 'yes',
      TEST_SUBNET: 'not-a-cidr',
      TEST_START_TIME: 'yesterday',
      SYNC_SERVICE_PORT: '70000',
      TEST_INSTANCE_PARAMS_JSON: '{"n": 3}',
    };
    assert.throws(
      () => parseRunParams(env),
      (error: unknown) => {
        assert.ok(error instanceof RunEnvError);
        assert.equal(error.code, 'runenv_invalid');
        assert.deepEqual(error.problems, [
          'TEST_RUN is not set',
          'TEST_INSTANCE_COUNT must be a positive integer, got "ten"',
          'TEST_GROUP_ID is not set',
          'TEST_GROUP_INSTANCE_COUNT must be a positive integer, got "0"',
          'TEST_INSTANCE_PARAMS_JSON.n must be a string, got 3',
          'TEST_SIDECAR must be "true" or "false", got "yes"',
          'TEST_SUBNET must be a CIDR like 127.1.0.0/16, got "not-a-cidr"',
          'TEST_START_TIME must be an RFC 3339 time, got "yesterday"',
          'SYNC_SERVICE_PORT must be a port number from 1 to 65535, got "70000"',
        ]);
        assert.match(
          error.message,
          /^invalid instance environment \(9 problems\): TEST_RUN is not set; TEST_INSTANCE_COUNT must be/,
        );
        return true;
      },
    );
  });

  it('rejects a group larger than the run and malformed params', () => {
    assert.throws(() => parseRunParams({ ...fullEnv, TEST_GROUP_INSTANCE_COUNT: '11' }), {
      message: /TEST_GROUP_INSTANCE_COUNT \(11\) must not exceed TEST_INSTANCE_COUNT \(10\)/,
    });
    assert.throws(() => parseRunParams({ ...fullEnv, TEST_INSTANCE_PARAMS: 'a=1|oops' }), {
      message: /TEST_INSTANCE_PARAMS entry "oops" is not name=value/,
    });
    assert.throws(() => parseRunParams({ ...fullEnv, TEST_INSTANCE_PARAMS_JSON: '[1]' }), {
      message: /TEST_INSTANCE_PARAMS_JSON must be a JSON object of strings, got \[1\]/,
    });
    assert.throws(() => parseRunParams({ ...fullEnv, TEST_INSTANCE_PARAMS_JSON: '{' }), {
      message: /TEST_INSTANCE_PARAMS_JSON is not valid JSON/,
    });
  });
});

describe('RunEnv params', () => {
  const runenv = runenvWith({
    name: 'alice',
    count: '42',
    negative: '-7',
    ratio: '0.25',
    big: '1e3',
    on: 'true',
    off: 'F',
    config: '{"peers":[1,2]}',
    word: 'abc',
    fraction: '1.5',
    empty: '',
  });

  it('reads typed values', () => {
    assert.equal(runenv.stringParam('name'), 'alice');
    assert.equal(runenv.stringParam('empty'), '');
    assert.equal(runenv.intParam('count'), 42);
    assert.equal(runenv.intParam('negative'), -7);
    assert.equal(runenv.floatParam('ratio'), 0.25);
    assert.equal(runenv.floatParam('big'), 1000);
    assert.equal(runenv.floatParam('count'), 42);
    assert.equal(runenv.booleanParam('on'), true);
    assert.equal(runenv.booleanParam('off'), false);
    assert.deepEqual(runenv.jsonParam<{ peers: number[] }>('config'), { peers: [1, 2] });
    assert.equal(runenv.hasParam('name'), true);
    assert.equal(runenv.hasParam('toString'), false);
  });

  it('names the param and its value when it is missing or of the wrong type', () => {
    const cases: [() => unknown, RegExp][] = [
      [
        () => runenv.stringParam('missing'),
        /^test param "missing" is not set \(set params: name, count, .*empty\)/,
      ],
      [() => runenv.intParam('constructor'), /^test param "constructor" is not set/],
      [() => runenv.intParam('word'), /^test param "word" must be an integer, got "abc"$/],
      [() => runenv.intParam('fraction'), /^test param "fraction" must be an integer, got "1.5"$/],
      [() => runenv.intParam('empty'), /^test param "empty" must be an integer, got ""$/],
      [() => runenv.floatParam('word'), /^test param "word" must be a number, got "abc"$/],
      [() => runenv.floatParam('empty'), /^test param "empty" must be a number, got ""$/],
      [
        () => runenv.booleanParam('word'),
        /^test param "word" must be a boolean \(true or false\), got "abc"$/,
      ],
      [() => runenv.jsonParam('word'), /^test param "word" must be JSON \(.+\), got "abc"$/],
    ];
    for (const [read, message] of cases) {
      assert.throws(read, (error: unknown) => {
        assert.ok(error instanceof TestParamError);
        assert.equal(error.code, 'test_param_invalid');
        assert.match(error.message, message);
        return true;
      });
    }
  });
});

describe('RunEnv duration and size params', () => {
  const runenv = runenvWith({
    timeout: '1h30m',
    short: '250ms',
    tiny: '1.5us',
    zero: '0s',
    memory: '512MiB',
    disk: '64MB',
    packet: '1500',
    half: '1.5GiB',
    loose: ' 100k ',
    bare: '10',
    negative: '-5s',
    word: 'soon',
    spaced: ' 10s',
    fractionalBytes: '1.5',
    unknownUnit: '3parsecs',
  });

  it('reads a duration in milliseconds, as the manifest and compositions do', () => {
    assert.equal(runenv.durationParam('timeout'), 5_400_000);
    assert.equal(runenv.durationParam('short'), 250);
    assert.equal(runenv.durationParam('tiny'), 0.0015);
    assert.equal(runenv.durationParam('zero'), 0);
  });

  it('reads a size in bytes, decimal and binary units apart', () => {
    assert.equal(runenv.sizeParam('memory'), 536_870_912);
    assert.equal(runenv.sizeParam('disk'), 64_000_000);
    assert.equal(runenv.sizeParam('packet'), 1500);
    assert.equal(runenv.sizeParam('half'), 1_610_612_736);
    assert.equal(runenv.sizeParam('loose'), 100_000);
  });

  it('names the param, its value and the accepted form when it does not fit', () => {
    const cases: [() => unknown, string, RegExp][] = [
      [
        () => runenv.durationParam('bare'),
        'bare',
        /^test param "bare" must be a duration, got "10"; use a number with a unit, like "90s"/,
      ],
      [
        () => runenv.durationParam('negative'),
        'negative',
        /^test param "negative" must be a duration, got "-5s"; /,
      ],
      [
        () => runenv.durationParam('word'),
        'word',
        /^test param "word" must be a duration, got "soon"; .*units: ns, us, ms, s, m, h/,
      ],
      [
        () => runenv.durationParam('spaced'),
        'spaced',
        /^test param "spaced" must be a duration, got " 10s"; /,
      ],
      [
        () => runenv.durationParam('memory'),
        'memory',
        /^test param "memory" must be a duration, got "512MiB"; /,
      ],
      [
        () => runenv.sizeParam('word'),
        'word',
        /^test param "word" must be a byte size, got "soon"; use a whole number of bytes or a number with a unit, like "512MiB"/,
      ],
      [
        () => runenv.sizeParam('fractionalBytes'),
        'fractionalBytes',
        /^test param "fractionalBytes" must be a byte size, got "1.5"; /,
      ],
      [
        () => runenv.sizeParam('unknownUnit'),
        'unknownUnit',
        /^test param "unknownUnit" must be a byte size, got "3parsecs"; .*KiB\/MiB\/GiB powers of 1024/,
      ],
      [() => runenv.sizeParam('short'), 'short', /^test param "short" must be a byte size, got "250ms"; /],
    ];
    for (const [read, param, message] of cases) {
      assert.throws(read, (error: unknown) => {
        assert.ok(error instanceof TestParamError);
        assert.equal(error.code, 'test_param_invalid');
        assert.equal(error.param, param);
        assert.equal(error.value, runenv.testInstanceParams[param]);
        assert.match(error.message, message);
        return true;
      });
    }
  });

  it('names a missing param like the other typed params', () => {
    assert.throws(() => runenv.durationParam('missing'), /TestParamError: test param "missing" is not set/);
    assert.throws(() => runenv.sizeParam('missing'), /TestParamError: test param "missing" is not set/);
  });
});

describe('RunEnv events', () => {
  it('writes the start event with the run environment, then keeps only the first outcome', () => {
    const lines: string[] = [];
    let now = 1_588_769_459_341_303_000n;
    const runenv = parseRunEnv(fullEnv, {
      writeStdout: (line) => lines.push(line),
      clock: () => (now += 1n),
    });
    runenv.recordStart();
    runenv.recordStageStart('setup');
    runenv.recordStageEnd('setup');
    runenv.recordMessage('hello');
    assert.equal(runenv.recordedOutcome, undefined);
    runenv.recordFailure(new Error('bad peer'));
    runenv.recordSuccess();
    runenv.recordCrash(new Error('late'));
    assert.equal(runenv.recordedOutcome, 'failure');

    const prefix = '"msg":"","group_id":"miners","run_id":"e217c3a8a089"';
    assert.deepEqual(lines, [
      `{"ts":1588769459341303001,${prefix},"event":{"type":"start","runenv":{"plan":"example","case":"sync","run":"e217c3a8a089","params":{"peers":"3","mode":"fast"},"instances":10,"outputs_path":"${fullEnv.TEST_OUTPUTS_PATH}","network":"16.0.0.0/16","group":"miners","group_instances":4}}}\n`,
      `{"ts":1588769459341303002,${prefix},"event":{"type":"stage_start","name":"setup","group":"miners"}}\n`,
      `{"ts":1588769459341303003,${prefix},"event":{"type":"stage_end","name":"setup","group":"miners"}}\n`,
      `{"ts":1588769459341303004,${prefix},"event":{"type":"message","message":"hello"}}\n`,
      `{"ts":1588769459341303005,${prefix},"event":{"type":"finish","outcome":"failure","error":"bad peer"}}\n`,
    ]);
    assert.equal(readFileSync(path.join(fullEnv.TEST_OUTPUTS_PATH ?? '', 'run.out'), 'utf8'), lines.join(''));
  });
});

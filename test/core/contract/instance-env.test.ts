import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  encodeInstanceEnv,
  parseInstanceEnv,
  parseSyncServiceEnv,
  RunEnvError,
  type InstanceEnvironment,
} from '../../../core/contract/instance-env.ts';
import { parseRunEnv, parseRunParams } from '../../../sdk/runenv.ts';

/** CONTRACT §2: every runner sets all of these (LOG_LEVEL is optional), plus the JSON form of the params. */
const contractVariables = [
  'TEST_PLAN',
  'TEST_CASE',
  'TEST_RUN',
  'TEST_INSTANCE_COUNT',
  'TEST_GROUP_ID',
  'TEST_GROUP_INSTANCE_COUNT',
  'TEST_INSTANCE_PARAMS',
  'TEST_INSTANCE_PARAMS_JSON',
  'TEST_INSTANCE_ROLE',
  'TEST_REPO',
  'TEST_BRANCH',
  'TEST_TAG',
  'TEST_OUTPUTS_PATH',
  'TEST_TEMP_PATH',
  'TEST_SIDECAR',
  'TEST_SUBNET',
  'TEST_START_TIME',
  'TEST_DISABLE_METRICS',
  'SYNC_SERVICE_HOST',
  'SYNC_SERVICE_PORT',
];

/** Variables whose value "may be empty" in CONTRACT §2; every other one must hold something. */
const mayBeEmpty = new Set([
  'TEST_INSTANCE_PARAMS',
  'TEST_INSTANCE_ROLE',
  'TEST_REPO',
  'TEST_BRANCH',
  'TEST_TAG',
]);

const localExec: InstanceEnvironment = {
  testPlan: 'example',
  testCase: 'sync',
  testRun: 'd1b2c3',
  testInstanceCount: 10,
  testGroupId: 'single',
  testGroupInstanceCount: 10,
  testInstanceParams: {},
  testInstanceRole: '',
  testRepo: '',
  testBranch: '',
  testTag: '',
  testOutputsPath: '/home/u/.testground/outputs/local:exec/example/d1b2c3/single/0',
  testTempPath: '/tmp/tg-d1b2c3/single/0',
  testSidecar: false,
  testSubnet: '127.1.0.0/16',
  testStartTime: new Date('2024-05-06T12:30:59.123Z'),
  testDisableMetrics: false,
  syncServiceHost: '127.0.0.1',
  syncServicePort: 40_123,
};

const localDocker: InstanceEnvironment = {
  testPlan: 'libp2p-ping',
  testCase: 'ping',
  testRun: 'e217c3a8a089',
  testInstanceCount: 7,
  testGroupId: 'dialers',
  testGroupInstanceCount: 3,
  testInstanceParams: {
    query: 'a=b|c=d',
    pipes: '|||',
    equals: '==',
    empty: '',
    json: '{"peers":[1,2],"mode":"fast"}',
    unicode: 'ünïcode ✓',
    'dotted.name': 'x',
  },
  testInstanceRole: 'dialer',
  testRepo: 'github.com/acme/p2p',
  testBranch: 'main',
  testTag: 'v1.2.3',
  testOutputsPath: '/outputs',
  testTempPath: '/temp',
  testSidecar: true,
  testSubnet: '10.192.16.0/20',
  testStartTime: new Date('2020-05-06T12:30:59.000Z'),
  testDisableMetrics: true,
  syncServiceHost: 'testground-sync-service',
  syncServicePort: 5050,
};

const edges: InstanceEnvironment = {
  ...localExec,
  testPlan: 'a-b-c',
  testCase: 'case with spaces',
  testRun: 'r',
  testInstanceCount: 1,
  testGroupInstanceCount: 1,
  testInstanceParams: { only: '=leading and trailing|' },
  testSubnet: 'fd00::/64',
  syncServiceHost: '::1',
  syncServicePort: 65_535,
};

const cases: [string, InstanceEnvironment][] = [
  ['local:exec, no params', localExec],
  ['local:docker, params holding | and =', localDocker],
  ['edges: one instance, IPv6, highest port', edges],
];

describe('encodeInstanceEnv → the SDK', () => {
  for (const [name, environment] of cases) {
    it(`parseRunParams gives back what was encoded (${name})`, () => {
      const env = encodeInstanceEnv(environment);
      // Any fallback for time or temp dir would show up as a difference.
      const params = parseRunParams(env, () => new Date(0));
      assert.deepEqual(params, environment);
    });

    it(`parseRunEnv gives back what was encoded (${name})`, () => {
      const runenv = parseRunEnv(encodeInstanceEnv(environment), { writeStdout: () => {} });
      const fields = Object.fromEntries(
        Object.keys(environment).map((key) => [key, runenv[key as keyof InstanceEnvironment]]),
      );
      assert.deepEqual(fields, environment);
      for (const [param, value] of Object.entries(environment.testInstanceParams)) {
        assert.equal(runenv.stringParam(param), value, param);
      }
    });

    it(`sets every variable of CONTRACT §2 (${name})`, () => {
      const env = encodeInstanceEnv(environment);
      assert.deepEqual(Object.keys(env).sort(), [...contractVariables].sort());
      for (const variable of contractVariables) {
        assert.equal(typeof env[variable], 'string', variable);
        if (!mayBeEmpty.has(variable)) assert.notEqual(env[variable], '', variable);
      }
    });

    it(`the sync client reads the same service and scope (${name})`, () => {
      assert.deepEqual(parseSyncServiceEnv(encodeInstanceEnv(environment)), {
        testPlan: environment.testPlan,
        testCase: environment.testCase,
        testRun: environment.testRun,
        syncServiceHost: environment.syncServiceHost,
        syncServicePort: environment.syncServicePort,
      });
    });
  }

  it('writes the packed form the original SDKs read, the same params where values allow it', () => {
    const environment = { ...localExec, testInstanceParams: { peers: '3', mode: 'fast', empty: '' } };
    const env = encodeInstanceEnv(environment);
    assert.equal(env.TEST_INSTANCE_PARAMS, 'peers=3|mode=fast|empty=');
    const { TEST_INSTANCE_PARAMS_JSON: _json, ...packedOnly } = env;
    assert.deepEqual(parseInstanceEnv(packedOnly).testInstanceParams, environment.testInstanceParams);
  });

  it('values holding | or = survive only in the JSON form, which the SDK prefers', () => {
    const env = encodeInstanceEnv(localDocker);
    assert.deepEqual(JSON.parse(env.TEST_INSTANCE_PARAMS_JSON ?? ''), localDocker.testInstanceParams);
    const { TEST_INSTANCE_PARAMS_JSON: _json, ...packedOnly } = env;
    assert.notDeepEqual(parseInstanceEnv(packedOnly).testInstanceParams, localDocker.testInstanceParams);
  });

  it('refuses an encoded environment the contract would refuse', () => {
    const env = encodeInstanceEnv({ ...localExec, testGroupInstanceCount: 11 });
    assert.throws(() => parseRunParams(env), RunEnvError);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { instanceEnv } from '../../runners/instance-env.ts';
import type { ResolvedRun } from '../../core/run.ts';

describe('instance environment (CONTRACT §2)', () => {
  const run: ResolvedRun = {
    id: 'default',
    plan: 'example',
    testCase: 'sync',
    builder: 'exec:node',
    runner: 'local:exec',
    totalInstances: 5,
    runConfig: {},
    timeoutMs: 600_000,
    disableMetrics: false,
    groups: [],
  };

  it('sets every variable the SDKs read, params both packed and as JSON', () => {
    const env = instanceEnv({
      runId: 'r1',
      run,
      group: { id: 'peers', instances: 3, testParams: { size: '10', note: 'a=b|c' } },
      outputsPath: '/out',
      tempPath: '/tmp/x',
      sidecar: false,
      subnet: '127.1.0.0/16',
      syncServiceHost: '127.0.0.1',
      syncServicePort: 4242,
      startTime: new Date('2026-01-02T03:04:05Z'),
    });
    assert.deepEqual(env, {
      TEST_PLAN: 'example',
      TEST_CASE: 'sync',
      TEST_RUN: 'r1',
      TEST_INSTANCE_COUNT: '5',
      TEST_GROUP_ID: 'peers',
      TEST_GROUP_INSTANCE_COUNT: '3',
      TEST_INSTANCE_PARAMS: 'size=10|note=a=b|c',
      TEST_INSTANCE_PARAMS_JSON: '{"size":"10","note":"a=b|c"}',
      TEST_INSTANCE_ROLE: '',
      TEST_REPO: '',
      TEST_BRANCH: '',
      TEST_TAG: '',
      TEST_OUTPUTS_PATH: '/out',
      TEST_TEMP_PATH: '/tmp/x',
      TEST_SIDECAR: 'false',
      TEST_SUBNET: '127.1.0.0/16',
      TEST_START_TIME: '2026-01-02T03:04:05.000Z',
      TEST_DISABLE_METRICS: 'false',
      SYNC_SERVICE_HOST: '127.0.0.1',
      SYNC_SERVICE_PORT: '4242',
    });
  });
});

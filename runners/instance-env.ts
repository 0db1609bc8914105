import type { ResolvedRun } from '../daemon/composition.ts';

export interface InstanceEnvInput {
  runId: string;
  run: ResolvedRun;
  group: { id: string; instances: number; testParams: Record<string, string> };
  outputsPath: string;
  tempPath: string;
  sidecar: boolean;
  subnet: string;
  syncServiceHost: string;
  syncServicePort: number;
  startTime: Date;
}

/** The environment every runner gives an instance (CONTRACT §2). */
export function instanceEnv(input: InstanceEnvInput): Record<string, string> {
  const params = input.group.testParams;
  return {
    TEST_PLAN: input.run.plan,
    TEST_CASE: input.run.testCase,
    TEST_RUN: input.runId,
    TEST_INSTANCE_COUNT: String(input.run.totalInstances),
    TEST_GROUP_ID: input.group.id,
    TEST_GROUP_INSTANCE_COUNT: String(input.group.instances),
    TEST_INSTANCE_PARAMS: Object.entries(params)
      .map(([key, value]) => `${key}=${value}`)
      .join('|'),
    TEST_INSTANCE_PARAMS_JSON: JSON.stringify(params),
    TEST_INSTANCE_ROLE: '',
    TEST_REPO: '',
    TEST_BRANCH: '',
    TEST_TAG: '',
    TEST_OUTPUTS_PATH: input.outputsPath,
    TEST_TEMP_PATH: input.tempPath,
    TEST_SIDECAR: String(input.sidecar),
    TEST_SUBNET: input.subnet,
    TEST_START_TIME: input.startTime.toISOString(),
    TEST_DISABLE_METRICS: String(input.run.disableMetrics),
    SYNC_SERVICE_HOST: input.syncServiceHost,
    SYNC_SERVICE_PORT: String(input.syncServicePort),
  };
}

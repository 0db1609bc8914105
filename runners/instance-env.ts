import { encodeInstanceEnv } from '../core/contract/instance-env.ts';
import type { ResolvedGroup, ResolvedRun } from '../core/run.ts';

export interface InstanceEnvInput {
  runId: string;
  run: ResolvedRun;
  group: Pick<ResolvedGroup, 'id' | 'instances' | 'testParams'>;
  outputsPath: string;
  tempPath: string;
  sidecar: boolean;
  subnet: string;
  syncServiceHost: string;
  syncServicePort: number;
  startTime: Date;
}

/** The CONTRACT §2 variables of one instance of `run`, as every runner sets them. */
export function instanceEnv(input: InstanceEnvInput): Record<string, string> {
  return encodeInstanceEnv({
    testPlan: input.run.plan,
    testCase: input.run.testCase,
    testRun: input.runId,
    testInstanceCount: input.run.totalInstances,
    testGroupId: input.group.id,
    testGroupInstanceCount: input.group.instances,
    testInstanceParams: input.group.testParams,
    testInstanceRole: '',
    testRepo: '',
    testBranch: '',
    testTag: '',
    testOutputsPath: input.outputsPath,
    testTempPath: input.tempPath,
    testSidecar: input.sidecar,
    testSubnet: input.subnet,
    testStartTime: input.startTime,
    testDisableMetrics: input.run.disableMetrics,
    syncServiceHost: input.syncServiceHost,
    syncServicePort: input.syncServicePort,
  });
}

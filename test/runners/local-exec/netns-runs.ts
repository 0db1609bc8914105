/**
 * What the namespace tests of local:exec share: the netns-check plan built once by the real exec:node
 * builder, and a run of it through a LocalExecRunner.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import type { Artifact } from '../../../core/artifact.ts';
import type { ResolvedGroup, ResolvedRun } from '../../../core/run.ts';
import { ExecNodeBuilder } from '../../../builders/exec-node.ts';
import type { RunInput } from '../../../runners/runner.ts';
import { MemoryTaskLog } from '../../helpers/memory-task-log.ts';

export const repoRoot = path.resolve(import.meta.dirname, '../../..');
export const netnsPlanDir = path.join(import.meta.dirname, 'netns-plan');

/** Bundles the netns-check plan (with our SDK) into `cacheDir`. */
export async function buildNetnsPlan(cacheDir: string): Promise<Artifact> {
  const builder = new ExecNodeBuilder({ cacheDir, sdkEntry: path.join(repoRoot, 'sdk', 'index.ts') });
  return builder.build({
    planDir: netnsPlanDir,
    planName: 'netns-check',
    buildConfig: {},
    log: new MemoryTaskLog(),
    signal: new AbortController().signal,
  });
}

export const silentLogger = pino({ level: 'silent' });

/** A run of `testCase` with groups of the given sizes, in the netns mode unless `runConfig` says otherwise. */
export async function netnsRunInput(options: {
  runId: string;
  testCase: string;
  groups: Record<string, number>;
  bundle: Artifact;
  scratch: string;
  runConfig?: Record<string, unknown>;
  testParams?: Record<string, string>;
  timeoutMs?: number;
  signal?: AbortSignal;
}): Promise<RunInput & { log: MemoryTaskLog }> {
  const groups: ResolvedGroup[] = Object.entries(options.groups).map(([id, instances]) => ({
    id,
    instances,
    builder: 'exec:node',
    buildConfig: {},
    resources: {},
    testParams: options.testParams ?? {},
    dependencies: [],
  }));
  const run: ResolvedRun = {
    id: 'default',
    plan: 'netns-check',
    testCase: options.testCase,
    builder: 'exec:node',
    runner: 'local:exec',
    totalInstances: groups.reduce((sum, group) => sum + group.instances, 0),
    runConfig: options.runConfig ?? { network: 'netns' },
    timeoutMs: options.timeoutMs ?? 60_000,
    disableMetrics: true,
    groups,
  };
  const tempDir = path.join(options.scratch, 'temp', options.runId);
  await mkdir(tempDir, { recursive: true });
  return {
    runId: options.runId,
    run,
    artifacts: new Map(groups.map((group) => [group.id, options.bundle])),
    outputsDir: path.join(options.scratch, 'outputs', options.runId),
    tempDir,
    startTime: new Date(),
    log: new MemoryTaskLog(),
    signal: options.signal ?? new AbortController().signal,
  };
}

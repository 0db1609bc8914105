import path from 'node:path';
import type { LogLine, Submitted, TaskView } from '../../api/schemas.ts';
import type { ApiClient } from '../api-client.ts';
import { readCompositionFile } from '../composition-file.ts';
import { exitCodeForOutcome } from '../exit-codes.ts';
import { formatLogLine } from '../log-printer.ts';
import { packPlanDirectory } from '../pack-plan.ts';
import { locatePlan, readPlanName } from '../plan-locator.ts';
import { singleRunComposition } from '../single-composition.ts';
import { isSingleRun, printOutcome, type Output } from '../task-printer.ts';

export type { Output } from '../task-printer.ts';

export interface RunSingleOptions {
  plan: string;
  testcase: string;
  builder?: string;
  runner?: string;
  instances: number;
  testParam: Record<string, string>;
  buildConfig: Record<string, string>;
  runConfig: Record<string, string>;
  timeout?: string;
  /** Start from this artifact instead of building (`--use-build`). */
  useBuild?: string;
}

export interface WaitOptions {
  wait?: boolean;
  collect?: boolean;
  collectFile?: string;
}

/** `testground run single`: a composition with one group named `single`. */
export async function runSingle(
  client: ApiClient,
  options: RunSingleOptions & WaitOptions,
  output: Output,
): Promise<number> {
  const planDir = locatePlan(options.plan);
  const runConfig: Record<string, string> = {
    ...options.runConfig,
    ...(options.timeout ? { timeout: options.timeout } : {}),
  };
  const composition = singleRunComposition({
    name: `${options.plan}-${options.testcase}`,
    plan: await readPlanName(planDir),
    testCase: options.testcase,
    instances: options.instances,
    testParams: options.testParam,
    buildConfig: options.buildConfig,
    runConfig,
    ...(options.builder ? { builder: options.builder } : {}),
    ...(options.runner ? { runner: options.runner } : {}),
    ...(options.useBuild ? { artifact: options.useBuild } : {}),
  });
  const archive = await packPlanDirectory(planDir);
  const submitted = await client.submitRun(JSON.stringify(composition), archive);
  return followRun(client, submitted, options, output);
}

/** `testground run composition -f comp.toml`: the plan is found by the composition's `global.plan`. */
export async function runComposition(
  client: ApiClient,
  options: { file: string; plan?: string; runIds?: string[] } & WaitOptions,
  output: Output,
): Promise<number> {
  const composition = await readCompositionFile(options.file);
  const planName = options.plan ?? composition.document.global?.plan;
  if (typeof planName !== 'string')
    throw new Error(`${options.file} has no global.plan; name the plan there or with --plan`);
  const archive = await packPlanDirectory(locatePlan(planName));
  const submitted = await client.submitRun(
    composition.text,
    archive,
    options.runIds ? { runIds: options.runIds } : {},
  );
  return followRun(client, submitted, options, output);
}

/** Says what was queued and its warnings; with --wait, follows it, prints how it ended and exits by it. */
async function followRun(
  client: ApiClient,
  submitted: Submitted,
  options: WaitOptions,
  output: Output,
): Promise<number> {
  const runIds = submitted.runs.map((run) => run.id);
  output.out(
    runIds.length === 1
      ? `run ${submitted.run_id} queued (task ${submitted.task_id})`
      : `runs ${runIds.join(', ')} queued (task ${submitted.task_id})`,
  );
  printWarnings(submitted, output);
  if (!options.wait && !options.collect) {
    output.out(`follow it with: testground logs -t ${submitted.task_id} -f`);
    return 0;
  }
  const task = await followToEnd(client, submitted, output);
  printOutcome(task, output);
  if (options.collect) {
    // A task of one `default` run is that run, so the archive keeps the run's name.
    const name = isSingleRun(task) ? task.run_id : task.id;
    const file = path.resolve(options.collectFile ?? `${name}.tgz`);
    try {
      await client.downloadOutputs(task.id, file);
      output.out(`outputs: ${file}`);
    } catch (error) {
      output.err(`could not collect the outputs: ${(error as Error).message}`);
    }
  }
  return exitCodeForOutcome(task.outcome);
}

/** Each warning once, on stderr; the same lines in the task log are not printed again. */
export function printWarnings(submitted: Submitted, output: Output): void {
  for (const warning of submitted.warnings) output.err(`warning: ${warning.path}: ${warning.message}`);
}

/** Prints the task's log until it ends (leaving out the warnings already printed) and returns the task. */
export async function followToEnd(
  client: ApiClient,
  submitted: Submitted,
  output: Output,
): Promise<TaskView> {
  const printed = new Set(submitted.warnings.map((warning) => `${warning.path}: ${warning.message}`));
  const isPrintedWarning = (line: LogLine): boolean =>
    line.kind === 'log' && line.level === 'warn' && printed.has(line.msg);
  await client.readLogs(
    submitted.task_id,
    (line) => {
      if (!isPrintedWarning(line)) output.out(formatLogLine(line));
    },
    { follow: true },
  );
  return client.getTask(submitted.task_id);
}

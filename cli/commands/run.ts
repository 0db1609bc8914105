import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { formatGroupSummary } from '../../core/outcome.ts';
import type { TaskView } from '../../api/schemas.ts';
import type { ApiClient } from '../api-client.ts';
import { exitCodeForOutcome } from '../exit-codes.ts';
import { formatLogLine } from '../log-printer.ts';
import { packPlanDirectory } from '../pack-plan.ts';
import { locatePlan, readPlanName } from '../plan-locator.ts';
import { singleRunComposition } from '../single-composition.ts';

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
}

export interface WaitOptions {
  wait?: boolean;
  collect?: boolean;
  collectFile?: string;
}

export interface Output {
  out: (text: string) => void;
  err: (text: string) => void;
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
  });
  return submitAndFollow(client, JSON.stringify(composition), planDir, options, output);
}

/** `testground run composition -f comp.toml`: the plan is found by the composition's `global.plan`. */
export async function runComposition(
  client: ApiClient,
  options: { file: string; plan?: string } & WaitOptions,
  output: Output,
): Promise<number> {
  const text = await readFile(options.file, 'utf8');
  const parsed = (text.trimStart().startsWith('{') ? JSON.parse(text) : parseToml(text)) as {
    global?: { plan?: unknown };
  };
  const planName = options.plan ?? parsed.global?.plan;
  if (typeof planName !== 'string')
    throw new Error(`${options.file} has no global.plan; name the plan there or with --plan`);
  return submitAndFollow(client, text, locatePlan(planName), options, output);
}

async function submitAndFollow(
  client: ApiClient,
  composition: string,
  planDir: string,
  options: WaitOptions,
  output: Output,
): Promise<number> {
  const archive = await packPlanDirectory(planDir);
  const submitted = await client.submitRun(composition, archive);
  output.out(`run ${submitted.run_id} queued (task ${submitted.task_id})`);
  if (!options.wait && !options.collect) {
    output.out(`follow it with: testground logs -t ${submitted.task_id} -f`);
    return 0;
  }
  await client.readLogs(submitted.task_id, (line) => output.out(formatLogLine(line)), { follow: true });
  const task = await client.getTask(submitted.task_id);
  printOutcome(task, output);
  if (options.collect) {
    const file = path.resolve(options.collectFile ?? `${task.run_id}.tgz`);
    try {
      await client.downloadOutputs(task.run_id, file);
      output.out(`outputs: ${file}`);
    } catch (error) {
      output.err(`could not collect the outputs: ${(error as Error).message}`);
    }
  }
  return exitCodeForOutcome(task.outcome);
}

export function printOutcome(task: TaskView, output: Output): void {
  if (task.result) {
    for (const line of formatGroupSummary(task.result.groups)) output.out(line);
  }
  output.out(
    `run ${task.run_id}: ${task.state}, outcome ${task.outcome ?? 'none'}${task.error ? ` (${task.error})` : ''}`,
  );
}

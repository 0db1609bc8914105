import type { TaskView } from '../../api/schemas.ts';
import type { ApiClient } from '../api-client.ts';
import { followQuietly, printJson, printSubmissionJson } from '../json-output.ts';
import { readCompositionWithPlan, writeArtifacts } from '../composition-file.ts';
import { exitCodeForOutcome } from '../exit-codes.ts';
import { packPlanDirectory } from '../pack-plan.ts';
import { locatePlan, readPlanName, readTestCases } from '../plan-locator.ts';
import { singleRunComposition } from '../single-composition.ts';
import { printOutcome, type Output } from '../task-printer.ts';
import { followToEnd } from '../follow-task.ts';
import { printWarnings, submitOptions, type SubmitFlags } from './run.ts';

export interface BuildSingleOptions {
  plan: string;
  /** The manifest's first test case unless given: a build does not depend on it. */
  testcase?: string;
  builder?: string;
  runner?: string;
  /** The test case's minimum unless given. */
  instances?: number;
  buildConfig?: Record<string, string>;
  /** Packages the build takes at another version (`-d, --dep module=version`). */
  dep?: Record<string, string>;
}

/** `--json`: the ended build task as the API answers it, and nothing else on stdout. */
export interface BuildOutputOptions {
  json?: boolean;
}

/** `testground build single`: builds the plan as `run single` would, and prints the artifact's id. */
export async function buildSingle(
  client: ApiClient,
  options: BuildSingleOptions & SubmitFlags & BuildOutputOptions,
  output: Output,
): Promise<number> {
  const planDir = locatePlan(options.plan);
  const testCases = await readTestCases(planDir);
  const testCase =
    testCases.find((candidate) => candidate.name === options.testcase) ??
    (options.testcase === undefined ? testCases[0] : undefined);
  const composition = singleRunComposition({
    name: `${options.plan}-build`,
    plan: await readPlanName(planDir),
    // An unknown test case goes to the daemon as given: its refusal lists the plan's test cases.
    testCase: options.testcase ?? testCase?.name ?? '',
    instances: options.instances ?? testCase?.minInstances ?? 1,
    buildConfig: options.buildConfig,
    ...(options.dep ? { dependencies: options.dep } : {}),
    ...(options.builder ? { builder: options.builder } : {}),
    ...(options.runner ? { runner: options.runner } : {}),
  });
  const submitted = await client.submitBuild(
    JSON.stringify(composition),
    await packPlanDirectory(planDir),
    submitOptions(options),
  );
  if (options.json) return printSubmissionJson(client, submitted, { wait: true }, output);
  output.out(`build queued (task ${submitted.task_id})`);
  printWarnings(submitted, output);
  const task = await followToEnd(client, submitted, output);
  printOutcome(task, output, { followed: true });
  return exitCodeForOutcome(task.outcome);
}

/**
 * `testground build composition -f comp.toml`: builds every group of the composition and prints each
 * artifact; with `writeArtifacts`, writes them into the file as `[groups.run] artifact`, so that running
 * it performs no build.
 */
export async function buildComposition(
  client: ApiClient,
  options: { file: string; plan?: string; writeArtifacts?: boolean } & SubmitFlags & BuildOutputOptions,
  output: Output,
): Promise<number> {
  const { composition, archive } = await readCompositionWithPlan(options.file, options.plan);
  const submitted = await client.submitBuild(composition.text, archive, submitOptions(options));
  let task: TaskView;
  if (options.json) {
    task = await followQuietly(client, submitted.task_id);
  } else {
    output.out(`build queued (task ${submitted.task_id})`);
    printWarnings(submitted, output);
    task = await followToEnd(client, submitted, output);
    printOutcome(task, output, { followed: true });
  }
  if (options.writeArtifacts && task.outcome === 'success') {
    const { file, written } = await writeArtifacts(composition, task.artifacts);
    // With --json, stdout holds the task alone; what was written goes to stderr.
    (options.json ? output.err : output.out)(
      `wrote ${written.length} artifact${written.length === 1 ? '' : 's'} into ${file}` +
        (composition.templated
          ? ` (${options.file} is a template: the rendered composition with its artifacts went beside it)`
          : composition.format === 'toml'
            ? ' (rewritten from its parsed form: comments are not kept)'
            : ''),
    );
  }
  if (options.json) printJson(task, output);
  return exitCodeForOutcome(task.outcome);
}

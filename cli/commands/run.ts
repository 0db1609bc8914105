import type { Submitted } from '../../api/schemas.ts';
import type { ApiClient } from '../api-client.ts';
import { readCompositionWithPlan } from '../composition-file.ts';
import { exitCodeForOutcome } from '../exit-codes.ts';
import { inSingleRunTerms, inSingleRunWarning } from '../flag-names.ts';
import { followToEnd } from '../follow-task.ts';
import { withoutArtifacts } from '../ignore-artifacts.ts';
import { collectOutputs, writeReports } from '../task-outputs.ts';
import { printSubmissionJson } from '../json-output.ts';
import { packPlanDirectory } from '../pack-plan.ts';
import { locatePlan, readPlanName } from '../plan-locator.ts';
import { singleRunComposition } from '../single-composition.ts';
import { printOutcome, type Output } from '../task-printer.ts';

export type { Output } from '../task-printer.ts';

export interface RunSingleOptions {
  plan: string;
  testcase: string;
  builder?: string;
  runner?: string;
  instances: number;
  testParam?: Record<string, string>;
  buildConfig?: Record<string, string>;
  runConfig?: Record<string, string>;
  timeout?: string;
  /** Start from this artifact instead of building (`--use-build`). */
  useBuild?: string;
  /** Packages the build takes at another version (`-d, --dep module=version`). */
  dep?: Record<string, string>;
}

export interface WaitOptions {
  wait?: boolean;
  collect?: boolean;
  collectFile?: string;
  /** Write the task's JUnit XML report here once it ends (implies wait). */
  junit?: string;
  /** Write the original's result file (CSV: run_id,task_id,outcome,error) here once it ends (implies wait). */
  resultFile?: string;
  /** Return once queued (the default); the explicit opposite of `wait`, which commander keeps them apart from. */
  detach?: boolean;
  /** Print the submission (or, followed, the ended task) as the API answers it, and nothing else. */
  json?: boolean;
}

/** Where the task comes from, for CI (`--metadata-*`), and whether it supersedes older queued ones. */
export interface SubmitFlags {
  metadataRepo?: string;
  metadataBranch?: string;
  metadataCommit?: string;
  supersede?: boolean;
}

/** `testground run single`: a composition with one group named `single`. */
export async function runSingle(
  client: ApiClient,
  options: RunSingleOptions & WaitOptions & SubmitFlags,
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
    ...(options.dep ? { dependencies: options.dep } : {}),
  });
  const archive = await packPlanDirectory(planDir);
  const terms = { timeoutFlag: options.timeout !== undefined };
  const submitted = await client
    .submitRun(JSON.stringify(composition), archive, submitOptions(options))
    .catch((error: unknown) => {
      throw inSingleRunTerms(error, terms);
    });
  if (options.json) return printSubmissionJson(client, submitted, options, output);
  const warnings = submitted.warnings.map((warning) => inSingleRunWarning(warning, terms));
  return followRun(client, submitted, options, output, warnings);
}

/** `testground run composition -f comp.toml`: the plan is found by the composition's `global.plan`. */
export async function runComposition(
  client: ApiClient,
  options: { file: string; plan?: string; runIds?: string[]; ignoreArtifacts?: boolean } & WaitOptions &
    SubmitFlags,
  output: Output,
): Promise<number> {
  const { composition, archive } = await readCompositionWithPlan(options.file, options.plan);
  let text = composition.text;
  if (options.ignoreArtifacts) {
    const stripped = withoutArtifacts(composition.document);
    text = stripped.text;
    // stderr: with --json, stdout holds one document.
    output.err(
      `--ignore-artifacts: building every group afresh (${stripped.removed} artifact(s) of ${options.file} ignored)`,
    );
  }
  const submitted = await client.submitRun(text, archive, {
    ...submitOptions(options),
    ...(options.runIds ? { runIds: options.runIds } : {}),
  });
  if (options.json) return printSubmissionJson(client, submitted, options, output);
  return followRun(client, submitted, options, output);
}

/**
 * Says what was queued and its warnings (as given: `run single` says them in flags); with --wait, follows
 * it, prints how it ended and exits by it. The log's own copies of the warnings are not printed again.
 */
async function followRun(
  client: ApiClient,
  submitted: Submitted,
  options: WaitOptions,
  output: Output,
  warnings: Submitted['warnings'] = submitted.warnings,
): Promise<number> {
  const runIds = submitted.runs.map((run) => run.id);
  output.out(
    runIds.length === 1
      ? `run ${submitted.run_id} queued (task ${submitted.task_id})`
      : `runs ${runIds.join(', ')} queued (task ${submitted.task_id})`,
  );
  printWarnings({ ...submitted, warnings }, output);
  for (const older of submitted.superseded)
    output.out(`superseded (canceled) the older queued task ${older}`);
  if (!options.wait && !options.collect && !options.junit && !options.resultFile) {
    output.out(`follow it with: testground logs -t ${submitted.task_id} -f`);
    return 0;
  }
  output.out(`dashboard: ${client.dashboardUrl(submitted.task_id)}`);
  const task = await followToEnd(client, submitted, output);
  printOutcome(task, output, { followed: true });
  await writeReports(client, task, options, output);
  await collectOutputs(client, task, options, output);
  return exitCodeForOutcome(task.outcome);
}

/**
 * What the submission carries besides the composition: the task's metadata and `--supersede`. In GitHub
 * Actions the repository, branch and commit are known: they are the defaults of the `--metadata-*` flags
 * (applied here rather than as commander defaults, so help reads the same inside and outside CI).
 */
export function submitOptions(
  flags: SubmitFlags,
  env: NodeJS.ProcessEnv = process.env,
): {
  metadata: { repo?: string; branch?: string; commit?: string };
  supersede: boolean;
} {
  const github = env.GITHUB_ACTIONS === 'true' ? env : {};
  const repo = flags.metadataRepo || github.GITHUB_REPOSITORY;
  const branch = flags.metadataBranch || github.GITHUB_HEAD_REF || github.GITHUB_REF_NAME;
  const commit = flags.metadataCommit || github.GITHUB_SHA;
  return {
    metadata: {
      ...(repo ? { repo } : {}),
      ...(branch ? { branch } : {}),
      ...(commit ? { commit } : {}),
    },
    supersede: flags.supersede ?? false,
  };
}

/** Each warning once, on stderr; the same lines in the task log are not printed again. */
export function printWarnings(submitted: Submitted, output: Output): void {
  for (const warning of submitted.warnings) output.err(`warning: ${warning.path}: ${warning.message}`);
}

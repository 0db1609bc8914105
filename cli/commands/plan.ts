import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { exitCodes } from '../exit-codes.ts';
import { printJson } from '../json-output.ts';
import type { PlanListView } from '../json-views.ts';
import { readPlanDescription } from '../plan-manifest.ts';
import { planSkeleton } from '../plan-skeleton.ts';
import type { Output } from '../task-printer.ts';

/** Where plan names are looked up first (plan-locator.ts), and where `plan create`/`import` put plans. */
export function plansHome(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.TESTGROUND_HOME ?? path.join(os.homedir(), '.testground'), 'plans');
}

// What an imported plan does not need: the builder installs dependencies itself, and history is not a plan.
const notImported = new Set(['node_modules', '.git']);

// A directory name under plans/: one path segment that a plan name can also be.
const planDirName = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * `testground plan list [--testcases]`: the plans `-p <name>` finds, in the order it looks (the home's, then
 * ./plans of the working directory); a name in both is listed once, where it is found.
 */
export async function listPlans(
  options: { testcases?: boolean; json?: boolean },
  output: Output,
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): Promise<number> {
  const seen = new Set<string>();
  const plans: PlanListView['plans'] = [];
  for (const root of [plansHome(env), path.join(cwd, 'plans')]) {
    const names = await readdir(root).catch(() => [] as string[]);
    for (const name of names.sort()) {
      const dir = path.join(root, name);
      if (seen.has(name) || !existsSync(path.join(dir, 'manifest.toml'))) continue;
      seen.add(name);
      const description = await readPlanDescription(dir).catch((error: unknown) => {
        output.err(`warning: ${(error as Error).message}`);
        return undefined;
      });
      plans.push({ name, dir, testcases: description?.testcases.map((testCase) => testCase.name) ?? [] });
    }
  }
  if (options.json) {
    printJson({ plans }, output);
    return exitCodes.success;
  }
  if (plans.length === 0) {
    output.err(
      `no plans in ${plansHome(env)} or ${path.join(cwd, 'plans')}; create one with "testground plan create -p <name>"`,
    );
    return exitCodes.success;
  }
  for (const plan of plans) {
    if (options.testcases) for (const testCase of plan.testcases) output.out(`${plan.name}:${testCase}`);
    else output.out(`${plan.name.padEnd(24)} ${plan.dir}`);
  }
  return exitCodes.success;
}

/** `testground plan create -p <name>`: a plan that runs as it is, in $TESTGROUND_HOME/plans/<name>. */
export async function createPlan(
  options: { plan: string; dir?: string },
  output: Output,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  checkPlanName('--plan', options.plan);
  const dir = path.resolve(options.dir ?? path.join(plansHome(env), options.plan));
  if (existsSync(dir) && (await readdir(dir)).length > 0) {
    throw new Error(`--plan ${options.plan}: ${dir} exists and is not empty; pick another name or remove it`);
  }
  await mkdir(dir, { recursive: true });
  for (const [file, text] of Object.entries(planSkeleton(options.plan))) {
    await writeFile(path.join(dir, file), text);
  }
  output.out(`created plan ${options.plan} in ${dir}`);
  output.out(`run it: testground run single -p ${options.plan} -t hello -i 2 --wait`);
  return exitCodes.success;
}

/** `testground plan import --from <dir>`: a copy under $TESTGROUND_HOME/plans, found by name from then on. */
export async function importPlan(
  options: { from: string; name?: string },
  output: Output,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const source = path.resolve(options.from);
  if (/^(?:[a-z+]+:\/\/|git@)/.test(options.from)) {
    throw new Error(
      `--from ${options.from}: only a local directory can be imported; clone the repository first (git clone ${options.from}) and import the plan's directory`,
    );
  }
  if (!existsSync(path.join(source, 'manifest.toml'))) {
    throw new Error(`--from ${options.from}: ${source} holds no manifest.toml; give a plan's directory`);
  }
  const name = options.name ?? path.basename(source);
  checkPlanName(options.name === undefined ? '--from' : '--name', name);
  const target = path.join(plansHome(env), name);
  if (existsSync(target)) {
    throw new Error(
      `--name ${name}: ${target} exists already; remove it with "testground plan rm -p ${name} --yes" or import under another --name`,
    );
  }
  await mkdir(path.dirname(target), { recursive: true });
  await cp(source, target, {
    recursive: true,
    filter: (file) => !notImported.has(path.basename(file)) || file === source,
  });
  output.out(`imported ${source} as plan ${name} (${target})`);
  return exitCodes.success;
}

/** `testground plan rm -p <name> --yes`: only under $TESTGROUND_HOME/plans, and only when confirmed. */
export async function removePlan(
  options: { plan: string; yes?: boolean },
  output: Output,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  checkPlanName('--plan', options.plan);
  const target = path.join(plansHome(env), options.plan);
  if (!(await stat(target).catch(() => undefined))?.isDirectory()) {
    throw new Error(`--plan ${options.plan}: no such plan directory ${target}`);
  }
  if (!options.yes) {
    output.err(`would remove ${target}; run again with --yes to remove it`);
    return exitCodes.rejected;
  }
  await rm(target, { recursive: true, force: true });
  output.out(`removed ${target}`);
  return exitCodes.success;
}

function checkPlanName(flag: string, name: string): void {
  if (!planDirName.test(name)) {
    throw new Error(
      `${flag} ${JSON.stringify(name)} cannot be a plan directory name: use letters, digits, ".", "_" and "-", starting with a letter or digit`,
    );
  }
}

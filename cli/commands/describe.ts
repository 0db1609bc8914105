import { exitCodes } from '../exit-codes.ts';
import { printJson } from '../json-output.ts';
import { readPlanDescription } from '../plan-manifest.ts';
import { locatePlan } from '../plan-locator.ts';
import type { ParamDescription, PlanDescription } from '../json-views.ts';
import type { Output } from '../task-printer.ts';

/** `testground describe -p <plan>`: what a composition or `run single` can ask of the plan. */
export async function describePlan(
  options: { plan: string; json?: boolean },
  output: Output,
): Promise<number> {
  const description = await readPlanDescription(locatePlan(options.plan));
  if (options.json) printJson(description, output);
  else for (const line of formatDescription(description)) output.out(line);
  return exitCodes.success;
}

export function formatDescription(plan: PlanDescription): string[] {
  const lines = [
    `plan ${plan.name} (${plan.dir})`,
    `  defaults: builder ${plan.defaults.builder ?? 'none'}, runner ${plan.defaults.runner ?? 'none'}`,
    `  builders: ${plan.builders.join(', ') || 'none'}`,
    `  runners: ${plan.runners.join(', ') || 'none'}`,
  ];
  if (plan.testcases.length === 0) lines.push('', 'no test cases');
  for (const testCase of plan.testcases) {
    const { min, max } = testCase.instances;
    lines.push(
      '',
      `test case ${testCase.name}: ${min === max ? `${min}` : `${min} to ${max}`} instance${max === 1 ? '' : 's'} (default ${testCase.instances.default})`,
    );
    if (testCase.params.length === 0) lines.push('  params: none');
    else lines.push('  params:', ...testCase.params.map((param) => `    ${formatParam(param)}`));
  }
  return lines;
}

/** `pause (int, default 0, unit ms): how long each instance waits`, as `--tp pause=…` would set it. */
function formatParam(param: ParamDescription): string {
  const facts = [
    param.type,
    `default ${param.default === null ? 'none' : JSON.stringify(param.default)}`,
    ...(param.unit ? [`unit ${param.unit}`] : []),
  ];
  return `${param.name} (${facts.join(', ')})${param.desc ? `: ${param.desc}` : ''}`;
}

/**
 * A parsed composition resolved against the plan's manifest and this daemon's builders and runners: the
 * run a runner can start, with every default applied and every problem reported at once.
 */
import type { ResolvedGroup, ResolvedRun, ResolvedTask } from '../core/run.ts';
import { type ProblemDetail, ValidationError } from '../core/errors.ts';
import {
  parseCpus,
  severalRunsMessage,
  type Composition,
  type CompositionGroup,
  type CompositionInstances,
} from './composition.ts';
import type { Manifest, TestCaseSpec } from './manifest.ts';
import { normalizeParamValue } from './param-types.ts';
import { describeValue, formatPath, listOrNone, throwIfProblems } from './problems.ts';
import { checkConfigLayers, manifestTablePath, type Components } from './check-config.ts';
import { parseByteSize, parseDuration } from './units.ts';

const defaultTimeoutMs = 10 * 60_000;

/** One group of the run being resolved, before its instance count is known. */
interface Slot {
  id: string;
  /** Index into composition.groups, or undefined when the reference is broken. */
  groupIndex: number | undefined;
  instances: CompositionInstances | undefined;
  instancesPath: string;
  testParams: Record<string, string>;
}

/**
 * Applies the plan's manifest and this daemon's capabilities to a parsed composition: picks builders and
 * runner, computes instance counts, merges configs and test params (run-group > run > group > global >
 * manifest default) and checks everything against the test case.
 *
 * @param known the builders and runners this daemon has, with the config keys each understands.
 * @throws ValidationError listing every problem found, not just the first.
 */
export function resolveComposition(
  composition: Composition,
  manifest: Manifest,
  known: Components,
): ResolvedComposition {
  const run = resolveRun(composition, manifest, known);
  return {
    task: { plan: run.plan, testCase: run.testCase, runner: run.runner, builder: run.builder, runs: [run] },
    warnings: [],
  };
}

/** A composition resolved: the runs to carry out, and what was accepted but deserves a word. */
export interface ResolvedComposition {
  task: ResolvedTask;
  /** Keys that have no effect here, values that do not fit their declared type: said, never refused. */
  warnings: ProblemDetail[];
}

function resolveRun(composition: Composition, manifest: Manifest, known: Components): ResolvedRun {
  const problems: ProblemDetail[] = [];
  const problem = (path: string, message: string): void => {
    problems.push({ path, message });
  };
  const { global, groups } = composition;

  if (global.plan !== manifest.name) {
    problem(
      'global.plan',
      `plan ${q(global.plan)} does not match the uploaded plan, whose manifest is named ${q(manifest.name)}; ` +
        `set global.plan = ${q(manifest.name)} or upload the plan ${q(global.plan)}`,
    );
  }

  const testCase = manifest.testcases.find((tc) => tc.name === global.case);
  if (testCase === undefined) {
    problem(
      'global.case',
      `test case ${q(global.case)} is not in plan ${q(manifest.name)}; its test cases: ` +
        listOrNone(manifest.testcases.map((tc) => tc.name)),
    );
  }

  const components = { manifest, known, problem };
  const runner = pickComponent('runner', global.runner, components) ?? '';
  const globalBuilderExplicit = global.builder !== undefined;
  const globalBuilder = globalBuilderExplicit
    ? pickComponent('builder', global.builder, components)
    : undefined;

  const runConfig = { ...withoutEnabled(manifest.runners[runner]), ...global.run_config };
  const runnerSchema = known.runners[runner]?.configSchema;
  if (runnerSchema !== undefined) {
    const layers = [
      {
        path: manifestTablePath('runners', runner),
        values: withoutEnabled(manifest.runners[runner]),
        strict: false,
      },
      { path: 'global.run_config', values: global.run_config, strict: true },
    ];
    // `timeout` gets its own message (with the right path) from resolveTimeout below.
    for (const found of checkConfigLayers(runnerSchema, layers, ['timeout']))
      problem(found.path, found.message);
  }
  const timeoutMs = resolveTimeout(runConfig, global.run_config?.timeout !== undefined, runner, problem);

  const params = paramChecker(testCase, problem);
  const defaultParams = manifestDefaults(manifest, testCase, problem);
  const globalParams = params(global.run?.test_params, 'global.run.test_params');
  const groupParams = groups.map((group, index) =>
    params(group.run?.test_params, `groups[${index}].run.test_params`),
  );

  checkIds(
    groups.map((group, index) => ({ id: group.id, path: `groups[${index}].id` })),
    problem,
  );

  const { slots, total, explicitRun } = runSlots(composition, params, problem);
  const counts = instanceCounts(slots, total, explicitRun, problem);
  let totalInstances = total?.value ?? 0;
  if (counts !== undefined) {
    const sum = counts.reduce((a, b) => a + b, 0);
    if (total !== undefined && sum !== total.value) {
      const breakdown = slots.map((slot, index) => `${slot.id}: ${counts[index] ?? 0}`).join(', ');
      const rounding = slots.some((slot) => slot.instances?.percentage !== undefined)
        ? '; percentages are rounded to whole instances'
        : '';
      problem(
        total.path,
        `the groups' instances add up to ${sum} (${breakdown}) but total_instances is ${total.value}; ` +
          `make them add up${rounding}`,
      );
    }
    totalInstances = total?.value ?? sum;
  }
  if (testCase !== undefined && (counts !== undefined || total !== undefined)) {
    const { min, max } = testCase.instances;
    if (totalInstances < min || totalInstances > max) {
      problem(
        total?.path ?? (explicitRun ? 'runs[0].groups' : 'groups'),
        `${totalInstances} instances is outside the range ${min}..${max} that test case ${q(testCase.name)} accepts`,
      );
    }
  }

  // The manifest's default builder is only checked when some group relies on it.
  const needsFallbackBuilder = slots.some((slot) => {
    const group = slot.groupIndex === undefined ? undefined : groups[slot.groupIndex];
    return group !== undefined && group.builder === undefined;
  });
  const fallbackBuilder =
    globalBuilderExplicit || !needsFallbackBuilder
      ? globalBuilder
      : pickComponent('builder', undefined, components);
  const groupBuilders = groups.map((group, index) =>
    group.builder === undefined
      ? fallbackBuilder
      : pickComponent('builder', group.builder, components, `groups[${index}].builder`),
  );

  checkBuildConfigs(composition, manifest, known, groupBuilders, problems);
  checkArtifactKinds(composition, runner, known, groupBuilders, problem);

  const resolvedGroups: ResolvedGroup[] = slots.map((slot, index) => {
    const group = slot.groupIndex === undefined ? undefined : groups[slot.groupIndex];
    const groupIndex = slot.groupIndex ?? 0;
    const builder = (slot.groupIndex === undefined ? undefined : groupBuilders[slot.groupIndex]) ?? '';
    return {
      id: slot.id,
      instances: counts?.[index] ?? 0,
      builder,
      buildConfig: {
        ...withoutEnabled(manifest.builders[builder]),
        ...global.build_config,
        ...group?.build_config,
      },
      resources: resolveResources(group, groupIndex, problem),
      dependencies: [],
      testParams: {
        ...defaultParams,
        ...globalParams,
        ...(group === undefined ? {} : groupParams[groupIndex]),
        ...slot.testParams,
      },
    };
  });

  throwIfProblems(problems, 'composition');
  return {
    id: composition.runs?.[0]?.id ?? 'default',
    plan: manifest.name.replaceAll('/', '-'),
    testCase: global.case,
    builder: fallbackBuilder ?? resolvedGroups[0]?.builder ?? '',
    runner,
    totalInstances,
    runConfig,
    timeoutMs,
    disableMetrics: global.disable_metrics ?? false,
    groups: resolvedGroups,
  };
}

type Problem = (path: string, message: string) => void;

/**
 * Each group's builder must make what the runner starts (exec:node a bundle for local:exec, a docker builder
 * an image for local:docker); otherwise the run could only fail once its build is done.
 */
function checkArtifactKinds(
  composition: Composition,
  runner: string,
  known: Components,
  groupBuilders: readonly (string | undefined)[],
  problem: Problem,
): void {
  const accepts = known.runners[runner]?.accepts;
  if (accepts === undefined) return;
  const fitting = Object.entries(known.builders)
    .filter(([, traits]) => traits.produces === accepts)
    .map(([id]) => id);
  const reported = new Set<string>();
  composition.groups.forEach((group, index) => {
    const builder = groupBuilders[index];
    const produces = builder === undefined ? undefined : known.builders[builder]?.produces;
    if (builder === undefined || produces === undefined || produces === accepts) return;
    const path =
      group.builder !== undefined
        ? `groups[${index}].builder`
        : composition.global.builder !== undefined
          ? 'global.builder'
          : 'manifest.defaults.builder';
    if (reported.has(path)) return;
    reported.add(path);
    problem(
      path,
      `builder ${q(builder)} makes ${produces === 'image' ? 'an image' : 'a bundle'}, but runner ${q(runner)} starts ` +
        `${accepts === 'image' ? 'images' : 'bundles'}; use ${listOrNone(fitting)} with it`,
    );
  });
}

/**
 * Each group's build config against its builder's keys. A global build_config shared by groups of the
 * same builder is reported once.
 */
function checkBuildConfigs(
  composition: Composition,
  manifest: Manifest,
  known: Components,
  groupBuilders: readonly (string | undefined)[],
  problems: ProblemDetail[],
): void {
  const seen = new Set(problems.map((found) => `${found.path}\0${found.message}`));
  composition.groups.forEach((group, index) => {
    const builder = groupBuilders[index];
    const schema = builder === undefined ? undefined : known.builders[builder]?.configSchema;
    if (builder === undefined || schema === undefined) return;
    const layers = [
      {
        path: manifestTablePath('builders', builder),
        values: withoutEnabled(manifest.builders[builder]),
        strict: false,
      },
      { path: 'global.build_config', values: composition.global.build_config, strict: true },
      { path: `groups[${index}].build_config`, values: group.build_config, strict: true },
    ];
    for (const found of checkConfigLayers(schema, layers)) {
      const key = `${found.path}\0${found.message}`;
      if (seen.has(key)) continue;
      seen.add(key);
      problems.push(found);
    }
  });
}

type Total = { value: number; path: string };
type ParamCheck = ReturnType<typeof paramChecker>;

/**
 * The run-groups of the one run: from [[runs]] when present (each referencing a [[groups]] entry by
 * group_id, default its own id), else one per group (the `default` run). Also the declared total, if any.
 */
function runSlots(
  composition: Composition,
  params: ParamCheck,
  problem: Problem,
): { slots: Slot[]; total: Total | undefined; explicitRun: boolean } {
  const { global, groups } = composition;
  const runs = composition.runs ?? [];
  let slots: Slot[];
  let total: Total | undefined;
  if (runs.length > 1) {
    problem('runs', severalRunsMessage);
  }
  const run = runs[0];
  if (run === undefined) {
    slots = groups.map((group, index) => ({
      id: group.id,
      groupIndex: index,
      instances: group.instances,
      instancesPath: `groups[${index}].instances`,
      testParams: {},
    }));
    total =
      global.total_instances === undefined
        ? undefined
        : { value: global.total_instances, path: 'global.total_instances' };
  } else {
    const runParams = params(run.test_params, 'runs[0].test_params');
    checkIds(
      run.groups.map((runGroup, index) => ({ id: runGroup.id, path: `runs[0].groups[${index}].id` })),
      problem,
    );
    slots = run.groups.map((runGroup, index) => {
      const reference = runGroup.group_id ?? runGroup.id;
      const found = groups.findIndex((group) => group.id === reference);
      const groupIndex = found === -1 ? undefined : found;
      if (groupIndex === undefined) {
        const via = runGroup.group_id === undefined ? 'id' : 'group_id';
        problem(
          `runs[0].groups[${index}].${via}`,
          `no [[groups]] entry has id ${q(reference)}; declared groups: ${listOrNone(groups.map((g) => g.id))}` +
            (via === 'id' ? ' (set group_id when the run-group id differs from the group it uses)' : ''),
        );
      }
      const own = runGroup.instances;
      return {
        id: runGroup.id,
        groupIndex,
        instances: own ?? (groupIndex === undefined ? undefined : groups[groupIndex]?.instances),
        instancesPath:
          own !== undefined || groupIndex === undefined
            ? `runs[0].groups[${index}].instances`
            : `groups[${groupIndex}].instances`,
        testParams: { ...runParams, ...params(runGroup.test_params, `runs[0].groups[${index}].test_params`) },
      };
    });
    if (run.total_instances !== undefined)
      total = { value: run.total_instances, path: 'runs[0].total_instances' };
    else if (global.total_instances !== undefined)
      total = { value: global.total_instances, path: 'global.total_instances' };
  }

  return { slots, total, explicitRun: run !== undefined };
}

function q(value: string): string {
  return JSON.stringify(value);
}

/**
 * Picks a builder or runner: the composition's choice, else the manifest default. It must be declared by
 * the plan and available on this daemon; the message lists the ones that are both.
 */
function pickComponent(
  kind: 'builder' | 'runner',
  chosen: string | undefined,
  ctx: { manifest: Manifest; known: Components; problem: Problem },
  path = `global.${kind}`,
): string | undefined {
  const { manifest, problem } = ctx;
  const declared = Object.keys(kind === 'builder' ? manifest.builders : manifest.runners);
  const available = Object.keys(kind === 'builder' ? ctx.known.builders : ctx.known.runners);
  const usable = `${kind}s usable with this plan here: ${listOrNone(declared.filter((d) => available.includes(d)))}`;
  const fromManifest = chosen === undefined;
  const value = chosen ?? manifest.defaults[kind];
  if (value === undefined) {
    problem(
      path,
      `no ${kind} chosen; set global.${kind} (or defaults.${kind} in the plan's manifest); ${usable}`,
    );
    return undefined;
  }
  const where = fromManifest ? `manifest.defaults.${kind}` : path;
  const what = fromManifest ? `${kind} ${q(value)} (the manifest's default)` : `${kind} ${q(value)}`;
  if (!declared.includes(value)) {
    problem(
      where,
      `${what} is not supported by plan ${q(manifest.name)}, which declares: ${listOrNone(declared)}; ${usable}`,
    );
    return undefined;
  }
  if (!available.includes(value)) {
    problem(where, `${what} is not available on this daemon, which has: ${listOrNone(available)}; ${usable}`);
    return undefined;
  }
  return value;
}

/** `enabled` only says the plan supports a builder/runner; it is not configuration to pass on. */
function withoutEnabled(config: Record<string, unknown> | undefined): Record<string, unknown> {
  const { enabled: _enabled, ...rest } = config ?? {};
  return rest;
}

function resolveTimeout(
  runConfig: Record<string, unknown>,
  fromComposition: boolean,
  runner: string,
  problem: Problem,
): number {
  const value = runConfig.timeout;
  if (value === undefined) return defaultTimeoutMs;
  const path = fromComposition
    ? 'global.run_config.timeout'
    : formatPath(['runners', runner, 'timeout'], 'manifest');
  if (typeof value !== 'string' && typeof value !== 'number') {
    problem(path, `expected a duration, like "90s" or "10m", got ${describeValue(value)}`);
    return defaultTimeoutMs;
  }
  try {
    return parseDuration(value, path);
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    for (const detail of err.details) problem(detail.path, detail.message);
    return defaultTimeoutMs;
  }
}

/** Returns a function that checks one level's test params against the test case's declarations. */
function paramChecker(
  testCase: TestCaseSpec | undefined,
  problem: Problem,
): (params: Record<string, string> | undefined, path: string) => Record<string, string> {
  return (params, path) => {
    const out: Record<string, string> = {};
    // Without a known test case there is nothing to check against; that problem is reported already.
    if (params === undefined || testCase === undefined) return out;
    const declared = Object.keys(testCase.params);
    for (const [name, value] of Object.entries(params)) {
      const paramPath = formatPath([name], path);
      const spec = Object.hasOwn(testCase.params, name) ? testCase.params[name] : undefined;
      if (spec === undefined) {
        problem(
          paramPath,
          `unknown param ${q(name)}; test case ${q(testCase.name)} declares: ${listOrNone(declared)}`,
        );
        continue;
      }
      const checked = normalizeParamValue(spec.type, value);
      if (checked.ok) out[name] = checked.value;
      else problem(paramPath, `${checked.message} (param ${q(name)} is declared as ${spec.type})`);
    }
    return out;
  };
}

function manifestDefaults(
  manifest: Manifest,
  testCase: TestCaseSpec | undefined,
  problem: Problem,
): Record<string, string> {
  const out: Record<string, string> = {};
  if (testCase === undefined) return out;
  const index = manifest.testcases.indexOf(testCase);
  for (const [name, spec] of Object.entries(testCase.params)) {
    if (spec.default === undefined) continue; // params with no default and no value are simply absent
    const checked = normalizeParamValue(spec.type, spec.default);
    if (checked.ok) out[name] = checked.value;
    // parseManifest rejects such defaults; this only guards manifests built some other way.
    else problem(formatPath(['testcases', index, 'params', name, 'default'], 'manifest'), checked.message);
  }
  return out;
}

const safeId = /^[A-Za-z0-9._-]+$/;

/** Group ids become directory names (outputs) and TEST_GROUP_ID, so they must be non-empty, unique and plain. */
function checkIds(entries: { id: string; path: string }[], problem: Problem): void {
  const firstPathById = new Map<string, string>();
  for (const { id, path } of entries) {
    if (id === '') problem(path, 'must not be empty');
    else if (id === '.' || id === '..') problem(path, `${q(id)} cannot be a group id; it names a directory`);
    else if (!safeId.test(id)) {
      problem(
        path,
        `${q(id)} may hold only letters, digits, ".", "_" and "-" (group ids become directory names)`,
      );
    }
    const first = firstPathById.get(id);
    if (first === undefined) firstPathById.set(id, path);
    else problem(path, `duplicate group id ${q(id)} (also ${first}); group ids must be unique`);
  }
}

/** Instance count per slot, or undefined when any count could not be worked out (already reported). */
function instanceCounts(
  slots: Slot[],
  total: Total | undefined,
  explicitRun: boolean,
  problem: Problem,
): number[] | undefined {
  const counts: number[] = [];
  let complete = true;
  for (const slot of slots) {
    const spec = slot.instances;
    let count: number | undefined;
    if (spec?.count !== undefined) {
      count = spec.count;
      if (!Number.isInteger(count) || count < 1) {
        problem(
          `${slot.instancesPath}.count`,
          `must be a whole number of at least 1, got ${describeValue(count)}`,
        );
        count = undefined;
      }
    } else if (spec?.percentage !== undefined) {
      if (total === undefined) {
        const where = explicitRun
          ? 'runs[0].total_instances or global.total_instances'
          : 'global.total_instances';
        problem(
          `${slot.instancesPath}.percentage`,
          `a percentage needs a total to take it from; set ${where}`,
        );
      } else {
        count = Math.round(spec.percentage * total.value);
        if (count < 1) {
          problem(
            `${slot.instancesPath}.percentage`,
            `${spec.percentage} of ${total.value} instances rounds to 0 instances; raise the percentage or use count`,
          );
          count = undefined;
        }
      }
    } else {
      problem(
        slot.instancesPath,
        `missing; set instances.count or instances.percentage for group ${q(slot.id)}`,
      );
    }
    if (count === undefined) complete = false;
    else counts.push(count);
  }
  return complete ? counts : undefined;
}

function resolveResources(
  group: CompositionGroup | undefined,
  groupIndex: number,
  problem: Problem,
): ResolvedGroup['resources'] {
  const resources: ResolvedGroup['resources'] = {};
  const memory = group?.resources?.memory;
  const cpu = group?.resources?.cpu;
  // The schema has checked both for parsed compositions; hand-built ones are checked here.
  if (memory !== undefined) {
    try {
      resources.memoryBytes = parseByteSize(memory, `groups[${groupIndex}].resources.memory`);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      for (const detail of err.details) problem(detail.path, detail.message);
    }
  }
  if (cpu !== undefined) {
    const cpus = parseCpus(cpu);
    if (cpus === undefined)
      problem(
        `groups[${groupIndex}].resources.cpu`,
        `expected a positive number of CPUs, got ${describeValue(cpu)}`,
      );
    else resources.cpus = cpus;
  }
  return resources;
}

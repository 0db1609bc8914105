/**
 * A parsed composition resolved against the plan's manifest and this daemon's builders and runners: the
 * runs a runner can start, with every default applied, every problem reported at once, and a warning for
 * each setting of the original Testground that is accepted but has no effect here.
 */
import type { ResolvedRun, ResolvedTask } from '../core/run.ts';
import { type ProblemDetail, ValidationError } from '../core/errors.ts';
import type { Composition } from './composition.ts';
import type { Manifest, TestCaseSpec } from './manifest.ts';
import { describeValue, formatPath, listOrNone, throwIfProblems } from './problems.ts';
import { checkConfigLayers, manifestTablePath, type Components } from './check-config.ts';
import { Findings } from './findings.ts';
import { warnIgnoredSettings } from './ignored-settings.ts';
import { resolveArtifacts, resolveDependencies } from './resolve-build.ts';
import { ParamResolver } from './resolve-params.ts';
import { resolveResources } from './resolve-resources.ts';
import { checkIds, resolveRuns, type GroupBasis } from './resolve-runs.ts';
import { parseDuration } from './units.ts';

const defaultTimeoutMs = 10 * 60_000;
// Node's timers hold a signed 32-bit count of milliseconds: a longer one fires after 1 ms instead.
const maxTimeoutMs = 2 ** 31 - 1;

/** A composition resolved: the runs to carry out, and what was accepted but deserves a word. */
export interface ResolvedComposition {
  task: ResolvedTask;
  /**
   * Keys that have no effect here, values that do not fit their declared type, defaults the manifest
   * names but does not declare: said, never refused. The manifest's warnings come first.
   */
  warnings: ProblemDetail[];
}

/**
 * Applies the plan's manifest and this daemon's capabilities to a parsed composition: picks builders and
 * runner, resolves each `[[runs]]` entry (or the one run `default`) with its instance counts, merges
 * configs and test params (run-group > run > group > global > manifest default) and checks everything
 * against the test case.
 *
 * @param known the builders and runners this daemon has, with the config keys each understands.
 * @throws ValidationError listing every problem found, not just the first.
 */
export function resolveComposition(
  composition: Composition,
  manifest: Manifest,
  known: Components,
): ResolvedComposition {
  const findings = new Findings();
  const { global, groups } = composition;

  checkPlanName(global.plan, manifest.name, findings);
  const testCase = findTestCase(global.case, manifest, findings);

  const components = { manifest, known, findings };
  const runner = pickComponent('runner', global.runner, components) ?? '';
  const runConfig = resolveRunConfig(composition, manifest, known, runner, findings);
  const timeoutMs = resolveTimeout(runConfig, global.run_config?.timeout !== undefined, runner, findings);

  checkIds(
    groups.map((group, index) => ({ id: group.id, path: `groups[${index}].id` })),
    'group',
    findings,
  );
  const globalBuilder =
    global.builder === undefined ? undefined : pickComponent('builder', global.builder, components);
  // The manifest's default builder is only checked when some group relies on it.
  const fallbackBuilder =
    global.builder !== undefined || groups.every((group) => group.builder !== undefined)
      ? globalBuilder
      : pickComponent('builder', undefined, components);
  const groupBuilders = groups.map((group, index) =>
    group.builder === undefined
      ? fallbackBuilder
      : pickComponent('builder', group.builder, components, `groups[${index}].builder`),
  );
  checkBuildConfigs(composition, manifest, known, groupBuilders, findings);
  checkArtifactKinds(composition, runner, known, groupBuilders, findings);
  warnIgnoredSettings(composition, findings);

  const params = new ParamResolver(testCase, findings);
  const manifestParams = params.defaults();
  const globalParams = params.level(global.run?.test_params, 'global.run.test_params');
  const dependencies = resolveDependencies(composition, findings);
  const artifacts = resolveArtifacts(composition);
  const bases: GroupBasis[] = groups.map((group, index) => {
    const builder = groupBuilders[index] ?? '';
    const artifact = artifacts[index];
    return {
      id: group.id,
      instances: group.instances,
      resolved: {
        builder,
        buildConfig: {
          ...withoutEnabled(manifest.builders[builder]),
          ...global.build_config,
          ...group.build_config,
        },
        resources: resolveResources(group.resources, `groups[${index}].resources`, findings),
        testParams: {
          ...manifestParams,
          ...globalParams,
          ...params.level(group.run?.test_params, `groups[${index}].run.test_params`),
        },
        dependencies: dependencies[index] ?? [],
        ...(artifact === undefined ? {} : { artifact }),
      },
    };
  });
  const shapes = resolveRuns(composition, testCase, bases, params, findings);

  throwIfProblems(findings.problems, 'composition');
  const plan = planName(manifest.name);
  const disableMetrics = global.disable_metrics ?? manifest.defaults.disable_metrics ?? false;
  const runs: ResolvedRun[] = shapes.map((shape) => ({
    id: shape.id,
    plan,
    testCase: global.case,
    builder: fallbackBuilder ?? shape.groups[0]?.builder ?? '',
    runner,
    totalInstances: shape.totalInstances,
    runConfig,
    timeoutMs,
    disableMetrics,
    groups: shape.groups,
  }));
  return {
    task: {
      plan,
      testCase: global.case,
      runner,
      builder: fallbackBuilder ?? runs[0]?.builder ?? '',
      runs,
    },
    warnings: [...manifest.warnings, ...findings.warnings],
  };
}

/**
 * TEST_PLAN and the outputs directory's name: the manifest's name with "/" replaced by "-", as the
 * original did. A ":" (`webrtc:go`) is kept, as there: it is fine in a directory name on the hosts the
 * daemon runs on, and Docker only sees it in labels.
 */
function planName(name: string): string {
  return name.replaceAll('/', '-');
}

/**
 * The original resolved `global.plan` as a path under its plans directory (`libp2p/ping`) and then used
 * the manifest's name; here the uploaded plan is the one that runs, so a name that is neither the
 * manifest's nor a path ending in it is only worth a warning.
 */
function checkPlanName(written: string, manifestName: string, findings: Findings): void {
  const lastSegment = (name: string): string => name.replace(/\/+$/, '').split('/').pop() ?? name;
  if (written === manifestName || lastSegment(written) === lastSegment(manifestName)) return;
  findings.warn(
    'global.plan',
    `plan ${q(written)} is neither the uploaded plan's name ${q(manifestName)} nor a path ending in it; ` +
      `the uploaded plan runs (the original, too, used the name in the manifest of the plan it found)`,
  );
}

function findTestCase(name: string, manifest: Manifest, findings: Findings): TestCaseSpec | undefined {
  const testCase = manifest.testcases.find((tc) => tc.name === name);
  if (testCase === undefined) {
    findings.problem(
      'global.case',
      `test case ${q(name)} is not in plan ${q(manifest.name)}; its test cases: ` +
        listOrNone(manifest.testcases.map((tc) => tc.name)),
    );
  }
  return testCase;
}

/** Manifest runner config < global.run_config, checked against the runner's keys. */
function resolveRunConfig(
  composition: Composition,
  manifest: Manifest,
  known: Components,
  runner: string,
  findings: Findings,
): Record<string, unknown> {
  const fromManifest = withoutEnabled(manifest.runners[runner]);
  const schema = known.runners[runner]?.configSchema;
  if (schema !== undefined) {
    const layers = [
      { path: manifestTablePath('runners', runner), values: fromManifest, strict: false },
      { path: 'global.run_config', values: composition.global.run_config, strict: true },
    ];
    // `timeout` gets its own message (with the right path) from resolveTimeout.
    const found = checkConfigLayers({ kind: 'runner', id: runner, schema }, layers, ['timeout']);
    for (const problem of found.problems) findings.problem(problem.path, problem.message);
    for (const warning of found.warnings) findings.warn(warning.path, warning.message);
  }
  return { ...fromManifest, ...composition.global.run_config };
}

/**
 * Each group's builder must make what the runner starts (exec:node a bundle for local:exec, a docker builder
 * an image for local:docker); otherwise the run could only fail once its build is done.
 */
function checkArtifactKinds(
  composition: Composition,
  runner: string,
  known: Components,
  groupBuilders: readonly (string | undefined)[],
  findings: Findings,
): void {
  const accepts = known.runners[runner]?.accepts;
  if (accepts === undefined) return;
  const fitting = Object.entries(known.builders)
    .filter(([, traits]) => traits.produces === accepts)
    .map(([id]) => id);
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
    findings.problem(
      path,
      `builder ${q(builder)} makes ${produces === 'image' ? 'an image' : 'a bundle'}, but runner ${q(runner)} starts ` +
        `${accepts === 'image' ? 'images' : 'bundles'}; use ${listOrNone(fitting)} with it`,
    );
  });
}

/**
 * Each group's build config against its builder's keys. A global build_config shared by groups of the
 * same builder is reported once (Findings keeps each finding once).
 */
function checkBuildConfigs(
  composition: Composition,
  manifest: Manifest,
  known: Components,
  groupBuilders: readonly (string | undefined)[],
  findings: Findings,
): void {
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
    const found = checkConfigLayers({ kind: 'builder', id: builder, schema }, layers);
    for (const problem of found.problems) findings.problem(problem.path, problem.message);
    for (const warning of found.warnings) findings.warn(warning.path, warning.message);
  });
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
  ctx: { manifest: Manifest; known: Components; findings: Findings },
  path = `global.${kind}`,
): string | undefined {
  const { manifest, findings } = ctx;
  const declared = Object.keys(kind === 'builder' ? manifest.builders : manifest.runners);
  const available = Object.keys(kind === 'builder' ? ctx.known.builders : ctx.known.runners);
  const usable = `${kind}s usable with this plan here: ${listOrNone(declared.filter((d) => available.includes(d)))}`;
  const fromManifest = chosen === undefined;
  const value = chosen ?? manifest.defaults[kind];
  if (value === undefined) {
    findings.problem(
      path,
      `no ${kind} chosen; set global.${kind} (or defaults.${kind} in the plan's manifest); ${usable}`,
    );
    return undefined;
  }
  const where = fromManifest ? `manifest.defaults.${kind}` : path;
  const what = fromManifest ? `${kind} ${q(value)} (the manifest's default)` : `${kind} ${q(value)}`;
  if (!declared.includes(value)) {
    findings.problem(
      where,
      `${what} is not supported by plan ${q(manifest.name)}, which declares: ${listOrNone(declared)}; ${usable}`,
    );
    return undefined;
  }
  if (!available.includes(value)) {
    findings.problem(
      where,
      `${what} is not available on this daemon, which has: ${listOrNone(available)}; ${usable}`,
    );
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
  findings: Findings,
): number {
  const value = runConfig.timeout;
  if (value === undefined) return defaultTimeoutMs;
  const path = fromComposition
    ? 'global.run_config.timeout'
    : formatPath(['runners', runner, 'timeout'], 'manifest');
  if (typeof value !== 'string' && typeof value !== 'number') {
    findings.problem(path, `expected a duration, like "90s" or "10m", got ${describeValue(value)}`);
    return defaultTimeoutMs;
  }
  try {
    const timeoutMs = parseDuration(value, path);
    if (timeoutMs > maxTimeoutMs) {
      findings.problem(
        path,
        `${JSON.stringify(value)} (${timeoutMs} ms) is longer than the longest run timeout, 596h31m23s (${maxTimeoutMs} ms, the longest timer Node.js keeps)`,
      );
      return defaultTimeoutMs;
    }
    return timeoutMs;
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    for (const detail of err.details) findings.problem(detail.path, detail.message);
    return defaultTimeoutMs;
  }
}

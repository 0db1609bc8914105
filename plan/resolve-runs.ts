/**
 * The runs of a composition: one per `[[runs]]` entry, or one run `default` made of every `[[groups]]`
 * entry when there are none, each with its instance counts, resources and params worked out.
 */
import type { ResolvedGroup } from '../core/run.ts';
import type { Composition, CompositionInstances, CompositionRun } from './composition.ts';
import type { Findings } from './findings.ts';
import type { TestCaseSpec } from './manifest.ts';
import { describeValue, listOrNone } from './problems.ts';
import type { ParamResolver } from './resolve-params.ts';
import { resolveResources } from './resolve-resources.ts';

/** One `[[groups]]` entry with everything that does not depend on the run using it. */
export interface GroupBasis {
  id: string;
  /** What a run-group of it starts from; `instances` and the run's own params are added per run. */
  resolved: Omit<ResolvedGroup, 'id' | 'instances'>;
  instances: CompositionInstances | undefined;
}

/** One run, before the run-wide settings (runner, timeout, …) the caller adds. */
export interface RunShape {
  id: string;
  totalInstances: number;
  groups: ResolvedGroup[];
}

/** One group of a run, before its instance count is known. */
interface Slot {
  id: string;
  basis: GroupBasis | undefined;
  instances: CompositionInstances | undefined;
  instancesPath: string;
  resources: ResolvedGroup['resources'];
  /** The run's and the run-group's own params (run-group over run). */
  testParams: Record<string, string>;
}

type Total = { value: number; path: string };

const defaultRunId = 'default';

export function resolveRuns(
  composition: Composition,
  testCase: TestCaseSpec | undefined,
  bases: readonly GroupBasis[],
  params: ParamResolver,
  findings: Findings,
): RunShape[] {
  const runs = composition.runs ?? [];
  if (runs.length === 0) return [defaultRun(composition, testCase, bases, findings)];

  checkIds(
    runs.map((run, index) => ({ id: run.id, path: `runs[${index}].id` })),
    'run',
    findings,
  );
  const used = new Set(runs.flatMap((run) => run.groups.map((runGroup) => runGroup.group_id ?? runGroup.id)));
  composition.groups.forEach((group, index) => {
    if (!used.has(group.id)) {
      findings.warn(
        `groups[${index}]`,
        `group ${q(group.id)} is used by no [[runs]] entry, so it is neither built nor run`,
      );
    }
  });
  return runs.map((run, index) =>
    explicitRun(run, `runs[${index}]`, composition.global.total_instances, {
      testCase,
      bases,
      params,
      findings,
    }),
  );
}

/** No [[runs]]: one run of every group, as the original's `GenerateDefaultRun` made. */
function defaultRun(
  composition: Composition,
  testCase: TestCaseSpec | undefined,
  bases: readonly GroupBasis[],
  findings: Findings,
): RunShape {
  const slots = bases.map((basis, index) => ({
    id: basis.id,
    basis,
    instances: basis.instances,
    instancesPath: `groups[${index}].instances`,
    resources: {},
    testParams: {},
  }));
  const declared = composition.global.total_instances;
  const total = declared === undefined ? undefined : { value: declared, path: 'global.total_instances' };
  return shapeRun(defaultRunId, slots, total, { testCase, runPath: undefined, findings });
}

/** One `[[runs]]` entry; `at` is its path (`runs[1]`). */
function explicitRun(
  run: CompositionRun,
  at: string,
  globalTotal: number | undefined,
  ctx: {
    testCase: TestCaseSpec | undefined;
    bases: readonly GroupBasis[];
    params: ParamResolver;
    findings: Findings;
  },
): RunShape {
  const { testCase, bases, params, findings } = ctx;
  const runParams = params.level(run.test_params, `${at}.test_params`);
  // A run may use one group several times, under different run-group ids (as in the original).
  checkIds(
    run.groups.map((runGroup, index) => ({ id: runGroup.id, path: `${at}.groups[${index}].id` })),
    'group',
    findings,
  );
  const slots: Slot[] = run.groups.map((runGroup, index) => {
    const reference = runGroup.group_id ?? runGroup.id;
    const groupIndex = bases.findIndex((basis) => basis.id === reference);
    const basis = groupIndex === -1 ? undefined : bases[groupIndex];
    if (basis === undefined) {
      const via = runGroup.group_id === undefined ? 'id' : 'group_id';
      findings.problem(
        `${at}.groups[${index}].${via}`,
        `no [[groups]] entry has id ${q(reference)}; declared groups: ${listOrNone(bases.map((b) => b.id))}` +
          (via === 'id' ? ' (set group_id when the run-group id differs from the group it uses)' : ''),
      );
    }
    const own = runGroup.instances;
    return {
      id: runGroup.id,
      basis,
      instances: own ?? basis?.instances,
      instancesPath:
        own !== undefined || basis === undefined
          ? `${at}.groups[${index}].instances`
          : `groups[${groupIndex}].instances`,
      resources: resolveResources(runGroup.resources, `${at}.groups[${index}].resources`, findings),
      testParams: {
        ...runParams,
        ...params.level(runGroup.test_params, `${at}.groups[${index}].test_params`),
      },
    };
  });

  let total: Total | undefined;
  if (run.total_instances !== undefined)
    total = { value: run.total_instances, path: `${at}.total_instances` };
  else if (globalTotal !== undefined && slots.some((slot) => slot.instances?.percentage !== undefined)) {
    // Percentages need a total; the run has none of its own, so the global one is the base.
    total = { value: globalTotal, path: 'global.total_instances' };
  }
  const shape = shapeRun(run.id, slots, total, { testCase, runPath: at, findings });
  if (total === undefined && globalTotal !== undefined && shape.totalInstances !== globalTotal) {
    findings.warn(
      'global.total_instances',
      `total_instances = ${globalTotal} does not apply to run ${q(run.id)}, whose groups add up to ` +
        `${shape.totalInstances} instances (as in the original, a [[runs]] entry counts its own groups); ` +
        `set ${at}.total_instances to check the sum`,
    );
  }
  return shape;
}

/** Instance counts, the total and the test case's bounds for one run, then its resolved groups. */
function shapeRun(
  id: string,
  slots: readonly Slot[],
  total: Total | undefined,
  ctx: { testCase: TestCaseSpec | undefined; runPath: string | undefined; findings: Findings },
): RunShape {
  const { testCase, runPath, findings } = ctx;
  // Problems at a path outside a [[runs]] entry say which run they are about.
  const ofRun = (path: string): string =>
    runPath !== undefined && !path.startsWith(`${runPath}.`) ? ` (run ${q(id)})` : '';
  const counts = instanceCounts(slots, total, runPath, findings);
  let totalInstances = total?.value ?? 0;
  if (counts !== undefined) {
    const sum = counts.reduce((a, b) => a + b, 0);
    if (total !== undefined && sum !== total.value) {
      const breakdown = slots.map((slot, index) => `${slot.id}: ${counts[index] ?? 0}`).join(', ');
      const rounding = slots.some((slot) => slot.instances?.percentage !== undefined)
        ? '; percentages are rounded to whole instances'
        : '';
      findings.problem(
        total.path,
        `the groups' instances add up to ${sum} (${breakdown}) but total_instances is ${total.value}; ` +
          `make them add up${rounding}${ofRun(total.path)}`,
      );
    }
    totalInstances = total?.value ?? sum;
  }
  if (testCase !== undefined && (counts !== undefined || total !== undefined)) {
    const { min, max } = testCase.instances;
    if (totalInstances < min || totalInstances > max) {
      const path = total?.path ?? (runPath === undefined ? 'groups' : `${runPath}.groups`);
      findings.problem(
        path,
        `${totalInstances} instances is outside the range ${min}..${max} that test case ${q(testCase.name)} accepts${ofRun(path)}`,
      );
    }
  }

  const groups: ResolvedGroup[] = [];
  slots.forEach((slot, index) => {
    if (slot.basis === undefined) return; // reported already
    const { resolved } = slot.basis;
    groups.push({
      id: slot.id,
      instances: counts?.[index] ?? 0,
      ...resolved,
      resources: { ...resolved.resources, ...slot.resources },
      testParams: { ...resolved.testParams, ...slot.testParams },
    });
  });
  return { id, totalInstances, groups };
}

/**
 * Instance count per slot, or undefined when any count could not be worked out (already reported).
 * @param runPath `runs[i]` for a [[runs]] entry, undefined for the default run.
 */
function instanceCounts(
  slots: readonly Slot[],
  total: Total | undefined,
  runPath: string | undefined,
  findings: Findings,
): number[] | undefined {
  const counts: number[] = [];
  let complete = true;
  for (const slot of slots) {
    const spec = slot.instances;
    let count: number | undefined;
    if (spec?.count !== undefined) {
      count = spec.count;
      if (!Number.isInteger(count) || count < 1) {
        findings.problem(
          `${slot.instancesPath}.count`,
          `must be a whole number of at least 1, got ${describeValue(count)}`,
        );
        count = undefined;
      }
    } else if (spec?.percentage !== undefined) {
      if (total === undefined) {
        const where =
          runPath === undefined
            ? 'global.total_instances'
            : `${runPath}.total_instances or global.total_instances`;
        findings.problem(
          `${slot.instancesPath}.percentage`,
          `a percentage needs a total to take it from; set ${where}`,
        );
      } else {
        count = Math.round(spec.percentage * total.value);
        if (count < 1) {
          findings.problem(
            `${slot.instancesPath}.percentage`,
            `${spec.percentage} of ${total.value} instances rounds to 0 instances; raise the percentage or use count`,
          );
          count = undefined;
        }
      }
    } else {
      findings.problem(
        slot.instancesPath,
        `missing; set instances.count or instances.percentage for group ${q(slot.id)}`,
      );
    }
    if (count === undefined) complete = false;
    else counts.push(count);
  }
  return complete ? counts : undefined;
}

const safeId = /^[A-Za-z0-9._-]+$/;
// Ids are parts of directory, container and network names and of run ids (themselves at most 64).
const maxIdLength = 64;

/**
 * Group and run ids become directory names (outputs) and TEST_GROUP_ID, so they must be non-empty,
 * short, unique and plain.
 */
export function checkIds(
  entries: readonly { id: string; path: string }[],
  kind: 'group' | 'run',
  findings: Findings,
): void {
  const firstPathById = new Map<string, string>();
  for (const { id, path } of entries) {
    if (id === '') findings.problem(path, 'must not be empty');
    else if (id.length > maxIdLength)
      findings.problem(
        path,
        `${q(id.slice(0, 40))}… is ${id.length} characters long; ${kind} ids may be at most ${maxIdLength} (they become directory and container names)`,
      );
    else if (id === '.' || id === '..')
      findings.problem(path, `${q(id)} cannot be a ${kind} id; it names a directory`);
    else if (!safeId.test(id)) {
      findings.problem(
        path,
        `${q(id)} may hold only letters, digits, ".", "_" and "-" (${kind} ids become directory names)`,
      );
    }
    const first = firstPathById.get(id);
    if (first === undefined) firstPathById.set(id, path);
    else findings.problem(path, `duplicate ${kind} id ${q(id)} (also ${first}); ${kind} ids must be unique`);
  }
}

function q(value: string): string {
  return JSON.stringify(value);
}

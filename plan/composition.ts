/** A composition (CONTRACT §6), TOML or JSON, parsed and checked for shape; see resolve-composition.ts for the rest. */
import { z } from 'zod';
import { parseByteSize, parseCpus } from './units.ts';
import { ValidationError } from '../core/errors.ts';
import { describeJsonSyntaxError } from './json-error-position.ts';
import {
  describeValue,
  parseTomlDocument,
  problemsFromZod,
  strictTable,
  throwIfProblems,
} from './problems.ts';

// ---------------------------------------------------------------------------------------------------------
// Schema (CONTRACT §6, and every key of the original Testground's composition)
// ---------------------------------------------------------------------------------------------------------

/** Users write `count = 3` or `enabled = true`; instances always receive strings, so values are carried as such. */
const testParamsSchema = z.record(
  z.string().min(1),
  z
    .union([z.string(), z.number(), z.boolean()], { error: 'expected a string, number or boolean' })
    .transform((value) => String(value)),
);

const configSchema = z.record(z.string(), z.unknown());

/**
 * `count` or `percentage`. The original read both into Go numbers, where 0 means unset, so a composition
 * may write `{ count = 0, percentage = 0.5 }`; zeros are dropped here and only one real value may remain.
 */
const instancesSchema = strictTable({
  count: z.int().min(0).optional(),
  percentage: z
    .number()
    .min(0)
    .lte(1, {
      error: (issue) =>
        `percentage is a fraction of total_instances between 0 and 1, like 0.25 for a quarter; got ${describeValue(issue.input)}`,
    })
    .optional(),
})
  .superRefine((instances, ctx) => {
    const count = instances.count ?? 0;
    const percentage = instances.percentage ?? 0;
    if (count > 0 && percentage > 0) {
      ctx.addIssue({ code: 'custom', message: 'set count or percentage, not both' });
    } else if (count === 0 && percentage === 0) {
      const either =
        'set either count (a number of instances) or percentage (a fraction of total_instances, like 0.25)';
      const zero =
        instances.count !== undefined
          ? 'count'
          : instances.percentage !== undefined
            ? 'percentage'
            : undefined;
      ctx.addIssue({
        code: 'custom',
        ...(zero === undefined ? {} : { path: [zero] }),
        message:
          zero === undefined ? either : `${zero} = 0 means unset (as in the original Testground); ${either}`,
      });
    }
  })
  .transform(({ count, percentage }) => ({
    ...(count ? { count } : {}),
    ...(percentage ? { percentage } : {}),
  }));

/** `""` means unset, as the original's Go strings did. */
const emptyIsUnset = <T>(value: T): T | undefined => (value === '' ? undefined : value);

const resourcesSchema = strictTable({
  memory: z
    .union([z.string(), z.number()], { error: 'expected a byte size, like "512MiB" or "1Gi"' })
    .transform(emptyIsUnset)
    .superRefine((memory, ctx) => {
      if (memory === undefined) return;
      try {
        parseByteSize(memory, 'memory');
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        ctx.addIssue({ code: 'custom', message: err.details[0]?.message ?? err.message });
      }
    })
    .optional(),
  // The original carried cpu as a string ("0.5", or millicores "500m" for cluster:k8s).
  cpu: z
    .union([z.number(), z.string()], { error: 'expected a number of CPUs, like 0.5 or 2' })
    .transform(emptyIsUnset)
    .superRefine((cpu, ctx) => {
      if (cpu !== undefined && parseCpus(cpu) === undefined) {
        ctx.addIssue({
          code: 'custom',
          message: `expected a positive number of CPUs, like 0.5, 2 or "1500m" (millicores), got ${describeValue(cpu)}`,
        });
      }
    })
    .optional(),
});

/** The original's `profiles` (pprof kinds → frequency); accepted, and warned about when resolved. */
const profilesSchema = z.record(z.string(), z.string());

const runSectionSchema = strictTable({
  /** A prebuilt artifact to run instead of building; `""` means unset. */
  artifact: z.string().transform(emptyIsUnset).optional(),
  test_params: testParamsSchema.optional(),
  profiles: profilesSchema.optional(),
});

/**
 * A package to take at another version, or from another source. Empty strings mean unset (Go zero values);
 * an entry must still say what to take.
 */
const dependencySchema = strictTable({
  module: z.string().trim().min(1),
  version: z.string().trim().transform(emptyIsUnset).optional(),
  target: z.string().trim().transform(emptyIsUnset).optional(),
}).superRefine((dependency, ctx) => {
  if (dependency.version === undefined && dependency.target === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['version'],
      message:
        `dependency ${JSON.stringify(dependency.module)} says neither which version to take nor where from; ` +
        'set version (like "1.2.3") or target (anything npm accepts, like "npm:other@1.2.3" or a tarball URL)',
    });
  }
});

/** `[global.build]` / `[groups.build]`: the original's build selectors and dependency overrides. */
const buildSectionSchema = strictTable({
  selectors: z.array(z.string()).optional(),
  dependencies: z.array(dependencySchema).optional(),
});

const groupSchema = strictTable({
  id: z.string(),
  builder: z.string().min(1).optional(),
  build_config: configSchema.optional(),
  build: buildSectionSchema.optional(),
  resources: resourcesSchema.optional(),
  instances: instancesSchema.optional(),
  run: runSectionSchema.optional(),
  // Not a key of the original's groups (its TOML decoder ignored it); accepted and warned about.
  run_config: configSchema.optional(),
});

const globalSchema = strictTable({
  plan: z.string().min(1),
  case: z.string().min(1),
  builder: z.string().min(1).optional(),
  runner: z.string().min(1).optional(),
  total_instances: z.int().min(1).optional(),
  build_config: configSchema.optional(),
  build: buildSectionSchema.optional(),
  run_config: configSchema.optional(),
  run: runSectionSchema.optional(),
  disable_metrics: z.boolean().optional(),
  concurrent_builds: z.int().optional(),
});

const runGroupSchema = strictTable({
  id: z.string(),
  group_id: z.string().min(1).optional(),
  resources: resourcesSchema.optional(),
  instances: instancesSchema.optional(),
  test_params: testParamsSchema.optional(),
  profiles: profilesSchema.optional(),
});

const runSchema = strictTable({
  id: z.string(),
  total_instances: z.int().min(1).optional(),
  test_params: testParamsSchema.optional(),
  groups: z.array(runGroupSchema).min(1, { error: 'a run needs at least one [[runs.groups]] table' }),
});

const compositionSchema = strictTable({
  metadata: strictTable({ name: z.string().optional(), author: z.string().optional() }).optional(),
  global: globalSchema,
  groups: z.array(groupSchema).min(1, { error: 'declare at least one [[groups]] table' }),
  runs: z.array(runSchema).optional(),
});

export type Composition = z.infer<typeof compositionSchema>;
export type CompositionGroup = z.infer<typeof groupSchema>;
export type CompositionInstances = z.infer<typeof instancesSchema>;
export type CompositionResources = z.infer<typeof resourcesSchema>;
export type CompositionBuild = z.infer<typeof buildSectionSchema>;
export type CompositionRun = z.infer<typeof runSchema>;

// ---------------------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------------------

/**
 * Parses a composition, TOML or JSON (JSON when the first non-blank character is `{`), and checks its
 * shape. Unknown keys are rejected with the list of keys accepted there; every key of the original
 * Testground's composition is known. Checks that need the plan's manifest happen in `resolveComposition`.
 *
 * @throws ValidationError listing every problem, with paths like `groups[1].instances`; a syntax error
 *   names its line and column.
 */
export function parseComposition(text: string): Composition {
  const raw = text.trimStart().startsWith('{')
    ? parseJsonDocument(text)
    : parseTomlDocument(text, 'composition', 'composition');
  checkNesting(raw);
  return validateComposition(raw);
}

// A composition is a handful of levels deep (runs[0].groups[1].test_params.x); far deeper values only
// serve to exhaust the stack of whatever walks them recursively later.
const maxNestingDepth = 32;

/** Refuses values nested deeper than `maxNestingDepth`, naming where; walks without recursion. */
function checkNesting(raw: unknown): void {
  const pending: { value: unknown; depth: number; at: string }[] = [{ value: raw, depth: 0, at: '' }];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const { value, depth, at } = next;
    if (value === null || typeof value !== 'object') continue;
    if (depth === maxNestingDepth) {
      const message = `nested more than ${maxNestingDepth} levels deep; compositions need a few`;
      throw new ValidationError(`composition: ${at}: ${message}`, [{ path: at, message }]);
    }
    for (const [key, child] of Object.entries(value)) {
      const childAt = Array.isArray(value) ? `${at}[${key}]` : at === '' ? key : `${at}.${key}`;
      pending.push({ value: child, depth: depth + 1, at: childAt });
    }
  }
}

function validateComposition(raw: unknown): Composition {
  const result = compositionSchema.safeParse(raw, { reportInput: true });
  if (result.success) return result.data;
  throwIfProblems(problemsFromZod(result.error, ''), 'composition');
  throw new Error('unreachable: zod failed without issues');
}

function parseJsonDocument(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    const message = `not valid JSON: ${describeJsonSyntaxError(text, err)}`;
    throw new ValidationError(`composition is ${message}`, [{ path: 'composition', message }]);
  }
}

/** A plan's `manifest.toml` (CONTRACT §5), parsed and checked. */
import { z } from 'zod';
import { type ProblemDetail } from '../core/errors.ts';
import { canonicalParamType, normalizeParamValue, paramTypes, type ParamType } from './param-types.ts';
import { listOrNone, parseTomlDocument, problemsFromZod, strictTable, throwIfProblems } from './problems.ts';

const acceptedTypes = `accepted types: ${paramTypes.join(', ')} (also integer, boolean, float64, []string, …)`;

const paramSpecSchema = strictTable({
  type: z.string().transform((spelling, ctx): ParamType => {
    const type = canonicalParamType(spelling);
    if (type === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `unknown type ${JSON.stringify(spelling)}; ${acceptedTypes}`,
      });
      return z.NEVER;
    }
    return type;
  }),
  desc: z.string().optional(),
  unit: z.string().optional(),
  default: z.unknown().optional(),
}).superRefine((spec, ctx) => {
  if (spec.default === undefined) return;
  const check = normalizeParamValue(spec.type, spec.default);
  if (!check.ok) ctx.addIssue({ code: 'custom', path: ['default'], message: check.message });
});

/** Instances receive params packed as `k1=v1|k2=v2`, so names holding `=` or `|` could not be unpacked. */
const paramNameSchema = z.string().regex(/^[^\s=|]+$/, {
  error: 'param names must not be empty or hold spaces, "=" or "|" (instances receive params as k1=v1|k2=v2)',
});

const instancesSchema = strictTable({
  min: z.int().min(1),
  max: z.int().min(1),
  // Omitted in some real manifests; the minimum is the one count every run must support anyway.
  default: z.int().min(1).optional(),
})
  .superRefine((instances, ctx) => {
    const { min, max } = instances;
    if (min > max)
      ctx.addIssue({ code: 'custom', path: ['min'], message: `min ${min} is greater than max ${max}` });
    const def = instances.default;
    if (def !== undefined && (def < min || def > max)) {
      ctx.addIssue({
        code: 'custom',
        path: ['default'],
        message: `default ${def} is outside min..max (${min}..${max})`,
      });
    }
  })
  .transform((instances) => ({
    min: instances.min,
    max: instances.max,
    default: instances.default ?? instances.min,
  }));

// Unknown keys in a test case (`roles` in Go-era manifests) are tolerated and dropped: rejecting them would
// break manifests users already have, and nothing here reads them.
const testCaseSchema = z.object({
  name: z.string().min(1),
  instances: instancesSchema,
  params: z.record(paramNameSchema, paramSpecSchema).default({}),
});

/** Builder/runner tables are free-form configuration (`enabled = true`, `go_version = "1.13"`, …). */
const configTablesSchema = z.record(z.string().min(1), z.record(z.string(), z.unknown()));

// Plan names end up in directory names and TEST_PLAN ("/" becomes "-"), hence the narrow character set.
const planNameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._/-]*$/, {
  error: 'must start with a letter or digit and hold only letters, digits, ".", "_", "-" and "/"',
});

// Unknown top-level keys (`source_path`, `extra_sources` in Go-era manifests) are tolerated and dropped.
const manifestSchema = z.object({
  name: planNameSchema,
  defaults: strictTable({
    builder: z.string().min(1).optional(),
    runner: z.string().min(1).optional(),
  }).default({}),
  builders: configTablesSchema.refine((tables) => Object.keys(tables).length > 0, {
    error: 'the plan declares no builders; add one, like [builders."exec:node"]',
  }),
  runners: configTablesSchema.refine((tables) => Object.keys(tables).length > 0, {
    error: 'the plan declares no runners; add one, like [runners."local:exec"]',
  }),
  testcases: z
    .array(testCaseSchema)
    .min(1, { error: 'the plan declares no test cases; add a [[testcases]] table' }),
});

export type ParamSpec = z.infer<typeof paramSpecSchema>;
export type TestCaseSpec = z.infer<typeof testCaseSchema>;
export type Manifest = z.infer<typeof manifestSchema>;

/**
 * Parses and validates a plan's `manifest.toml` (CONTRACT §5).
 *
 * Accepted beyond the contract, because real manifests have them: `[build_strategies]`/`[run_strategies]`
 * (the Go-era names of `[builders]`/`[runners]`), param defaults written as strings (`default = "true"`),
 * param type spellings such as `integer`, `boolean`, `float64`, `[]string`; a missing `instances.default`
 * means `instances.min`. Unknown keys are rejected only inside `[defaults]`, `instances` and param specs,
 * where a typo (`defualt`) would otherwise silently lose a setting.
 *
 * @throws ValidationError listing every problem, with paths like `manifest.testcases[1].instances.min`.
 */
export function parseManifest(text: string): Manifest {
  const raw = parseTomlDocument(text, 'manifest.toml', 'manifest');
  const problems: ProblemDetail[] = [];
  const input = applyLegacyTableNames(raw, problems);
  const result = manifestSchema.safeParse(input, { reportInput: true });
  if (!result.success) problems.push(...problemsFromZod(result.error, 'manifest'));
  problems.push(...crossCheck(input));
  throwIfProblems(problems, 'manifest.toml');
  if (!result.success) throw new Error('unreachable: zod failed without issues');
  return result.data;
}

function applyLegacyTableNames(
  raw: Record<string, unknown>,
  problems: ProblemDetail[],
): Record<string, unknown> {
  const input = { ...raw };
  for (const [current, legacy] of [
    ['builders', 'build_strategies'],
    ['runners', 'run_strategies'],
  ] as const) {
    if (input[legacy] === undefined) continue;
    if (input[current] === undefined) {
      input[current] = input[legacy];
    } else {
      problems.push({
        path: `manifest.${legacy}`,
        message: `both [${current}] and its older name [${legacy}] are present; keep only [${current}]`,
      });
    }
  }
  return input;
}

/** Checks that span several tables; run on the raw document so they are reported alongside schema problems. */
function crossCheck(input: Record<string, unknown>): ProblemDetail[] {
  const problems: ProblemDetail[] = [];

  const firstIndexByName = new Map<string, number>();
  const testcases = Array.isArray(input.testcases) ? (input.testcases as unknown[]) : [];
  testcases.forEach((tc, index) => {
    const name = isTable(tc) ? tc.name : undefined;
    if (typeof name !== 'string' || name === '') return;
    const first = firstIndexByName.get(name);
    if (first === undefined) firstIndexByName.set(name, index);
    else {
      problems.push({
        path: `manifest.testcases[${index}].name`,
        message: `duplicate test case name ${JSON.stringify(name)} (also testcases[${first}].name); names must be unique`,
      });
    }
  });

  const defaults = isTable(input.defaults) ? input.defaults : {};
  for (const [key, tables, example] of [
    ['builder', 'builders', 'exec:node'],
    ['runner', 'runners', 'local:exec'],
  ] as const) {
    const chosen = defaults[key];
    const declaredTables = input[tables];
    if (typeof chosen !== 'string' || chosen === '' || !isTable(declaredTables)) continue;
    const declared = Object.keys(declaredTables);
    if (!declared.includes(chosen)) {
      problems.push({
        path: `manifest.defaults.${key}`,
        message:
          `${key} ${JSON.stringify(chosen)} is not declared in [${tables}]; declared: ${listOrNone(declared)} ` +
          `(declare it with [${tables}.${JSON.stringify(chosen)}], as in [${tables}."${example}"])`,
      });
    }
  }
  return problems;
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

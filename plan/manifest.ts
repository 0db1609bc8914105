/** A plan's `manifest.toml` (CONTRACT §5), parsed and checked. */
import { z } from 'zod';
import { type ProblemDetail } from '../core/errors.ts';
import { canonicalParamType, fitParamValue, paramTypes, type ParamType } from './param-types.ts';
import {
  formatPath,
  listOrNone,
  parseTomlDocument,
  problemsFromZod,
  strictTable,
  throwIfProblems,
} from './problems.ts';

const acceptedTypes = `accepted types: ${paramTypes.join(', ')} (also integer, boolean, float64, []string, …)`;

const scalarSchema = z
  .union([z.string(), z.number(), z.boolean()], { error: 'expected a string, number or boolean' })
  .transform((value) => String(value));

// The original read only type, desc, unit and default, as information for people; `values`/`options` (for
// enums) and `min`/`max` are what real manifests add. Other keys are refused: a typo (`defualt`) would
// otherwise silently lose a default.
const paramSpecSchema = strictTable({
  type: z.string().optional(),
  desc: z.string().optional(),
  unit: z.string().optional(),
  default: z.unknown().optional(),
  values: z.array(scalarSchema).optional(),
  options: z.array(scalarSchema).optional(),
  min: z.number().optional(),
  max: z.number().optional(),
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

// Plan names end up in directory names and TEST_PLAN ("/" becomes "-"), hence the narrow character set;
// ":" is allowed because real plans are named like `webrtc:go`.
const planNameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]*$/, {
  error: 'must start with a letter or digit and hold only letters, digits, ".", "_", "-", ":" and "/"',
});

// Unknown top-level keys (`source_path`, `extra_sources` in Go-era manifests) are tolerated and dropped.
const manifestSchema = z.object({
  name: planNameSchema,
  defaults: strictTable({
    builder: z.string().min(1).optional(),
    runner: z.string().min(1).optional(),
    disable_metrics: z.boolean().optional(),
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

/** One declared test param. Types are checked against values, and a value that does not fit is warned about. */
export interface ParamSpec {
  /** `string` when the manifest gives none or one this daemon does not know (with a warning). */
  type: ParamType;
  desc?: string;
  unit?: string;
  /** As written in the manifest; instances receive it as text (tables and arrays as JSON). */
  default?: unknown;
  /** The values an enum may take (`values` and `options` together). */
  values?: string[];
  min?: number;
  max?: number;
}

export interface TestCaseSpec {
  name: string;
  instances: { min: number; max: number; default: number };
  params: Record<string, ParamSpec>;
}

export interface Manifest {
  name: string;
  /**
   * What a composition falls back to when it names no builder or runner. The original never read this
   * table; a default the plan does not declare is dropped with a warning.
   */
  defaults: { builder?: string; runner?: string; disable_metrics?: boolean };
  builders: Record<string, Record<string, unknown>>;
  runners: Record<string, Record<string, unknown>>;
  testcases: TestCaseSpec[];
  /** What was accepted but deserves a word, with paths like `manifest.testcases[0].params.n.default`. */
  warnings: ProblemDetail[];
}

/**
 * Parses and validates a plan's `manifest.toml` (CONTRACT §5).
 *
 * Accepted beyond the contract, because real manifests have them: `[build_strategies]`/`[run_strategies]`
 * (the Go-era names of `[builders]`/`[runners]`), param defaults written as strings (`default = "true"`),
 * param type spellings such as `integer`, `boolean`, `float64`, `[]string`, `enum` with `values` or
 * `options`, `min`/`max`; a missing `instances.default` means `instances.min`. As in the original, a param's
 * type is information: a default or value that does not fit it, an unknown type, or a `[defaults]` entry
 * naming a builder or runner the plan does not declare is a warning, not a refusal. Unknown keys are
 * rejected only inside `[defaults]`, `instances` and param specs, where a typo (`defualt`) would otherwise
 * silently lose a setting.
 *
 * @throws ValidationError listing every problem, with paths like `manifest.testcases[1].instances.min`.
 */
export function parseManifest(text: string): Manifest {
  const raw = parseTomlDocument(text, 'manifest.toml', 'manifest');
  const problems: ProblemDetail[] = [];
  const input = applyLegacyTableNames(raw, problems);
  const result = manifestSchema.safeParse(input, { reportInput: true });
  if (!result.success) problems.push(...problemsFromZod(result.error, 'manifest'));
  problems.push(...duplicateTestCases(input));
  throwIfProblems(problems, 'manifest.toml');
  if (!result.success) throw new Error('unreachable: zod failed without issues');

  const warnings: ProblemDetail[] = [];
  const parsed = result.data;
  return {
    name: parsed.name,
    defaults: declaredDefaults(parsed, warnings),
    builders: parsed.builders,
    runners: parsed.runners,
    testcases: parsed.testcases.map((testCase, index) => ({
      name: testCase.name,
      instances: testCase.instances,
      params: Object.fromEntries(
        Object.entries(testCase.params).map(([name, spec]) => [
          name,
          paramSpec(spec, formatPath(['testcases', index, 'params', name], 'manifest'), warnings),
        ]),
      ),
    })),
    warnings,
  };
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

/** Run on the raw document, so the problem is reported alongside schema problems. */
function duplicateTestCases(input: Record<string, unknown>): ProblemDetail[] {
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
  return problems;
}

/**
 * `[defaults]` with the builder and runner kept only when the plan declares them. The original ignored
 * this table altogether (its compositions always named a builder and a runner), so a default naming
 * something undeclared, like `exec:go` in a plan that only declares `docker:go`, is dropped with a warning.
 */
function declaredDefaults(
  parsed: z.infer<typeof manifestSchema>,
  warnings: ProblemDetail[],
): Manifest['defaults'] {
  const defaults = { ...parsed.defaults };
  for (const [key, tables, example] of [
    ['builder', 'builders', 'exec:node'],
    ['runner', 'runners', 'local:exec'],
  ] as const) {
    const chosen = defaults[key];
    if (chosen === undefined) continue;
    const declared = Object.keys(parsed[tables]);
    if (declared.includes(chosen)) continue;
    delete defaults[key];
    warnings.push({
      path: `manifest.defaults.${key}`,
      message:
        `${key} ${JSON.stringify(chosen)} is not declared in [${tables}] (declared: ${listOrNone(declared)}), so it ` +
        `is ignored, as the original Testground ignored [defaults]; a composition without global.${key} is ` +
        `refused (declare it with [${tables}.${JSON.stringify(chosen)}], as in [${tables}."${example}"], to use it)`,
    });
  }
  return defaults;
}

function paramSpec(raw: z.infer<typeof paramSpecSchema>, path: string, warnings: ProblemDetail[]): ParamSpec {
  let type: ParamType = 'string';
  if (raw.type !== undefined) {
    const known = canonicalParamType(raw.type);
    if (known !== undefined) type = known;
    else {
      warnings.push({
        path: `${path}.type`,
        message:
          `unknown type ${JSON.stringify(raw.type)}, read as string: values are passed on unchecked ` +
          `(the original's types were informational); ${acceptedTypes}`,
      });
    }
  }
  const spec: ParamSpec = { type };
  if (raw.desc !== undefined) spec.desc = raw.desc;
  if (raw.unit !== undefined) spec.unit = raw.unit;
  if (raw.default !== undefined) spec.default = raw.default;
  if (raw.values !== undefined || raw.options !== undefined)
    spec.values = [...new Set([...(raw.values ?? []), ...(raw.options ?? [])])];
  if (raw.min !== undefined) spec.min = raw.min;
  if (raw.max !== undefined) spec.max = raw.max;
  if (spec.min !== undefined && spec.max !== undefined && spec.min > spec.max) {
    warnings.push({
      path: `${path}.min`,
      message: `min ${spec.min} is greater than max ${spec.max}, so no value fits; values are still passed on`,
    });
  }
  if (spec.default !== undefined) {
    const fit = fitParamValue(spec, spec.default);
    if (fit.misfit !== undefined) {
      warnings.push({
        path: `${path}.default`,
        message: `${fit.misfit} (declared as ${raw.type ?? type}); instances receive ${JSON.stringify(fit.value)} as it is`,
      });
    }
  }
  return spec;
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

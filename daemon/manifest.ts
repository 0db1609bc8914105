import { parse as parseToml, TomlError } from 'smol-toml';
import { z } from 'zod';
import { parseByteSize } from './byte-size.ts';
import { parseDuration } from './duration.ts';
import { type ProblemDetail, ValidationError } from './errors.ts';

// ---------------------------------------------------------------------------------------------------------
// Validation helpers shared with composition.ts: TOML parsing with positions, zod issues turned into
// problems with TOML-style paths, tables that list their accepted keys, test-param value checks.
// ---------------------------------------------------------------------------------------------------------

/** Formats a path the way users write it in TOML: `testcases[1].instances.min`, `builders."exec:node"`. */
export function formatPath(segments: readonly PropertyKey[], prefix = ''): string {
  let out = prefix;
  for (const segment of segments) {
    if (typeof segment === 'number') {
      out += `[${segment}]`;
    } else {
      const key = String(segment);
      const shown = /^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key);
      out += out === '' ? shown : `.${shown}`;
    }
  }
  return out;
}

/** A short, quoted rendering of a user's value for error messages. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') {
    const quoted = JSON.stringify(value);
    return quoted.length > 62 ? `${quoted.slice(0, 58)}…"` : quoted;
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return `a date (${value.toISOString()})`;
  return 'a table';
}

const TYPE_NAMES: Readonly<Record<string, string>> = Object.freeze({
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a table',
  record: 'a table',
  array: 'an array',
});

/**
 * Turns zod issues into problems. zod's own wording ("Invalid input: expected string, received number")
 * names neither the value nor what to write instead, so the common codes are reworded; messages a schema
 * set on purpose are kept.
 */
export function problemsFromZod(error: z.ZodError, prefix: string): ProblemDetail[] {
  const problems: ProblemDetail[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      // One problem per key, so each path points at the offending key itself.
      for (const key of issue.keys) {
        problems.push({
          path: formatPath([...issue.path, key], prefix),
          message: `unknown key ${JSON.stringify(key)}; ${issue.message}`,
        });
      }
      continue;
    }
    problems.push({ path: formatPath(issue.path, prefix), message: issueMessage(issue) });
  }
  return problems;
}

function issueMessage(issue: z.core.$ZodIssue): string {
  const got = describeValue(issue.input);
  const isDefault = (prefix: string): boolean => issue.message.startsWith(prefix);
  switch (issue.code) {
    case 'invalid_type': {
      if (!isDefault('Invalid input')) return issue.message;
      const expected = TYPE_NAMES[issue.expected] ?? issue.expected;
      return issue.input === undefined ? `missing; expected ${expected}` : `expected ${expected}, got ${got}`;
    }
    case 'too_small':
      if (!isDefault('Too small')) return issue.message;
      if (issue.origin === 'string') return `must not be empty`;
      if (issue.origin === 'array') return `must hold at least ${String(issue.minimum)} entries`;
      return issue.inclusive
        ? `must be at least ${String(issue.minimum)}, got ${got}`
        : `must be greater than ${String(issue.minimum)}, got ${got}`;
    case 'too_big':
      if (!isDefault('Too big')) return issue.message;
      if (issue.origin === 'array') return `must hold at most ${String(issue.maximum)} entries`;
      return issue.inclusive
        ? `must be at most ${String(issue.maximum)}, got ${got}`
        : `must be less than ${String(issue.maximum)}, got ${got}`;
    case 'invalid_value':
      if (!isDefault('Invalid option')) return issue.message;
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${got}`;
    case 'invalid_key':
      return issue.issues[0]?.message ?? issue.message;
    case 'invalid_union':
      return issue.input === undefined ? `missing; ${issue.message}` : `${issue.message}, got ${got}`;
    default:
      return issue.message;
  }
}

/**
 * A table that rejects unknown keys and says which keys it accepts, so `global.testcase` gets
 * "accepted keys here: plan, case, …" rather than a bare "unrecognized key".
 */
export function strictTable<Shape extends z.core.$ZodLooseShape>(shape: Shape) {
  const accepted = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (issue) => (issue.code === 'unrecognized_keys' ? `accepted keys here: ${accepted}` : undefined),
  });
}

/**
 * Parses TOML, turning smol-toml's error into a ValidationError that names the line and column.
 * @param what names the document in messages, e.g. `manifest.toml`.
 * @param path the detail path for a syntax error, e.g. `manifest`.
 */
export function parseTomlDocument(text: string, what: string, path: string): Record<string, unknown> {
  try {
    return parseToml(text);
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    // smol-toml's message is "Invalid TOML document: <reason>" followed by a code excerpt; keep the reason.
    const firstLine = err.message.split('\n', 1)[0] ?? err.message;
    const reason = firstLine.replace(/^Invalid TOML document:\s*/, '');
    const message = `not valid TOML: line ${err.line}, column ${err.column}: ${reason}`;
    throw new ValidationError(`${what} is ${message}`, [{ path, message }]);
  }
}

/** Throws one ValidationError carrying every problem, when there are any. */
export function throwIfProblems(problems: readonly ProblemDetail[], what: string): void {
  if (problems.length === 0) return;
  const listed = problems.map((p) => `${p.path}: ${p.message}`).join('; ');
  const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
  throw new ValidationError(`${what} has ${count}: ${listed}`, [...problems]);
}

// ---------------------------------------------------------------------------------------------------------
// Test-param types
// ---------------------------------------------------------------------------------------------------------

export const PARAM_TYPES = Object.freeze([
  'int',
  'float',
  'bool',
  'string',
  'json',
  'duration',
  'size',
] as const);
export type ParamType = (typeof PARAM_TYPES)[number];

/**
 * Spellings seen in real manifests (written for the Go SDK) mapped onto our types. `size` matches the Go
 * SDK's `SizeParam` ("64MiB"); array-ish types are JSON because that is how `StringArrayParam` reads them.
 */
const PARAM_TYPE_SPELLINGS: Readonly<Record<string, ParamType>> = Object.freeze({
  int: 'int',
  integer: 'int',
  int32: 'int',
  int64: 'int',
  uint: 'int',
  uint32: 'int',
  uint64: 'int',
  float: 'float',
  float32: 'float',
  float64: 'float',
  double: 'float',
  number: 'float',
  bool: 'bool',
  boolean: 'bool',
  string: 'string',
  str: 'string',
  json: 'json',
  object: 'json',
  array: 'json',
  list: 'json',
  map: 'json',
  duration: 'duration',
  size: 'size',
  bytes: 'size',
});

function canonicalParamType(spelling: string): ParamType | undefined {
  const lower = spelling.trim().toLowerCase();
  if (lower.startsWith('[]')) return 'json'; // Go-style "[]string", "[]int"
  return Object.hasOwn(PARAM_TYPE_SPELLINGS, lower) ? PARAM_TYPE_SPELLINGS[lower] : undefined;
}

const PARAM_EXPECTATION: Readonly<Record<ParamType, string>> = Object.freeze({
  int: 'an integer, like 3',
  float: 'a number, like 0.5',
  bool: 'true or false',
  string: 'a string',
  json: 'JSON text, like {"a": 1} or [1, 2]',
  duration: 'a duration with a unit, like "90s" or "10m"',
  size: 'a byte size, like "512MiB" or "64MB"',
});

export type ParamValueCheck = { ok: true; value: string } | { ok: false; message: string };

/**
 * Checks a test-param value against its declared type and returns the string instances receive.
 * Strings are checked by content ("3" is a fine int: real manifests write `default = "3"`); numbers and
 * booleans are stringified; tables and arrays are only accepted for `json`, as JSON text.
 * Booleans are normalised to `true`/`false`; other values are passed on as written.
 */
export function normalizeParamValue(type: ParamType, value: unknown): ParamValueCheck {
  let text: string;
  if (typeof value === 'string') text = value;
  else if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    text = String(value);
  else if (type === 'json' && value !== null && typeof value === 'object') text = JSON.stringify(value);
  else return { ok: false, message: `expected ${PARAM_EXPECTATION[type]}, got ${describeValue(value)}` };

  const fail = (detail = ''): ParamValueCheck => ({
    ok: false,
    message: `expected ${PARAM_EXPECTATION[type]}, got ${describeValue(value)}${detail}`,
  });
  switch (type) {
    case 'string':
      return { ok: true, value: text };
    case 'int':
      return /^[+-]?\d+$/.test(text) ? { ok: true, value: text } : fail();
    case 'float':
      return /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/.test(text)
        ? { ok: true, value: text }
        : fail();
    case 'bool':
      return /^(?:true|false)$/i.test(text) ? { ok: true, value: text.toLowerCase() } : fail();
    case 'json':
      try {
        JSON.parse(text);
        return { ok: true, value: text };
      } catch (err) {
        return fail(` (${(err as Error).message})`);
      }
    case 'duration':
      return checkWith(() => parseDuration(text, 'value'), text, fail);
    case 'size':
      return checkWith(() => parseByteSize(text, 'value'), text, fail);
  }
}

function checkWith(check: () => number, text: string, fail: () => ParamValueCheck): ParamValueCheck {
  try {
    check();
    return { ok: true, value: text };
  } catch (err) {
    if (err instanceof ValidationError) return fail();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------------
// The manifest
// ---------------------------------------------------------------------------------------------------------

const ACCEPTED_TYPES = `accepted types: ${PARAM_TYPES.join(', ')} (also integer, boolean, float64, []string, …)`;

const paramSpecSchema = strictTable({
  type: z.string().transform((spelling, ctx): ParamType => {
    const type = canonicalParamType(spelling);
    if (type === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `unknown type ${JSON.stringify(spelling)}; ${ACCEPTED_TYPES}`,
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

/** `a, b, c`, or `(none)` so a message never ends in an empty list. */
export function listOrNone(items: readonly string[]): string {
  return items.length === 0 ? '(none)' : items.join(', ');
}

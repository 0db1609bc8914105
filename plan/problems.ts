/**
 * How problems in what users submit are found and told: TOML parsed with positions, zod issues turned into
 * problems with TOML-style paths, tables that list the keys they accept, every problem thrown at once.
 */
import { parse as parseToml, TomlError } from 'smol-toml';
import { z } from 'zod';
import { type ProblemDetail, ValidationError } from '../core/errors.ts';

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

const typeNames: Readonly<Record<string, string>> = Object.freeze({
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
      const expected = typeNames[issue.expected] ?? issue.expected;
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
      if (issue.input === undefined) return `missing; ${issue.message}`;
      // A schema's own message may already quote the value.
      return issue.message.includes(got) ? issue.message : `${issue.message}, got ${got}`;
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

/** `a, b, c`, or `(none)` so a message never ends in an empty list. */
export function listOrNone(items: readonly string[]): string {
  return items.length === 0 ? '(none)' : items.join(', ');
}

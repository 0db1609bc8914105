/** Test-param types as manifests declare them, and the check of a value against its type. */
import { ValidationError } from '../core/errors.ts';
import { describeValue } from './problems.ts';
import { parseByteSize, parseDuration } from './units.ts';

export const paramTypes = Object.freeze([
  'int',
  'float',
  'bool',
  'string',
  'json',
  'duration',
  'size',
  'enum',
] as const);
export type ParamType = (typeof paramTypes)[number];

/**
 * Spellings seen in real manifests (written for the Go SDK) mapped onto our types. `size` matches the Go
 * SDK's `SizeParam` ("64MiB"); array-ish types are JSON because that is how `StringArrayParam` reads them.
 */
const paramTypeSpellings: Readonly<Record<string, ParamType>> = Object.freeze({
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
  // The original's types were informational; an enum's values are checked against `values`/`options`.
  enum: 'enum',
});

export function canonicalParamType(spelling: string): ParamType | undefined {
  const lower = spelling.trim().toLowerCase();
  if (lower.startsWith('[]')) return 'json'; // Go-style "[]string", "[]int"
  return Object.hasOwn(paramTypeSpellings, lower) ? paramTypeSpellings[lower] : undefined;
}

const paramExpectation: Readonly<Record<ParamType, string>> = Object.freeze({
  int: 'an integer, like 3',
  float: 'a number, like 0.5',
  bool: 'true or false',
  string: 'a string',
  json: 'JSON text, like {"a": 1} or [1, 2]',
  duration: 'a duration with a unit, like "90s" or "10m"',
  size: 'a byte size, like "512MiB" or "64MB"',
  enum: 'one of the values the manifest lists',
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
  else return { ok: false, message: `expected ${paramExpectation[type]}, got ${describeValue(value)}` };

  const fail = (detail = ''): ParamValueCheck => ({
    ok: false,
    message: `expected ${paramExpectation[type]}, got ${describeValue(value)}${detail}`,
  });
  switch (type) {
    case 'string':
    case 'enum':
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

/** What a value is checked against: a param's declared type and, when the manifest gives them, its bounds. */
export interface ParamConstraints {
  type: ParamType;
  /** The values an `enum` (or any param) may take, from the manifest's `values` or `options`. */
  values?: readonly string[];
  min?: number;
  max?: number;
}

/** A value as instances receive it, and why it does not fit its declaration, if it does not. */
export interface ParamFit {
  value: string;
  misfit?: string;
  /** Whether the SDK's typed getter for the declared type reads the value. */
  typeFits: boolean;
}

/**
 * The string instances receive for a param value, and whether it fits the declaration. The original
 * Testground passed every value on (its types were informational), so a value that does not fit is passed
 * on as written, with the reason for a warning; values that fit are normalised as {@link normalizeParamValue}
 * does.
 */
export function fitParamValue(constraints: ParamConstraints, value: unknown): ParamFit {
  const checked = normalizeParamValue(constraints.type, value);
  if (!checked.ok) return { value: passOnText(value), misfit: checked.message, typeFits: false };
  const { values, min, max } = constraints;
  if (values !== undefined && values.length > 0 && !values.includes(checked.value)) {
    const listed = values.map((v) => JSON.stringify(v)).join(', ');
    return {
      value: checked.value,
      misfit: `expected one of ${listed}, got ${describeValue(value)}`,
      typeFits: true,
    };
  }
  if (constraints.type === 'int' || constraints.type === 'float') {
    const number = Number(checked.value);
    if (min !== undefined && number < min)
      return {
        value: checked.value,
        misfit: `${checked.value} is below the declared min ${min}`,
        typeFits: true,
      };
    if (max !== undefined && number > max)
      return {
        value: checked.value,
        misfit: `${checked.value} is above the declared max ${max}`,
        typeFits: true,
      };
  }
  return { value: checked.value, typeFits: true };
}

/** How the original turned a value into a param's string: text as it is, anything else as JSON. */
function passOnText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  return JSON.stringify(value) ?? String(value);
}

const sdkGetters: Readonly<Record<ParamType, string>> = Object.freeze({
  int: 'intParam',
  float: 'floatParam',
  bool: 'booleanParam',
  string: 'stringParam',
  json: 'jsonParam',
  duration: 'durationParam',
  size: 'sizeParam',
  enum: 'stringParam',
});

/** The SDK getter that reads a param of this type, for messages that say what will happen at run time. */
export function sdkGetterFor(type: ParamType): string {
  return sdkGetters[type];
}

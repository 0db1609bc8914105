/**
 * Go's predefined template functions (text/template/funcs.go): and, or, not, len, index, slice, print,
 * printf, println, html, js, urlquery, call, eq, ne, lt, le, gt, ge. Their errors use Go's wording.
 */
import { formatValue, sprint, sprintf, sprintln } from './go-format.ts';
import type { FunctionTable, TemplateFunction } from './template-function.ts';
import { GoMap, compareStrings, goTypeName, isTrue, type GoValue, type MaybeValue } from './values.ts';

/** print's arguments are `interface{}`: the executor has already turned missing values into nil. */
const asValues = (args: MaybeValue[]): GoValue[] => args.map((arg) => arg ?? null);

/** html, js and urlquery take one string as is, or print their arguments as `print` would. */
const escaperInput = (args: MaybeValue[]): string => {
  const [only] = args;
  return args.length === 1 && typeof only === 'string' ? only : sprint(asValues(args));
};

function indexArg(index: MaybeValue, cap: number): number {
  if (index === undefined || index === null) throw new Error('cannot index slice/array with nil');
  if (typeof index !== 'bigint') throw new Error(`cannot index slice/array with type ${goTypeName(index)}`);
  if (index < 0n || index > BigInt(cap)) throw new Error(`index out of range: ${index}`);
  return Number(index);
}

function index(args: MaybeValue[]): MaybeValue {
  const [first, ...indexes] = args;
  let item: MaybeValue = first;
  if (item === undefined) throw new Error('index of untyped nil');
  for (const key of indexes) {
    if (item === null || item === undefined) throw new Error('index of nil pointer');
    if (typeof item === 'string') {
      const bytes: Buffer = Buffer.from(item, 'utf8');
      const at = indexArg(key, bytes.length);
      if (at === bytes.length) throw new Error(`index out of range: ${at}`);
      item = BigInt(bytes[at] ?? 0);
    } else if (Array.isArray(item)) {
      const at = indexArg(key, item.length);
      if (at === item.length) throw new Error(`index out of range: ${at}`);
      item = item[at] ?? null;
    } else if (item instanceof GoMap) {
      if (key === undefined || key === null) throw new Error('value is nil; should be of type string');
      if (typeof key !== 'string') throw new Error(`value has type ${goTypeName(key)}; should be string`);
      // A missing key gives the element type's zero value, unlike `.key`.
      item = item.entries.has(key) ? item.entries.get(key) : item.elemType === 'string' ? '' : null;
    } else {
      throw new Error(`can't index item of type ${goTypeName(item)}`);
    }
  }
  return item;
}

function slice(args: MaybeValue[]): MaybeValue {
  const [item, ...indexes] = args;
  if (item === undefined || item === null) throw new Error('slice of untyped nil');
  if (indexes.length > 3) throw new Error(`too many slice indexes: ${indexes.length}`);
  const bytes = typeof item === 'string' ? Buffer.from(item, 'utf8') : undefined;
  if (bytes && indexes.length === 3) throw new Error('cannot 3-index slice a string');
  if (!bytes && !Array.isArray(item)) throw new Error(`can't slice item of type ${goTypeName(item)}`);
  const length = bytes ? bytes.length : (item as GoValue[]).length;
  const bounds = [0, length];
  indexes.forEach((key, i) => (bounds[i] = indexArg(key, length)));
  const [low = 0, high = length] = bounds;
  if (low > high) throw new Error(`invalid slice index: ${low} > ${high}`);
  if (indexes.length === 3 && high > (bounds[2] ?? 0))
    throw new Error(`invalid slice index: ${high} > ${bounds[2] ?? 0}`);
  return bytes ? bytes.subarray(low, high).toString('utf8') : (item as GoValue[]).slice(low, high);
}

function length([item]: MaybeValue[]): MaybeValue {
  if (item === undefined || item === null) throw new Error('len of nil pointer');
  if (typeof item === 'string') return BigInt(Buffer.byteLength(item, 'utf8'));
  if (Array.isArray(item)) return BigInt(item.length);
  if (item instanceof GoMap) return BigInt(item.entries.size);
  throw new Error(`len of type ${goTypeName(item)}`);
}

type BasicKind = 'bool' | 'int' | 'float' | 'string' | 'invalid';

function basicKind(value: MaybeValue): BasicKind {
  switch (typeof value) {
    case 'boolean':
      return 'bool';
    case 'bigint':
      return 'int';
    case 'number':
      return 'float';
    case 'string':
      return 'string';
    default:
      return 'invalid';
  }
}

const incompatible = 'incompatible types for comparison';
const invalidType = 'invalid type for comparison';

function equal(first: MaybeValue, other: MaybeValue): boolean {
  const [k1, k2] = [basicKind(first), basicKind(other)];
  if (k1 !== k2) {
    if (first !== undefined && other !== undefined) throw new Error(incompatible);
    return false;
  }
  if (k1 !== 'invalid') return first === other;
  if (first === undefined || first === null || other === undefined || other === null)
    return (first ?? null) === (other ?? null);
  const kindOf = (v: GoValue): string => (Array.isArray(v) ? 'slice' : goTypeName(v));
  if (kindOf(first) !== kindOf(other))
    throw new Error(
      `non-comparable types ${formatValue(first)}: ${goTypeName(first)}, ${goTypeName(other)}: ${formatValue(other)}`,
    );
  if (Array.isArray(other) || other instanceof GoMap)
    throw new Error(`non-comparable type ${formatValue(other)}: ${goTypeName(other)}`);
  if (first instanceof Date && other instanceof Date) return first.toISOString() === other.toISOString();
  return first === other;
}

function eq([first, ...others]: MaybeValue[]): MaybeValue {
  if (others.length === 0) throw new Error('missing argument for comparison');
  return others.some((other) => equal(first, other));
}

function lessThan(a: MaybeValue, b: MaybeValue): boolean {
  const [k1, k2] = [basicKind(a), basicKind(b)];
  if (k1 === 'invalid' || k2 === 'invalid') throw new Error(invalidType);
  if (k1 !== k2) throw new Error(incompatible);
  if (k1 === 'bool') throw new Error(invalidType);
  if (k1 === 'string') return compareStrings(a as string, b as string) < 0;
  return (a as number | bigint) < (b as number | bigint);
}

const htmlEscapes: Record<string, string> = {
  '"': '&#34;',
  "'": '&#39;',
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '\0': '\uFFFD',
};

function jsEscape(text: string): string {
  let out = '';
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    if (char === '\\' || char === "'" || char === '"') out += `\\${char}`;
    else if ('<>&='.includes(char) || code < 0x20)
      out += `\\u${code.toString(16).toUpperCase().padStart(4, '0')}`;
    else out += char;
  }
  return out;
}

/** url.QueryEscape: unreserved characters stay, a space becomes `+`, the rest `%XX`. */
function queryEscape(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const char = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-_.~]/.test(char)) out += char;
    else if (char === ' ') out += '+';
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

const builtinList: Record<string, TemplateFunction> = {
  // Evaluated by the executor, which needs the unevaluated arguments.
  and: { params: ['value'], variadic: 'value', shortCircuit: true, call: () => undefined },
  or: { params: ['value'], variadic: 'value', shortCircuit: true, call: () => undefined },
  not: { params: ['value'], call: ([value]) => !isTrue(value) },
  len: { params: ['value'], call: length },
  index: { params: ['value'], variadic: 'value', call: index },
  slice: { params: ['value'], variadic: 'value', call: slice },
  call: {
    params: ['value'],
    variadic: 'value',
    call: ([fn]) => {
      // Template data here never holds functions.
      throw new Error(
        fn === undefined || fn === null ? 'call of nil' : `non-function of type ${goTypeName(fn)}`,
      );
    },
  },
  print: { params: [], variadic: 'any', call: (args) => sprint(asValues(args)) },
  printf: {
    params: ['string'],
    variadic: 'any',
    call: ([format, ...args]) => sprintf(format as string, asValues(args)),
  },
  println: { params: [], variadic: 'any', call: (args) => sprintln(asValues(args)) },
  html: {
    params: [],
    variadic: 'any',
    call: (args) => escaperInput(args).replace(/["'&<>\0]/g, (char) => htmlEscapes[char] ?? char),
  },
  js: { params: [], variadic: 'any', call: (args) => jsEscape(escaperInput(args)) },
  urlquery: { params: [], variadic: 'any', call: (args) => queryEscape(escaperInput(args)) },
  eq: { params: ['value'], variadic: 'value', call: eq },
  ne: { params: ['value', 'value'], call: ([a, b]) => !equal(a, b) },
  lt: { params: ['value', 'value'], call: ([a, b]) => lessThan(a, b) },
  le: { params: ['value', 'value'], call: ([a, b]) => lessThan(a, b) || equal(a, b) },
  gt: { params: ['value', 'value'], call: ([a, b]) => !(lessThan(a, b) || equal(a, b)) },
  ge: { params: ['value', 'value'], call: ([a, b]) => !lessThan(a, b) },
};

/** The predefined functions, by name. */
export function builtinFunctions(): FunctionTable {
  return new Map(Object.entries(builtinList));
}

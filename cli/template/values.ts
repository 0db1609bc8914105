/**
 * How Go values are held while a template runs. Templates see the difference between an int and a float,
 * between a map of strings and a map of anything, and between a struct's fields and a map's keys, so
 * these are kept apart:
 *
 * | Go | here |
 * |---|---|
 * | `string` | `string` |
 * | `int`, `int64` | `bigint` |
 * | `float64` | `number` |
 * | `bool` | `boolean` |
 * | a nil interface, map or slice | `null` |
 * | a slice | an array |
 * | `map[string]string`, `map[string]interface{}` | {@link GoMap} |
 * | the data struct (`.Env`) | {@link GoStruct} |
 * | a TOML date or time (`time.Time`) | {@link TomlDate} |
 *
 * `undefined` is Go's invalid value: a missing map key, printed as `<no value>`.
 */
import { TomlDate } from 'smol-toml';

export type GoValue = string | bigint | number | boolean | null | GoValue[] | GoMap | GoStruct | TomlDate;

/** A value, or the invalid value Go gives for a missing map key. */
export type MaybeValue = GoValue | undefined;

export class GoMap {
  constructor(
    readonly entries: Map<string, GoValue>,
    /** The element type: `string` for the environment, `interface {}` for loaded resources. */
    readonly elemType: 'string' | 'interface {}',
  ) {}

  static of(entries: Iterable<[string, GoValue]>, elemType: GoMap['elemType'] = 'interface {}'): GoMap {
    return new GoMap(new Map(entries), elemType);
  }

  /** Keys in Go's order for ranging and printing: sorted. */
  sortedKeys(): string[] {
    return [...this.entries.keys()].sort(compareStrings);
  }
}

/** A struct with exported fields, such as the composition's data `{ Env }`. */
export class GoStruct {
  constructor(
    readonly typeName: string,
    readonly fields: Map<string, GoValue>,
  ) {}
}

export { TomlDate };

/** The Go type of a value, for messages (`%T` and "wrong type for value"). */
export function goTypeName(value: MaybeValue): string {
  if (value === undefined || value === null) return '<nil>';
  if (typeof value === 'string') return 'string';
  if (typeof value === 'bigint') return 'int';
  if (typeof value === 'number') return 'float64';
  if (typeof value === 'boolean') return 'bool';
  if (Array.isArray(value)) return '[]interface {}';
  if (value instanceof GoMap) return `map[string]${value.elemType}`;
  if (value instanceof GoStruct) return value.typeName;
  return 'time.Time';
}

/** Go's template truth: false, 0, nil, and empty strings, slices and maps are false. */
export function isTrue(value: MaybeValue): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value === 'string' || Array.isArray(value)) return value.length > 0;
  if (typeof value === 'bigint') return value !== 0n;
  if (typeof value === 'number') return value !== 0;
  if (typeof value === 'boolean') return value;
  if (value instanceof GoMap) return value.entries.size > 0;
  return true;
}

/** Go compares strings byte by byte (UTF-8), which differs from UTF-16 order beyond the BMP. */
export function compareStrings(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

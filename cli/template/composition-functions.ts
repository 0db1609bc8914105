/**
 * The helpers the original Testground CLI gives composition templates (pkg/cmd/template.go), with the
 * same names, signatures and behaviour:
 *
 * - `load_resource "path.toml"`: a TOML file, relative to the composition's directory, as a map.
 * - `withEnv map`: a copy of the map with `Env` added, so a `{{ template }}` called with it sees `$.Env`.
 * - `pick map "key"`: a map holding only that key (nil when the map lacks it).
 * - `toml value`: a map written as TOML.
 * - `split "a,b"`: the string split at commas.
 * - `atoi "12"`: the string as an int.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseToml, TomlDate, TomlError } from 'smol-toml';
import type { TemplateFunction } from './template-function.ts';
import { encodeToml } from './toml-encoder.ts';
import { GoMap, type GoValue, type MaybeValue } from './values.ts';

export interface CompositionFunctionContext {
  /** The composition file's path as given; resources are read relative to its directory. */
  file: string;
  /** `.Env`, the map `withEnv` adds. */
  env: GoMap;
}

export function compositionFunctions(context: CompositionFunctionContext): Map<string, TemplateFunction> {
  const asMap = (value: MaybeValue): GoMap => (value instanceof GoMap ? value : GoMap.of([]));
  return new Map<string, TemplateFunction>([
    [
      'load_resource',
      { params: ['string'], call: ([resource]) => loadResource(context.file, resource as string) },
    ],
    [
      'withEnv',
      {
        params: ['map'],
        call: ([table]) => GoMap.of([...asMap(table).entries, ['Env', context.env]]),
      },
    ],
    [
      'pick',
      {
        params: ['map', 'string'],
        call: ([table, key]) => GoMap.of([[key as string, asMap(table).entries.get(key as string) ?? null]]),
      },
    ],
    ['toml', { params: ['any'], call: ([value]) => encodeToml(value) }],
    ['split', { params: ['string'], call: ([text]) => (text as string).split(',') }],
    ['atoi', { params: ['string'], call: ([text]) => atoi(text as string) }],
  ]);
}

/** strconv.Atoi: an optional sign and decimal digits, within 64 bits. */
function atoi(text: string): bigint {
  if (!/^[+-]?\d+$/.test(text))
    throw new Error(`strconv.Atoi: parsing ${JSON.stringify(text)}: invalid syntax`);
  const value = BigInt(text);
  if (value < -(2n ** 63n) || value >= 2n ** 63n)
    throw new Error(`strconv.Atoi: parsing ${JSON.stringify(text)}: value out of range`);
  return value;
}

const fileErrors: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EISDIR: 'is a directory',
  ENOTDIR: 'not a directory',
};

function loadResource(compositionFile: string, resource: string): GoMap {
  // Joined like Go's filepath.Join: even an absolute path stays under the composition's directory.
  const file = path.join(path.dirname(compositionFile), resource);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    throw new Error(`open ${file}: ${fileErrors[code] ?? (err as Error).message}`, { cause: err });
  }
  try {
    return fromToml(parseToml(text, { integersAsBigInt: true })) as GoMap;
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    const reason = (err.message.split('\n', 1)[0] ?? '').replace(/^Invalid TOML document:\s*/, '');
    throw new Error(
      `load_resource ${resource} failed: toml: line ${err.line}, column ${err.column}: ${reason}`,
      {
        cause: err,
      },
    );
  }
}

/** smol-toml's values as the template's Go values: tables become maps of `interface{}`. */
function fromToml(value: unknown): GoValue {
  if (Array.isArray(value)) return value.map(fromToml);
  if (value instanceof TomlDate) return value;
  if (typeof value === 'object' && value !== null)
    return GoMap.of(Object.entries(value).map(([key, entry]) => [key, fromToml(entry)]));
  return value as GoValue;
}

/**
 * A function a template can call, with Go's parameter types: the executor checks and converts each
 * argument the way text/template does for a Go function of that signature, so `atoi 1` fails with
 * "expected string; found 1" and `withEnv .Env` with "expected map[string]interface {}".
 */
import type { MaybeValue } from './values.ts';

/**
 * - `string`, `int`, `bool`: that Go type; a literal must be one, a missing value is an error.
 * - `any`: `interface{}`; a missing value becomes nil.
 * - `map`: `map[string]interface{}`; a missing value becomes a nil map.
 * - `value`: `reflect.Value`, as Go's own builtins take it; a missing value stays missing (`undefined`).
 */
export type ParamType = 'string' | 'int' | 'bool' | 'any' | 'map' | 'value';

export interface TemplateFunction {
  params: readonly ParamType[];
  /** The type of each further argument, for a variadic function. */
  variadic?: ParamType;
  /** `and` and `or` evaluate their arguments lazily and return one of them. */
  shortCircuit?: boolean;
  /** Throws an Error whose message the template reports as `error calling <name>: <message>`. */
  call(args: MaybeValue[]): MaybeValue;
}

export type FunctionTable = ReadonlyMap<string, TemplateFunction>;

/** The Go spelling of a parameter type, for messages. */
export function paramTypeName(type: ParamType): string {
  switch (type) {
    case 'any':
      return 'interface {}';
    case 'map':
      return 'map[string]interface {}';
    case 'value':
      return 'reflect.Value';
    default:
      return type;
  }
}

/**
 * Compositions are Go text/templates, as in the original Testground CLI: it renders the file with the
 * environment before parsing it, so `{{ .Env.X }}`, `load_resource`, `withEnv`, `pick`, `toml`, `split`
 * and `atoi` work in compositions written for it. A file without `{{` comes back unchanged.
 *
 * The language is Go 1.19's text/template (the original was built with Go 1.18/1.19), with its builtins
 * and no others (the original added no sprig). Where this renderer differs from Go:
 * - errors give 1-based line and column in characters, for parse errors too (Go: 0-based byte columns,
 *   parse errors with a line only), and say `executing <node>` rather than `executing "tpl" at <node>`;
 * - complex numbers (`1+2i`) and hex floats (`0x1p-2`) are refused at parse time;
 * - integers read from TOML are `int` in messages and `%T` (Go: `int64`); arrays are `[]interface {}`;
 * - deep `{{ template }}` recursion stops at 1000 calls or when the stack runs out (Go: 100000);
 * - `call` always fails: template data here never holds functions; time values have no methods.
 */
import { builtinFunctions } from './builtins.ts';
import { compositionFunctions } from './composition-functions.ts';
import { executeTemplate } from './executor.ts';
import { parseTemplate } from './parser.ts';
import type { TemplateSource } from './template-error.ts';
import { GoMap, GoStruct } from './values.ts';

export interface RenderCompositionOptions {
  /** The composition's path as the user gave it: named in errors, and the base of `load_resource`. */
  file: string;
  /** `.Env` (usually `process.env`); unset variables print `<no value>`, as in Go. */
  env: Readonly<Record<string, string | undefined>>;
}

/**
 * Renders a composition template.
 *
 * @throws TemplateError (`invalid_request`) with the file, line and column, e.g.
 *   `comp.toml:12:7: function "lod_resource" not defined`.
 */
export function renderComposition(text: string, options: RenderCompositionOptions): string {
  const source: TemplateSource = { file: options.file, text };
  const env = GoMap.of(
    Object.entries(options.env).flatMap(([name, value]) => (value === undefined ? [] : [[name, value]])),
    'string',
  );
  const functions = new Map([...builtinFunctions(), ...compositionFunctions({ file: options.file, env })]);
  const parsed = parseTemplate(source, new Set(functions.keys()));
  const data = new GoStruct('compositionData', new Map([['Env', env]]));
  return executeTemplate({ source, parsed, functions, data });
}

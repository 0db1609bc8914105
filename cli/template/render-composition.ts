/**
 * Compositions are Go text/templates, as in the original Testground CLI: it renders the file with the
 * environment before parsing it, so `{{ .Env.X }}`, `load_resource`, `withEnv`, `pick`, `toml`, `split`
 * and `atoi` work in compositions written for it. A file without `{{` comes back unchanged.
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

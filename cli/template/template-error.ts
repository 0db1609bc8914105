import { TestgroundError } from '../../core/errors.ts';

/** The template being rendered: its name in messages (the path the user gave) and its text. */
export interface TemplateSource {
  file: string;
  text: string;
}

/**
 * A composition template that does not parse or does not render. The message points into the template
 * the way compilers do (`comp.toml:12:7: function "lod_resource" not defined`); line and column are
 * 1-based and count characters.
 */
export class TemplateError extends TestgroundError {
  readonly code = 'invalid_request';

  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number,
    readonly reason: string,
  ) {
    super(`${file}:${line}:${column}: ${reason}`, [
      { path: 'composition', message: `template ${file}:${line}:${column}: ${reason}` },
    ]);
  }

  /** The error at `offset`, a UTF-16 index into the source text. */
  static at(source: TemplateSource, offset: number, reason: string): TemplateError {
    const { line, column } = positionAt(source.text, offset);
    return new TemplateError(source.file, line, column, reason);
  }
}

export function positionAt(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const lineStart = before.lastIndexOf('\n') + 1;
  let line = 1;
  for (let i = before.indexOf('\n'); i !== -1; i = before.indexOf('\n', i + 1)) line++;
  // Columns count characters (code points), as editors do.
  return { line, column: [...before.slice(lineStart)].length + 1 };
}

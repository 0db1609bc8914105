/**
 * Go's literal syntax as text/template reads it: quoted strings (strconv.Unquote), character constants and
 * numbers (text/template/parse's NumberNode rules). Each function throws an Error whose message the
 * parser reports at the literal.
 */

/** A number constant: an int when it is written as one, a float64 when it has `.`, `e` or `p`. */
export interface NumberConstant {
  text: string;
  /** The value as a Go int, when it has one (`3`, `'a'`, but also `1e3`). */
  int?: bigint;
  /** The value as a Go float64, when it has one. */
  float?: number;
}

const minInt64 = -(2n ** 63n);
const maxInt64 = 2n ** 63n - 1n;
const maxUint64 = 2n ** 64n - 1n;

/** Unquotes a Go string literal, interpreted (`"a\tb"`) or raw (`` `a\tb` ``). */
export function unquoteString(literal: string): string {
  if (literal.startsWith('`')) {
    // Go's strconv.Unquote drops carriage returns from raw strings.
    return literal.slice(1, -1).replaceAll('\r', '');
  }
  const body = literal.slice(1, -1);
  const bytes: number[] = [];
  for (let i = 0; i < body.length;) {
    const { bytes: chunk, next } = unquoteChar(body, i, '"');
    bytes.push(...chunk);
    i = next;
  }
  return Buffer.from(bytes).toString('utf8');
}

/** The code point of a character constant such as `'a'` or `'\n'`. */
export function unquoteCharConstant(literal: string): number {
  const body = literal.slice(1, -1);
  if (body.length === 0) throw new Error(`malformed character constant: ${literal}`);
  const { bytes, next, codePoint } = unquoteChar(body, 0, "'");
  if (next !== body.length) throw new Error(`malformed character constant: ${literal}`);
  return codePoint ?? bytes[0] ?? 0;
}

const simpleEscapes: Record<string, number> = {
  a: 7,
  b: 8,
  f: 12,
  n: 10,
  r: 13,
  t: 9,
  v: 11,
  '\\': 92,
};

/** One character or escape sequence of a quoted literal, as UTF-8 bytes. */
function unquoteChar(
  body: string,
  at: number,
  quote: '"' | "'",
): { bytes: number[]; next: number; codePoint?: number } {
  const c = body.codePointAt(at) ?? 0;
  if (c !== 0x5c) {
    if (String.fromCodePoint(c) === quote) throw new Error(`invalid syntax: unescaped ${quote}`);
    const char = String.fromCodePoint(c);
    return { bytes: [...Buffer.from(char, 'utf8')], next: at + char.length, codePoint: c };
  }
  const escape = body[at + 1] ?? '';
  const simple = simpleEscapes[escape];
  if (simple !== undefined) return { bytes: [simple], next: at + 2, codePoint: simple };
  if (escape === quote) return { bytes: [quote.charCodeAt(0)], next: at + 2, codePoint: quote.charCodeAt(0) };
  const hex = (length: number): number => {
    const digits = body.slice(at + 2, at + 2 + length);
    if (!new RegExp(`^[0-9a-fA-F]{${length}}$`).test(digits))
      throw new Error(`invalid syntax: bad escape \\${escape}${digits}`);
    return parseInt(digits, 16);
  };
  switch (escape) {
    case 'x': {
      const value = hex(2);
      return { bytes: [value], next: at + 4, codePoint: value };
    }
    case 'u':
    case 'U': {
      const length = escape === 'u' ? 4 : 8;
      const value = hex(length);
      if (value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff))
        throw new Error(`invalid syntax: \\${escape} escape of an invalid code point`);
      return {
        bytes: [...Buffer.from(String.fromCodePoint(value), 'utf8')],
        next: at + 2 + length,
        codePoint: value,
      };
    }
  }
  if (/^[0-7]$/.test(escape)) {
    const digits = body.slice(at + 1, at + 4);
    if (!/^[0-7]{3}$/.test(digits) || parseInt(digits, 8) > 255)
      throw new Error(`invalid syntax: bad octal escape \\${digits}`);
    return { bytes: [parseInt(digits, 8)], next: at + 4, codePoint: parseInt(digits, 8) };
  }
  throw new Error(`invalid syntax: unknown escape \\${escape}`);
}

/** A Go integer literal with base prefix and underscores (strconv.ParseInt with base 0), or undefined. */
function parseInteger(text: string): bigint | undefined {
  const match = /^([+-]?)(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0[0-7_]*|[1-9][0-9_]*)$/.exec(text);
  if (!match) return undefined;
  const [, sign, digits = ''] = match;
  const prefixed = /^0[xXoObB]/.test(digits);
  // Underscores only between digits, or after a base prefix.
  const body = prefixed ? digits.slice(2) : digits;
  if (/__|_$/.test(body) || (!prefixed && body.startsWith('_'))) return undefined;
  const clean = digits.replaceAll('_', '');
  const value = /^0[0-7]+$/.test(clean) ? BigInt(`0o${clean.slice(1)}`) : BigInt(clean);
  return sign === '-' ? -value : value;
}

/** Parses a number token the way text/template does; throws for what Go refuses. */
export function parseNumber(text: string): NumberConstant {
  if (text.endsWith('i')) throw new Error(`complex constants are not supported: "${text}"`);
  const integer = parseInteger(text);
  if (integer !== undefined) {
    if (integer > maxUint64 || integer < minInt64) throw new Error(`integer overflow: "${text}"`);
    return {
      text,
      ...(integer <= maxInt64 ? { int: integer } : {}),
      float: Number(integer),
    };
  }
  const decimal = text.replaceAll('_', '');
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(decimal) || /__|_\.|\._|^_|_$/.test(text))
    throw new Error(`illegal number syntax: "${text}"`);
  const float = Number(decimal);
  if (!Number.isFinite(float)) throw new Error(`illegal number syntax: "${text}"`);
  if (!/[.eE]/.test(text)) throw new Error(`integer overflow: "${text}"`);
  const asInt = Number.isInteger(float) && Math.abs(float) < 2 ** 63 ? BigInt(float) : undefined;
  return { text, float, ...(asInt !== undefined ? { int: asInt } : {}) };
}

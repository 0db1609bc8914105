/** Go's strconv.Quote and QuoteRune: what `%q` prints and how Go's messages quote text. */

const isPrintable = (char: string): boolean => /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u.test(char);

const namedEscapes: Record<number, string> = {
  7: '\\a',
  8: '\\b',
  12: '\\f',
  10: '\\n',
  13: '\\r',
  9: '\\t',
  11: '\\v',
};

function quoteChar(char: string, quote: '"' | "'"): string {
  if (char === quote || char === '\\') return `\\${char}`;
  if (isPrintable(char)) return char;
  const code = char.codePointAt(0) ?? 0;
  const named = namedEscapes[code];
  if (named) return named;
  if (code < 0x20 || code === 0x7f) return `\\x${code.toString(16).padStart(2, '0')}`;
  if (code < 0x10000) return `\\u${code.toString(16).padStart(4, '0')}`;
  return `\\U${code.toString(16).padStart(8, '0')}`;
}

/** `"a\tb"`: double-quoted, with Go escapes for what is not printable. */
export function quoteGo(text: string): string {
  let quoted = '"';
  for (const char of text) quoted += quoteChar(char, '"');
  return `${quoted}"`;
}

/** `'a'`: a code point as Go quotes a rune. */
export function quoteRune(codePoint: number): string {
  const valid = codePoint >= 0 && codePoint <= 0x10ffff && !(codePoint >= 0xd800 && codePoint <= 0xdfff);
  return `'${quoteChar(String.fromCodePoint(valid ? codePoint : 0xfffd), "'")}'`;
}

/**
 * Finds the source text of a member inside a JSON document, so a value can be stored and returned
 * byte for byte: re-encoding a parsed value would lose digits of integers beyond 2^53, number spellings
 * (`1.0`) and escapes.
 */

const doubleQuote = 0x22;
const backslash = 0x5c;
const openBrace = 0x7b;
const closeBrace = 0x7d;
const openBracket = 0x5b;
const closeBracket = 0x5d;
const comma = 0x2c;
const colon = 0x3a;

/**
 * Returns the exact source text of the value at `path` (object keys from the root), or `undefined` when
 * a step is missing or not an object. `text` must already be known to be valid JSON (e.g. it went
 * through `JSON.parse`): this scanner does not validate. Duplicate keys resolve to the last one, like
 * `JSON.parse`.
 */
export function rawJsonMember(text: string, path: readonly string[]): string | undefined {
  let start = skipWhitespace(text, 0);
  let end = skipValue(text, start);
  for (const key of path) {
    const span = findMember(text, start, key);
    if (span === undefined) return undefined;
    [start, end] = span;
  }
  return text.slice(start, end);
}

function findMember(text: string, objectStart: number, key: string): [number, number] | undefined {
  if (text.charCodeAt(objectStart) !== openBrace) return undefined;
  let found: [number, number] | undefined;
  let i = skipWhitespace(text, objectStart + 1);
  while (text.charCodeAt(i) !== closeBrace) {
    const keyEnd = skipString(text, i);
    const rawKey = text.slice(i + 1, keyEnd - 1);
    const name = rawKey.includes('\\') ? (JSON.parse(text.slice(i, keyEnd)) as string) : rawKey;
    i = skipWhitespace(text, keyEnd);
    if (text.charCodeAt(i) !== colon) return undefined;
    const valueStart = skipWhitespace(text, i + 1);
    const valueEnd = skipValue(text, valueStart);
    if (name === key) found = [valueStart, valueEnd];
    i = skipWhitespace(text, valueEnd);
    if (text.charCodeAt(i) === comma) i = skipWhitespace(text, i + 1);
    else if (text.charCodeAt(i) !== closeBrace) return undefined;
  }
  return found;
}

function skipWhitespace(text: string, i: number): number {
  let j = i;
  for (;;) {
    const c = text.charCodeAt(j);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return j;
    j += 1;
  }
}

/** `i` is at an opening quote; returns the index just past the closing one. */
function skipString(text: string, i: number): number {
  let from = i + 1;
  for (;;) {
    const quote = text.indexOf('"', from);
    if (quote < 0) return text.length;
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === backslash) backslashes += 1;
    if (backslashes % 2 === 0) return quote + 1;
    from = quote + 1;
  }
}

function skipValue(text: string, i: number): number {
  const first = text.charCodeAt(i);
  if (first === doubleQuote) return skipString(text, i);
  if (first === openBrace || first === openBracket) {
    // Iterative rather than recursive, so deeply nested payloads cannot overflow the stack.
    let depth = 0;
    let j = i;
    while (j < text.length) {
      const c = text.charCodeAt(j);
      if (c === doubleQuote) {
        j = skipString(text, j);
        continue;
      }
      if (c === openBrace || c === openBracket) depth += 1;
      else if (c === closeBrace || c === closeBracket) {
        depth -= 1;
        if (depth === 0) return j + 1;
      }
      j += 1;
    }
    return text.length;
  }
  let j = i;
  while (j < text.length) {
    const c = text.charCodeAt(j);
    if (c === comma || c === closeBrace || c === closeBracket || c <= 0x20) return j;
    j += 1;
  }
  return j;
}

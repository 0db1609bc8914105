/**
 * Where a JSON document breaks. V8 names a position for some syntax errors ("… in JSON at position 7") but
 * not for others ("Unexpected token '}', … is not valid JSON"); this finds the offset itself then.
 */

/** `line L, column C: <V8's reason>` for a syntax error of `JSON.parse(text)`. */
export function describeJsonSyntaxError(text: string, error: SyntaxError): string {
  const stated = /at position (\d+)/.exec(error.message)?.[1];
  const offset = stated === undefined ? findJsonErrorOffset(text) : Number(stated);
  const reason = error.message.replace(/\s+/g, ' ');
  return offset === undefined ? reason : `${lineAndColumn(text, offset)}: ${reason}`;
}

function lineAndColumn(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  return `line ${line}, column ${column}`;
}

/** Thrown inside the scanner only; carries the offset of the first character that breaks JSON. */
class JsonSyntaxAt {
  constructor(readonly offset: number) {}
}

/** A strict JSON scanner used only to locate a syntax error V8 did not place. */
function findJsonErrorOffset(text: string): number | undefined {
  let i = 0;
  const fail = (): never => {
    throw new JsonSyntaxAt(i);
  };
  const skipSpace = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text.charAt(i))) i += 1;
  };
  const expect = (literal: string): void => {
    for (const ch of literal) {
      if (text.charAt(i) !== ch) fail();
      i += 1;
    }
  };
  const string = (): void => {
    expect('"');
    for (;;) {
      if (i >= text.length) fail();
      const ch = text.charAt(i);
      if (ch === '"') {
        i += 1;
        return;
      }
      if (ch < ' ') fail();
      if (ch === '\\') {
        i += 1;
        const escape = text.charAt(i);
        if (escape === 'u') {
          i += 1;
          for (let k = 0; k < 4; k += 1) {
            if (!/[0-9a-fA-F]/.test(text.charAt(i))) fail();
            i += 1;
          }
          continue;
        }
        if (!'"\\/bfnrt'.includes(escape) || escape === '') fail();
      }
      i += 1;
    }
  };
  const number = (): void => {
    const match = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i));
    if (!match) fail();
    i += match?.[0].length ?? 0;
  };
  const value = (): void => {
    skipSpace();
    const ch = text.charAt(i);
    if (ch === '{') {
      i += 1;
      skipSpace();
      if (text.charAt(i) === '}') {
        i += 1;
        return;
      }
      for (;;) {
        skipSpace();
        string();
        skipSpace();
        expect(':');
        value();
        skipSpace();
        if (text.charAt(i) === ',') i += 1;
        else return expect('}');
      }
    }
    if (ch === '[') {
      i += 1;
      skipSpace();
      if (text.charAt(i) === ']') {
        i += 1;
        return;
      }
      for (;;) {
        value();
        skipSpace();
        if (text.charAt(i) === ',') i += 1;
        else return expect(']');
      }
    }
    if (ch === '"') return string();
    if (ch === 't') return expect('true');
    if (ch === 'f') return expect('false');
    if (ch === 'n') return expect('null');
    return number();
  };
  try {
    value();
    skipSpace();
    if (i < text.length) fail();
    return undefined;
  } catch (err) {
    if (err instanceof JsonSyntaxAt) return err.offset;
    throw err;
  }
}

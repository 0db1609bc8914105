/**
 * Splits a Go text/template into tokens, following Go's lexer (text/template/parse/lex.go): text outside
 * `{{ }}`, trim markers `{{- ` and ` -}}` that eat the white space of the neighbouring text, comments
 * (`{{/*` up to the closing star-slash and `}}`), and inside an action the words of the language. A lexical error becomes an `error` token
 * so the parser reports it where it meets it, after any earlier syntax error, as Go does.
 */

export type TokenType =
  | 'text'
  | 'leftDelim'
  | 'rightDelim'
  | 'space'
  | 'assign'
  | 'declare'
  | 'pipe'
  | 'leftParen'
  | 'rightParen'
  | 'char'
  | 'string'
  | 'rawString'
  | 'charConstant'
  | 'number'
  | 'bool'
  | 'field'
  | 'variable'
  | 'identifier'
  | 'dot'
  | 'nil'
  | 'keyword'
  | 'error'
  | 'eof';

export interface Token {
  type: TokenType;
  /** The token's text; for `error`, the message. */
  value: string;
  /** UTF-16 index of the token's first character in the template. */
  offset: number;
}

export const keywords = [
  'block',
  'break',
  'continue',
  'define',
  'else',
  'end',
  'if',
  'range',
  'template',
  'with',
];

const leftDelim = '{{';
const rightDelim = '}}';
const leftComment = '/*';
const rightComment = '*/';
const spaceChars = ' \t\r\n';

const isSpace = (c: string | undefined): boolean => c !== undefined && c !== '' && spaceChars.includes(c);
const isAlphaNumeric = (c: string | undefined): boolean => c !== undefined && /^[\p{L}\p{Nd}_]$/u.test(c);
const hasLeftTrimMarker = (text: string, at: number): boolean => text[at] === '-' && isSpace(text[at + 1]);
const hasRightTrimMarker = (text: string, at: number): boolean => isSpace(text[at]) && text[at + 1] === '-';

/** The code point at `at` as a string (two UTF-16 units for characters outside the BMP). */
const charAt = (text: string, at: number): string => {
  const code = text.codePointAt(at);
  return code === undefined ? '' : String.fromCodePoint(code);
};

/** `U+0023 '#'`, the way Go's `%#U` names a character. */
export const describeChar = (c: string): string =>
  `U+${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')} '${c}'`;

export class Lexer {
  private pos = 0;
  private parenDepth = 0;
  private actionStart = 0;
  private done = false;
  private readonly pending: Token[] = [];
  private state: () => void = () => this.lexText();

  constructor(private readonly text: string) {}

  /** The next token; `eof` (or the `error` that ended lexing) again and again at the end. */
  next(): Token {
    while (this.pending.length === 0 && !this.done) this.state();
    const token = this.pending.shift();
    if (token) {
      if (token.type === 'eof' || token.type === 'error') this.pending.push(token);
      return token;
    }
    throw new Error('unreachable: the lexer stopped without an eof token');
  }

  private emit(type: TokenType, start: number, end: number = this.pos): void {
    this.pending.push({ type, value: this.text.slice(start, end), offset: start });
  }

  private fail(message: string, offset: number): void {
    this.pending.push({ type: 'error', value: message, offset });
    this.done = true;
  }

  private atRightDelim(): { delim: boolean; trim: boolean } {
    if (hasRightTrimMarker(this.text, this.pos) && this.text.startsWith(rightDelim, this.pos + 2))
      return { delim: true, trim: true };
    return { delim: this.text.startsWith(rightDelim, this.pos), trim: false };
  }

  private lexText(): void {
    const start = this.pos;
    const at = this.text.indexOf(leftDelim, this.pos);
    if (at === -1) {
      this.pos = this.text.length;
      if (this.pos > start) this.emit('text', start);
      this.emit('eof', this.pos);
      this.done = true;
      return;
    }
    let end = at;
    if (hasLeftTrimMarker(this.text, at + leftDelim.length)) {
      while (end > start && isSpace(this.text[end - 1])) end--;
    }
    if (end > start) this.emit('text', start, end);
    this.pos = at;
    this.state = () => this.lexLeftDelim();
  }

  private lexLeftDelim(): void {
    this.actionStart = this.pos;
    const afterDelim = this.pos + leftDelim.length;
    const afterMarker = hasLeftTrimMarker(this.text, afterDelim) ? afterDelim + 2 : afterDelim;
    if (this.text.startsWith(leftComment, afterMarker)) {
      this.pos = afterMarker;
      this.lexComment();
      return;
    }
    this.emit('leftDelim', this.pos, afterDelim);
    this.pos = afterMarker;
    this.parenDepth = 0;
    this.state = () => this.lexInsideAction();
  }

  private lexComment(): void {
    const close = this.text.indexOf(rightComment, this.pos + leftComment.length);
    if (close === -1) return this.fail('unclosed comment', this.actionStart);
    this.pos = close + rightComment.length;
    const { delim, trim } = this.atRightDelim();
    if (!delim) return this.fail('comment ends before closing delimiter', this.pos);
    this.pos += (trim ? 2 : 0) + rightDelim.length;
    if (trim) this.skipSpaces();
    this.state = () => this.lexText();
  }

  private skipSpaces(): void {
    while (isSpace(this.text[this.pos])) this.pos++;
  }

  private lexRightDelim(trim: boolean): void {
    if (trim) this.pos += 2;
    this.emit('rightDelim', this.pos, this.pos + rightDelim.length);
    this.pos += rightDelim.length;
    if (trim) this.skipSpaces();
    this.state = () => this.lexText();
  }

  private lexInsideAction(): void {
    const { delim, trim } = this.atRightDelim();
    if (delim) {
      if (this.parenDepth === 0) return this.lexRightDelim(trim);
      return this.fail('unclosed left paren', this.pos);
    }
    const start = this.pos;
    const c = charAt(this.text, this.pos);
    if (c === '') return this.fail('unclosed action', this.actionStart);
    if (isSpace(c)) return this.lexSpace();
    this.pos += c.length;
    switch (c) {
      case '=':
        return this.emit('assign', start);
      case ':':
        if (this.text[this.pos] !== '=') return this.fail('expected :=', start);
        this.pos++;
        return this.emit('declare', start);
      case '|':
        return this.emit('pipe', start);
      case '"':
        return this.lexQuote(start);
      case '`':
        return this.lexRawQuote(start);
      case '$':
        return this.lexFieldOrVariable(start, 'variable');
      case "'":
        return this.lexChar(start);
      case '(':
        this.parenDepth++;
        return this.emit('leftParen', start);
      case ')':
        // Emitted first, so the parser reports the stray paren in its context, as Go's does.
        this.emit('rightParen', start);
        this.parenDepth--;
        if (this.parenDepth < 0) this.fail(`unexpected right paren ${describeChar(c)}`, start);
        return;
    }
    if (c === '.') {
      const following = this.text[this.pos];
      if (following === undefined || following < '0' || following > '9')
        return this.lexFieldOrVariable(start, 'field');
    }
    if (c === '.' || c === '+' || c === '-' || (c >= '0' && c <= '9')) {
      this.pos = start;
      return this.lexNumber();
    }
    if (isAlphaNumeric(c)) {
      this.pos = start;
      return this.lexIdentifier();
    }
    const code = c.codePointAt(0) ?? 0;
    if (code >= 0x21 && code <= 0x7e) return this.emit('char', start);
    return this.fail(`unrecognized character in action: ${describeChar(c)}`, start);
  }

  private lexSpace(): void {
    const start = this.pos;
    this.skipSpaces();
    // " -}}": the last space belongs to the trim marker.
    if (hasRightTrimMarker(this.text, this.pos - 1) && this.text.startsWith(rightDelim, this.pos + 1)) {
      this.pos--;
      if (this.pos === start) return this.lexRightDelim(true);
    }
    this.emit('space', start);
  }

  /** Go's atTerminator: what may follow a word. */
  private atTerminator(): boolean {
    const c = this.text[this.pos];
    if (c === undefined || isSpace(c) || '.,|:)('.includes(c)) return true;
    return this.text.startsWith(rightDelim, this.pos);
  }

  private scanWord(): void {
    for (let c = charAt(this.text, this.pos); isAlphaNumeric(c); c = charAt(this.text, this.pos))
      this.pos += c.length;
  }

  private lexIdentifier(): void {
    const start = this.pos;
    this.scanWord();
    if (!this.atTerminator())
      return this.fail(`bad character ${describeChar(charAt(this.text, this.pos))}`, this.pos);
    const word = this.text.slice(start, this.pos);
    if (keywords.includes(word)) return this.emit('keyword', start);
    if (word === 'nil') return this.emit('nil', start);
    if (word === 'true' || word === 'false') return this.emit('bool', start);
    this.emit('identifier', start);
  }

  /** After `.` or `$`: a field or variable name, or the bare `.` / `$`. */
  private lexFieldOrVariable(start: number, type: 'field' | 'variable'): void {
    if (this.atTerminator()) return this.emit(type === 'field' ? 'dot' : 'variable', start);
    this.scanWord();
    if (!this.atTerminator())
      return this.fail(`bad character ${describeChar(charAt(this.text, this.pos))}`, this.pos);
    this.emit(type, start);
  }

  private lexChar(start: number): void {
    for (;;) {
      const c = this.text[this.pos++];
      if (c === '\\') {
        const escaped = this.text[this.pos++];
        if (escaped !== undefined && escaped !== '\n') continue;
      }
      if (c === undefined || c === '\n' || c === '\\')
        return this.fail('unterminated character constant', start);
      if (c === "'") return this.emit('charConstant', start);
    }
  }

  private lexQuote(start: number): void {
    for (;;) {
      const c = this.text[this.pos++];
      if (c === '\\') {
        const escaped = this.text[this.pos++];
        if (escaped !== undefined && escaped !== '\n') continue;
      }
      if (c === undefined || c === '\n' || c === '\\') return this.fail('unterminated quoted string', start);
      if (c === '"') return this.emit('string', start);
    }
  }

  private lexRawQuote(start: number): void {
    const close = this.text.indexOf('`', this.pos);
    if (close === -1) return this.fail('unterminated raw quoted string', start);
    this.pos = close + 1;
    this.emit('rawString', start);
  }

  private lexNumber(): void {
    const start = this.pos;
    if (!this.scanNumber())
      return this.fail(`bad number syntax: "${this.text.slice(start, this.pos)}"`, start);
    const sign = this.text[this.pos];
    if (sign === '+' || sign === '-') {
      // A complex constant (1+2i); scanned so the message can name it.
      this.scanNumber();
      return this.fail(`complex constants are not supported: "${this.text.slice(start, this.pos)}"`, start);
    }
    this.emit('number', start);
  }

  private accept(valid: string): boolean {
    const c = this.text[this.pos];
    if (c !== undefined && valid.includes(c)) {
      this.pos++;
      return true;
    }
    return false;
  }

  private acceptRun(valid: string): void {
    while (this.accept(valid));
  }

  private scanNumber(): boolean {
    this.accept('+-');
    let digits = '0123456789_';
    if (this.accept('0')) {
      if (this.accept('xX')) digits = '0123456789abcdefABCDEF_';
      else if (this.accept('oO')) digits = '01234567_';
      else if (this.accept('bB')) digits = '01_';
    }
    this.acceptRun(digits);
    if (this.accept('.')) this.acceptRun(digits);
    if (digits.length === 11 && this.accept('eE')) {
      this.accept('+-');
      this.acceptRun('0123456789_');
    }
    if (digits.length === 23 && this.accept('pP')) {
      this.accept('+-');
      this.acceptRun('0123456789_');
    }
    this.accept('i');
    if (isAlphaNumeric(charAt(this.text, this.pos))) {
      this.pos += charAt(this.text, this.pos).length;
      return false;
    }
    return true;
  }
}

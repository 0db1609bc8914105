/**
 * Parses a template into its tree, following Go's text/template/parse: the same grammar, the same checks
 * at parse time (functions and variables must exist, `break` only inside `range`, `define` only at the
 * top level) and Go's wording for each error, placed at the token where it was found.
 */
import type {
  CommandNode,
  ControlNode,
  Operand,
  ParsedTemplate,
  PipeNode,
  TemplateCallNode,
  TemplateNode,
} from './ast.ts';
import { parseNumber, unquoteCharConstant, unquoteString } from './go-literals.ts';
import { quoteGo } from './go-quote.ts';
import { Lexer, type Token, type TokenType } from './lexer.ts';
import { TemplateError, type TemplateSource } from './template-error.ts';

/** `{{end}}` and `{{else}}` end a list; they never reach the tree. */
interface ListEnd {
  kind: 'end' | 'else';
  offset: number;
}

const operandStarts: readonly TokenType[] = [
  'bool',
  'charConstant',
  'number',
  'dot',
  'field',
  'identifier',
  'nil',
  'rawString',
  'string',
  'variable',
  'leftParen',
];

/**
 * @param functionNames the functions a template may call; any other name is a parse error, as in Go.
 * @throws TemplateError at the offending token.
 */
export function parseTemplate(source: TemplateSource, functionNames: ReadonlySet<string>): ParsedTemplate {
  return new Parser(source, functionNames).parse();
}

class Parser {
  private readonly lexer: Lexer;
  private readonly tokens: Token[] = [];
  private index = 0;
  private vars: string[] = ['$'];
  private rangeDepth = 0;
  private readonly defined = new Map<string, TemplateNode[]>();

  constructor(
    private readonly source: TemplateSource,
    private readonly functionNames: ReadonlySet<string>,
  ) {
    this.lexer = new Lexer(source.text);
  }

  parse(): ParsedTemplate {
    const main: TemplateNode[] = [];
    while (this.peek().type !== 'eof') {
      if (this.peek().type === 'leftDelim') {
        const mark = this.index;
        this.next();
        const keyword = this.nextNonSpace();
        if (keyword.type === 'keyword' && keyword.value === 'define') {
          this.parseDefinition();
          continue;
        }
        this.index = mark;
      }
      const node = this.textOrAction();
      if (isListEnd(node)) this.fail(node.offset, `unexpected ${describeListEnd(node)}`);
      main.push(node);
    }
    return { main, defined: this.defined };
  }

  // -------------------------------------------------------------------------------------------------------
  // Tokens
  // -------------------------------------------------------------------------------------------------------

  private next(): Token {
    if (this.index === this.tokens.length) this.tokens.push(this.lexer.next());
    const token = this.tokens[this.index++];
    if (!token) throw new Error('unreachable: token buffer out of step');
    return token;
  }

  private backup(): void {
    this.index--;
  }

  private peek(): Token {
    const token = this.next();
    this.backup();
    return token;
  }

  private nextNonSpace(): Token {
    let token = this.next();
    while (token.type === 'space') token = this.next();
    return token;
  }

  private peekNonSpace(): Token {
    const token = this.nextNonSpace();
    this.backup();
    return token;
  }

  private expect(type: TokenType, context: string): Token {
    const token = this.nextNonSpace();
    if (token.type !== type) this.unexpected(token, context);
    return token;
  }

  private fail(offset: number, reason: string): never {
    throw TemplateError.at(this.source, offset, reason);
  }

  private unexpected(token: Token, context: string): never {
    if (token.type === 'error') this.fail(token.offset, token.value);
    this.fail(token.offset, `unexpected ${describeToken(token)} in ${context}`);
  }

  // -------------------------------------------------------------------------------------------------------
  // Lists and actions
  // -------------------------------------------------------------------------------------------------------

  private parseDefinition(): void {
    const context = 'define clause';
    const nameToken = this.nextNonSpace();
    if (nameToken.type !== 'string' && nameToken.type !== 'rawString') this.unexpected(nameToken, context);
    const name = this.unquote(nameToken);
    this.expect('rightDelim', context);
    const list = this.withFreshScope(() => {
      const [body, end] = this.itemList();
      if (end.kind !== 'end') this.fail(end.offset, `unexpected ${describeListEnd(end)} in ${context}`);
      return body;
    });
    this.addTemplate(name, list, nameToken.offset);
  }

  /** A template body sees only `$` and is not inside any `range` of the text around it. */
  private withFreshScope<T>(parse: () => T): T {
    const [vars, rangeDepth] = [this.vars, this.rangeDepth];
    this.vars = ['$'];
    this.rangeDepth = 0;
    try {
      return parse();
    } finally {
      this.vars = vars;
      this.rangeDepth = rangeDepth;
    }
  }

  private addTemplate(name: string, list: TemplateNode[], offset: number): void {
    const existing = this.defined.get(name);
    if (existing === undefined || isEmptyList(existing)) this.defined.set(name, list);
    else if (!isEmptyList(list)) this.fail(offset, `multiple definition of template ${quoteGo(name)}`);
  }

  private itemList(): [TemplateNode[], ListEnd] {
    const list: TemplateNode[] = [];
    while (this.peekNonSpace().type !== 'eof') {
      const node = this.textOrAction();
      if (isListEnd(node)) return [list, node];
      list.push(node);
    }
    this.fail(this.peek().offset, 'unexpected EOF');
  }

  private textOrAction(): TemplateNode | ListEnd {
    const token = this.nextNonSpace();
    if (token.type === 'text')
      return {
        kind: 'text',
        text: token.value,
        offset: token.offset,
        end: token.offset + token.value.length,
      };
    if (token.type === 'leftDelim') return this.action();
    this.unexpected(token, 'input');
  }

  private action(): TemplateNode | ListEnd {
    const token = this.nextNonSpace();
    if (token.type === 'keyword') {
      switch (token.value) {
        case 'block':
          return this.blockControl();
        case 'break':
        case 'continue':
          return this.loopControl(token);
        case 'else':
          return this.elseControl(token);
        case 'end':
          this.expect('rightDelim', 'end');
          return { kind: 'end', offset: token.offset };
        case 'if':
          return this.control('if', token);
        case 'range':
          return this.control('range', token);
        case 'template':
          return this.templateControl(token);
        case 'with':
          return this.control('with', token);
      }
    }
    this.backup();
    const pipe = this.pipeline('command', 'rightDelim');
    return { kind: 'action', pipe, offset: pipe.offset, end: pipe.end };
  }

  private loopControl(token: Token): TemplateNode {
    const kind = token.value === 'break' ? 'break' : 'continue';
    const after = this.nextNonSpace();
    if (after.type !== 'rightDelim') this.unexpected(after, `{{${kind}}}`);
    if (this.rangeDepth === 0) this.fail(token.offset, `{{${kind}}} outside {{range}}`);
    return { kind, offset: token.offset, end: token.offset + kind.length };
  }

  private elseControl(token: Token): ListEnd {
    const peeked = this.peekNonSpace();
    if (peeked.type === 'keyword' && peeked.value === 'if') return { kind: 'else', offset: token.offset };
    this.expect('rightDelim', 'else');
    return { kind: 'else', offset: token.offset };
  }

  private control(kind: ControlNode['kind'], token: Token): ControlNode {
    const varsMark = this.vars.length;
    const pipe = this.pipeline(kind, 'rightDelim');
    if (kind === 'range') this.rangeDepth++;
    const [list, end] = this.itemList();
    if (kind === 'range') this.rangeDepth--;
    let elseList: TemplateNode[] | undefined;
    if (end.kind === 'else') {
      const peeked = this.peek();
      if (kind === 'if' && peeked.type === 'keyword' && peeked.value === 'if') {
        this.next();
        elseList = [this.control('if', peeked)];
      } else {
        const [body, elseEnd] = this.itemList();
        if (elseEnd.kind !== 'end')
          this.fail(elseEnd.offset, `expected end; found ${describeListEnd(elseEnd)}`);
        elseList = body;
      }
    }
    this.vars.length = varsMark;
    return { kind, pipe, list, ...(elseList ? { elseList } : {}), offset: token.offset, end: pipe.end };
  }

  private templateControl(token: Token): TemplateCallNode {
    const context = 'template clause';
    const nameToken = this.nextNonSpace();
    const name = this.templateName(nameToken, context);
    let pipe: PipeNode | undefined;
    const after = this.nextNonSpace();
    if (after.type !== 'rightDelim') {
      this.backup();
      pipe = this.pipeline(context, 'rightDelim');
    }
    const end = pipe?.end ?? nameToken.offset + nameToken.value.length;
    return { kind: 'template', name, ...(pipe ? { pipe } : {}), offset: token.offset, end };
  }

  /** `{{ block "name" pipeline }}body{{ end }}`: defines `name` and calls it right here. */
  private blockControl(): TemplateCallNode {
    const context = 'block clause';
    const nameToken = this.nextNonSpace();
    const name = this.templateName(nameToken, context);
    const pipe = this.pipeline(context, 'rightDelim');
    const list = this.withFreshScope(() => {
      const [body, end] = this.itemList();
      if (end.kind !== 'end') this.fail(end.offset, `unexpected ${describeListEnd(end)} in ${context}`);
      return body;
    });
    this.addTemplate(name, list, nameToken.offset);
    return { kind: 'template', name, pipe, offset: nameToken.offset, end: pipe.end };
  }

  private templateName(token: Token, context: string): string {
    if (token.type !== 'string' && token.type !== 'rawString') this.unexpected(token, context);
    return this.unquote(token);
  }

  // -------------------------------------------------------------------------------------------------------
  // Pipelines, commands, operands
  // -------------------------------------------------------------------------------------------------------

  private pipeline(context: string, end: 'rightDelim' | 'rightParen'): PipeNode {
    const first = this.peekNonSpace();
    const pipe: PipeNode = {
      kind: 'pipe',
      decl: [],
      isAssign: false,
      commands: [],
      offset: first.offset,
      end: first.offset,
    };
    this.declarations(pipe, context);
    for (;;) {
      const token = this.nextNonSpace();
      if (token.type === end) {
        this.checkPipeline(pipe, context, token);
        pipe.end = end === 'rightParen' ? token.offset + 1 : (pipe.commands.at(-1)?.end ?? pipe.end);
        return pipe;
      }
      if (!operandStarts.includes(token.type)) this.unexpected(token, context);
      this.backup();
      pipe.commands.push(this.command());
    }
  }

  /** `$x :=`, `$x =`, and in `range` `$i, $v :=`. */
  private declarations(pipe: PipeNode, context: string): void {
    for (;;) {
      const mark = this.index;
      const variable = this.nextNonSpace();
      if (variable.type !== 'variable') {
        this.index = mark;
        return;
      }
      const after = this.nextNonSpace();
      if (after.type === 'assign' || after.type === 'declare') {
        pipe.isAssign = after.type === 'assign';
        pipe.decl.push(variable.value);
        this.vars.push(variable.value);
        return;
      }
      if (after.type === 'char' && after.value === ',') {
        pipe.decl.push(variable.value);
        this.vars.push(variable.value);
        if (context === 'range' && pipe.decl.length < 2) {
          const following = this.peekNonSpace();
          if (['variable', 'rightDelim', 'rightParen'].includes(following.type)) continue;
          this.fail(following.offset, 'range can only initialize variables');
        }
        this.fail(after.offset, `too many declarations in ${context}`);
      }
      this.index = mark;
      return;
    }
  }

  private checkPipeline(pipe: PipeNode, context: string, endToken: Token): void {
    if (pipe.commands.length === 0) this.fail(endToken.offset, `missing value for ${context}`);
    pipe.commands.slice(1).forEach((command, i) => {
      const first = command.args[0];
      if (first && ['bool', 'dot', 'nil', 'number', 'string'].includes(first.kind))
        this.fail(first.offset, `non executable command in pipeline stage ${i + 2}`);
    });
  }

  private command(): CommandNode {
    const start = this.peekNonSpace();
    const command: CommandNode = { kind: 'command', args: [], offset: start.offset, end: start.offset };
    for (;;) {
      this.peekNonSpace();
      const operand = this.operand();
      if (operand) command.args.push(operand);
      const token = this.next();
      if (token.type === 'space') continue;
      if (token.type === 'rightDelim' || token.type === 'rightParen') this.backup();
      else if (token.type !== 'pipe') this.unexpected(token, 'operand');
      break;
    }
    const last = command.args.at(-1);
    if (!last) this.fail(start.offset, 'empty command');
    command.end = last.end;
    return command;
  }

  private operand(): Operand | undefined {
    const node = this.term();
    if (!node || this.peek().type !== 'field') return node;
    const fields: string[] = [];
    let end = node.end;
    while (this.peek().type === 'field') {
      const field = this.next();
      fields.push(field.value.slice(1));
      end = field.offset + field.value.length;
    }
    switch (node.kind) {
      case 'field':
        return { ...node, names: [...node.names, ...fields], end };
      case 'variable':
        return { ...node, fields: [...node.fields, ...fields], end };
      case 'bool':
      case 'string':
      case 'number':
      case 'nil':
      case 'dot':
        return this.fail(
          node.offset,
          `unexpected . after term ${quoteGo(this.source.text.slice(node.offset, node.end))}`,
        );
      default:
        return { kind: 'chain', node, fields, offset: node.offset, end };
    }
  }

  private term(): Operand | undefined {
    const token = this.nextNonSpace();
    const span = { offset: token.offset, end: token.offset + token.value.length };
    switch (token.type) {
      case 'identifier':
        if (!this.functionNames.has(token.value))
          this.fail(token.offset, `function ${quoteGo(token.value)} not defined`);
        return { kind: 'identifier', name: token.value, ...span };
      case 'dot':
        return { kind: 'dot', ...span };
      case 'nil':
        return { kind: 'nil', ...span };
      case 'variable':
        if (!this.vars.includes(token.value))
          this.fail(token.offset, `undefined variable ${quoteGo(token.value)}`);
        return { kind: 'variable', name: token.value, fields: [], ...span };
      case 'field':
        return { kind: 'field', names: [token.value.slice(1)], ...span };
      case 'bool':
        return { kind: 'bool', value: token.value === 'true', ...span };
      case 'charConstant':
      case 'number':
        return { kind: 'number', constant: this.number(token), ...span };
      case 'leftParen':
        return { ...this.pipeline('parenthesized pipeline', 'rightParen'), offset: token.offset };
      case 'string':
      case 'rawString':
        return { kind: 'string', value: this.unquote(token), ...span };
    }
    this.backup();
    return undefined;
  }

  private number(token: Token) {
    try {
      if (token.type === 'charConstant') {
        const codePoint = unquoteCharConstant(token.value);
        return { text: token.value, int: BigInt(codePoint), float: codePoint };
      }
      return parseNumber(token.value);
    } catch (err) {
      this.fail(token.offset, (err as Error).message);
    }
  }

  private unquote(token: Token): string {
    try {
      return unquoteString(token.value);
    } catch (err) {
      this.fail(token.offset, `${(err as Error).message} in ${token.value}`);
    }
  }
}

/** A template with nothing but white space, which a later `define` of the same name may replace. */
function isEmptyList(list: readonly TemplateNode[]): boolean {
  return list.every((node) => node.kind === 'text' && node.text.trim() === '');
}

/** A token the way Go's parser names it in messages: `EOF`, `<end>`, `"}"`. */
function describeToken(token: Token): string {
  if (token.type === 'eof') return 'EOF';
  if (token.type === 'keyword' || token.type === 'dot' || token.type === 'nil') return `<${token.value}>`;
  const chars = [...token.value];
  return chars.length > 10 ? `${quoteGo(chars.slice(0, 10).join(''))}...` : quoteGo(token.value);
}

const isListEnd = (node: TemplateNode | ListEnd): node is ListEnd =>
  node.kind === 'end' || node.kind === 'else';

const describeListEnd = (node: ListEnd): string => `{{${node.kind}}}`;

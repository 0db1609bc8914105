/**
 * Runs a parsed template against its data the way Go's text/template executes (exec.go): dot and
 * variables, pipelines whose previous value is the next command's last argument, fields of structs and
 * maps (a missing map key is `<no value>`, Go's default), functions with typed arguments, and Go's
 * error messages, each placed at the node that failed.
 */
import type {
  ChainNode,
  CommandNode,
  ControlNode,
  IdentifierNode,
  NumberNode,
  Operand,
  ParsedTemplate,
  PipeNode,
  TemplateCallNode,
  TemplateNode,
  VariableNode,
} from './ast.ts';
import { formatActionValue, formatValue } from './go-format.ts';
import { quoteGo } from './go-quote.ts';
import { TemplateError, type TemplateSource } from './template-error.ts';
import {
  paramTypeName,
  type FunctionTable,
  type ParamType,
  type TemplateFunction,
} from './template-function.ts';
import { GoMap, GoStruct, goTypeName, isTrue, type GoValue, type MaybeValue } from './values.ts';

/** Go's `missingVal`: a command with no value piped into it. */
const noFinal = Symbol('no final argument');
type Final = MaybeValue | typeof noFinal;

/** Unwinds to the enclosing `range`. */
class LoopSignal {
  constructor(readonly kind: 'break' | 'continue') {}
}

interface Span {
  offset: number;
  end: number;
}

/**
 * Nested `{{ template }}` calls allowed before giving up; Go allows 100000, which JavaScript's stack
 * cannot hold. A composition that nests deeper than this is recursing without end.
 */
export const maxTemplateDepth = 1000;

export interface ExecuteInput {
  source: TemplateSource;
  parsed: ParsedTemplate;
  functions: FunctionTable;
  data: GoValue;
}

/** @throws TemplateError at the node that failed, quoting it. */
export function executeTemplate(input: ExecuteInput): string {
  return new Execution(input.source, input.parsed, input.functions).run(input.data);
}

class Execution {
  private readonly out: string[] = [];
  private vars: { name: string; value: MaybeValue }[] = [];
  private depth = 0;

  constructor(
    private readonly source: TemplateSource,
    private readonly parsed: ParsedTemplate,
    private readonly functions: FunctionTable,
  ) {}

  run(data: GoValue): string {
    this.vars = [{ name: '$', value: data }];
    this.walkList(data, this.parsed.main);
    return this.out.join('');
  }

  private fail(node: Span, message: string): never {
    throw TemplateError.at(this.source, node.offset, `executing <${this.quote(node)}>: ${message}`);
  }

  /** The node's source text on one line, shortened when long. */
  private quote(node: Span): string {
    const text = this.source.text.slice(node.offset, node.end).replace(/\s+/g, ' ').trim();
    return text.length > 60 ? `${text.slice(0, 57)}...` : text;
  }

  // -------------------------------------------------------------------------------------------------------
  // Nodes
  // -------------------------------------------------------------------------------------------------------

  private walkList(dot: MaybeValue, list: readonly TemplateNode[]): void {
    for (const node of list) this.walk(dot, node);
  }

  private walk(dot: MaybeValue, node: TemplateNode): void {
    switch (node.kind) {
      case 'text':
        this.out.push(node.text);
        return;
      case 'action': {
        const value = this.evalPipeline(dot, node.pipe);
        if (node.pipe.decl.length === 0)
          this.out.push(value === undefined ? '<no value>' : formatActionValue(value));
        return;
      }
      case 'if':
      case 'with':
        return this.walkIfOrWith(dot, node);
      case 'range':
        return this.walkRange(dot, node);
      case 'template':
        return this.walkTemplate(dot, node);
      case 'break':
      case 'continue':
        throw new LoopSignal(node.kind);
    }
  }

  private walkIfOrWith(dot: MaybeValue, node: ControlNode): void {
    const mark = this.vars.length;
    try {
      const value = this.evalPipeline(dot, node.pipe);
      if (isTrue(value)) this.walkList(node.kind === 'with' ? value : dot, node.list);
      else if (node.elseList) this.walkList(dot, node.elseList);
    } finally {
      this.vars.length = mark;
    }
  }

  private walkRange(dot: MaybeValue, node: ControlNode): void {
    const mark = this.vars.length;
    try {
      const value = this.evalPipeline(dot, node.pipe);
      const iterationMark = this.vars.length;
      const iterate = (key: MaybeValue, element: MaybeValue): void => {
        const declared = node.pipe.decl.length;
        const top = this.vars.length;
        const last = this.vars[top - 1];
        const beforeLast = this.vars[top - 2];
        if (declared > 0 && last) last.value = element;
        if (declared > 1 && beforeLast) beforeLast.value = key;
        try {
          this.walkList(element, node.list);
        } catch (signal) {
          if (!(signal instanceof LoopSignal && signal.kind === 'continue')) throw signal;
        } finally {
          this.vars.length = iterationMark;
        }
      };
      let iterated = false;
      try {
        if (Array.isArray(value)) {
          value.forEach((element, i) => iterate(BigInt(i), element));
          iterated = value.length > 0;
        } else if (value instanceof GoMap) {
          for (const key of value.sortedKeys()) iterate(key, value.entries.get(key));
          iterated = value.entries.size > 0;
        } else if (value !== undefined && value !== null) {
          this.fail(node.pipe.commands.at(-1) ?? node.pipe, `range can't iterate over ${formatValue(value)}`);
        }
      } catch (signal) {
        if (signal instanceof LoopSignal && signal.kind === 'break') return;
        throw signal;
      }
      if (!iterated && node.elseList) this.walkList(dot, node.elseList);
    } finally {
      this.vars.length = mark;
    }
  }

  private walkTemplate(dot: MaybeValue, node: TemplateCallNode): void {
    const body = this.parsed.defined.get(node.name);
    if (!body) {
      const known = [...this.parsed.defined.keys()].map(quoteGo).join(', ') || '(none)';
      this.fail(node, `template ${quoteGo(node.name)} not defined; defined templates are: ${known}`);
    }
    if (this.depth >= maxTemplateDepth)
      this.fail(node, `exceeded maximum template depth (${maxTemplateDepth})`);
    const value = node.pipe ? this.evalPipeline(dot, node.pipe) : undefined;
    const vars = this.vars;
    this.vars = [{ name: '$', value }];
    this.depth++;
    try {
      this.walkList(value, body);
    } catch (err) {
      // Deep nesting inside each call can exhaust JavaScript's stack before the depth limit.
      if (err instanceof RangeError && /call stack/i.test(err.message))
        this.fail(node, `template calls nest too deeply: the stack ran out at depth ${this.depth}`);
      throw err;
    } finally {
      this.depth--;
      this.vars = vars;
    }
  }

  // -------------------------------------------------------------------------------------------------------
  // Pipelines and commands
  // -------------------------------------------------------------------------------------------------------

  private evalPipeline(dot: MaybeValue, pipe: PipeNode): MaybeValue {
    let value: Final = noFinal;
    for (const command of pipe.commands) {
      value = this.evalCommand(dot, command, value);
      // Go turns a nil interface into the invalid value between commands.
      if (value === null) value = undefined;
    }
    const result = value === noFinal ? undefined : value;
    for (const name of pipe.decl) {
      if (pipe.isAssign) this.setVar(name, result, pipe);
      else this.vars.push({ name, value: result });
    }
    return result;
  }

  private setVar(name: string, value: MaybeValue, node: Span): void {
    for (let i = this.vars.length - 1; i >= 0; i--) {
      const variable = this.vars[i];
      if (variable?.name === name) {
        variable.value = value;
        return;
      }
    }
    this.fail(node, `undefined variable: ${name}`);
  }

  private varValue(name: string, node: Span): MaybeValue {
    for (let i = this.vars.length - 1; i >= 0; i--) {
      const variable = this.vars[i];
      if (variable?.name === name) return variable.value;
    }
    this.fail(node, `undefined variable: ${name}`);
  }

  private evalCommand(dot: MaybeValue, command: CommandNode, final: Final): MaybeValue {
    const [first] = command.args;
    if (!first) throw new Error('unreachable: the parser refuses empty commands');
    switch (first.kind) {
      case 'field':
        return this.evalFieldChain(dot, dot, first, first.names, command.args, final);
      case 'chain':
        return this.evalChain(dot, first, command.args, final);
      case 'identifier':
        return this.evalFunction(dot, first, command, command.args, final);
      case 'pipe':
        this.notAFunction(command.args, final);
        return this.evalPipeline(dot, first);
      case 'variable':
        return this.evalVariable(dot, first, command.args, final);
    }
    this.notAFunction(command.args, final);
    switch (first.kind) {
      case 'bool':
        return first.value;
      case 'dot':
        return dot;
      case 'nil':
        return this.fail(first, 'nil is not a command');
      case 'number':
        return this.idealConstant(first);
      case 'string':
        return first.value;
    }
  }

  private notAFunction(args: readonly Operand[], final: Final): void {
    const [first] = args;
    if (first && (args.length > 1 || final !== noFinal))
      this.fail(first, `can't give argument to non-function ${this.quote(first)}`);
  }

  /** An untyped number constant: a float64 when written with `.`, `e` or `p`, else an int. */
  private idealConstant(node: NumberNode): GoValue {
    const { text, int, float } = node.constant;
    const looksFloat = /[.eEpP]/.test(text) && !/^[+-]?0[xX]/.test(text) && !text.startsWith("'");
    if (looksFloat && float !== undefined) return float;
    if (int !== undefined) return int;
    return this.fail(node, `${text} overflows int`);
  }

  private evalChain(dot: MaybeValue, chain: ChainNode, args: readonly Operand[], final: Final): MaybeValue {
    if (chain.node.kind === 'nil')
      this.fail(chain, `indirection through explicit nil in ${this.quote(chain)}`);
    const receiver = this.evalArg(dot, undefined, chain.node);
    return this.evalFieldChain(dot, receiver, chain, chain.fields, args, final);
  }

  private evalVariable(
    dot: MaybeValue,
    node: VariableNode,
    args: readonly Operand[],
    final: Final,
  ): MaybeValue {
    const value = this.varValue(node.name, node);
    if (node.fields.length === 0) {
      this.notAFunction(args, final);
      return value;
    }
    return this.evalFieldChain(dot, value, node, node.fields, args, final);
  }

  private evalFieldChain(
    dot: MaybeValue,
    receiver: MaybeValue,
    node: Span,
    names: readonly string[],
    args: readonly Operand[],
    final: Final,
  ): MaybeValue {
    let value = receiver;
    names.forEach((name, i) => {
      const last = i === names.length - 1;
      value = this.evalField(name, node, last ? args : [], last ? final : noFinal, value);
    });
    return value;
  }

  private evalField(
    name: string,
    node: Span,
    args: readonly Operand[],
    final: Final,
    receiver: MaybeValue,
  ): MaybeValue {
    if (receiver === undefined) return undefined;
    if (receiver === null) this.fail(node, `nil pointer evaluating interface {}.${name}`);
    const hasArgs = args.length > 1 || final !== noFinal;
    if (receiver instanceof GoStruct) {
      if (!receiver.fields.has(name)) {
        const fields = [...receiver.fields.keys()].map((field) => `.${field}`).join(', ');
        this.fail(node, `can't evaluate field ${name} in type ${receiver.typeName} (its fields: ${fields})`);
      }
      if (hasArgs) this.fail(node, `${name} has arguments but cannot be invoked as function`);
      return receiver.fields.get(name);
    }
    if (receiver instanceof GoMap) {
      if (hasArgs) this.fail(node, `${name} is not a method but has arguments`);
      return receiver.entries.get(name);
    }
    return this.fail(node, `can't evaluate field ${name} in type ${goTypeName(receiver)}`);
  }

  private evalFunction(
    dot: MaybeValue,
    node: IdentifierNode,
    callNode: Span,
    args: readonly Operand[],
    final: Final,
  ): MaybeValue {
    const fn = this.functions.get(node.name);
    if (!fn) return this.fail(node, `${quoteGo(node.name)} is not a defined function`);
    return this.evalCall(dot, fn, node, callNode, args.slice(1), final);
  }

  private evalCall(
    dot: MaybeValue,
    fn: TemplateFunction,
    name: IdentifierNode,
    callNode: Span,
    args: readonly Operand[],
    final: Final,
  ): MaybeValue {
    const given = args.length + (final === noFinal ? 0 : 1);
    const fixed = fn.params.length;
    if (fn.variadic) {
      if (given < fixed)
        this.fail(name, `wrong number of args for ${name.name}: want at least ${fixed} got ${args.length}`);
    } else if (given !== fixed) {
      this.fail(name, `wrong number of args for ${name.name}: want ${fixed} got ${given}`);
    }

    if (fn.shortCircuit) {
      // and/or: stop at the first argument that decides, and return it.
      const stopAt = name.name === 'or';
      let value: MaybeValue;
      for (const arg of args) {
        value = this.evalArg(dot, 'value', arg);
        if (isTrue(value) === stopAt) return value;
      }
      if (final !== noFinal) value = this.validateType(final, 'value', callNode);
      return value;
    }

    const typeAt = (i: number): ParamType => fn.params[i] ?? fn.variadic ?? 'any';
    const argv = args.map((arg, i) => this.evalArg(dot, typeAt(i), arg));
    if (final !== noFinal) argv.push(this.validateType(final, typeAt(args.length), callNode));
    try {
      return fn.call(argv);
    } catch (err) {
      if (err instanceof TemplateError) throw err;
      return this.fail(callNode, `error calling ${name.name}: ${(err as Error).message}`);
    }
  }

  // -------------------------------------------------------------------------------------------------------
  // Arguments
  // -------------------------------------------------------------------------------------------------------

  /** An argument's value, converted to the parameter's type (or as it is, without one). */
  private evalArg(dot: MaybeValue, type: ParamType | undefined, node: Operand): MaybeValue {
    switch (node.kind) {
      case 'dot':
        return this.validateType(dot, type, node);
      case 'nil':
        if (type === undefined || type === 'string' || type === 'int' || type === 'bool')
          return this.fail(node, `cannot assign nil to ${type ? paramTypeName(type) : 'a value'}`);
        return type === 'value' ? undefined : null;
      case 'field':
        return this.validateType(
          this.evalFieldChain(dot, dot, node, node.names, [node], noFinal),
          type,
          node,
        );
      case 'variable':
        return this.validateType(this.evalVariable(dot, node, [], noFinal), type, node);
      case 'pipe':
        return this.validateType(this.evalPipeline(dot, node), type, node);
      case 'identifier':
        return this.validateType(this.evalFunction(dot, node, node, [], noFinal), type, node);
      case 'chain':
        return this.validateType(this.evalChain(dot, node, [], noFinal), type, node);
    }
    switch (type) {
      case 'bool':
        if (node.kind === 'bool') return node.value;
        return this.fail(node, `expected bool; found ${this.quote(node)}`);
      case 'string':
        if (node.kind === 'string') return node.value;
        return this.fail(node, `expected string; found ${this.quote(node)}`);
      case 'int':
        if (node.kind === 'number' && node.constant.int !== undefined) return node.constant.int;
        return this.fail(node, `expected integer; found ${this.quote(node)}`);
      case 'map':
      case undefined:
        return this.fail(node, `can't handle ${this.quote(node)} for arg of type ${paramTypeName('map')}`);
    }
    if (node.kind === 'number') return this.idealConstant(node);
    return node.value;
  }

  /** Go's validateType: does the value fit the parameter? A missing value becomes nil where nil fits. */
  private validateType(value: MaybeValue, type: ParamType | undefined, node: Span): MaybeValue {
    if (type === undefined) return value;
    if (value === undefined) {
      if (type === 'value') return undefined;
      if (type === 'any' || type === 'map') return null;
      return this.fail(node, `invalid value; expected ${paramTypeName(type)}`);
    }
    const fits =
      type === 'value' ||
      type === 'any' ||
      (type === 'string' && typeof value === 'string') ||
      (type === 'int' && typeof value === 'bigint') ||
      (type === 'bool' && typeof value === 'boolean') ||
      (type === 'map' && (value === null || (value instanceof GoMap && value.elemType === 'interface {}')));
    if (!fits)
      this.fail(node, `wrong type for value; expected ${paramTypeName(type)}; got ${goTypeName(value)}`);
    // Go's builtins see a nil interface as the invalid value.
    return type === 'value' && value === null ? undefined : value;
  }
}

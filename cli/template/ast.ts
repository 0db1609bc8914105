/**
 * The parsed form of a template, after text/template/parse's node types. Every node keeps its span in
 * the source (`offset` to `end`, UTF-16 indices) so an error can point at it and quote it.
 */
import type { NumberConstant } from './go-literals.ts';

interface Span {
  offset: number;
  end: number;
}

export interface TextNode extends Span {
  kind: 'text';
  text: string;
}

/** `{{ pipeline }}`: prints the pipeline's value unless it declares or assigns variables. */
export interface ActionNode extends Span {
  kind: 'action';
  pipe: PipeNode;
}

/** `if`, `with` and `range`: a pipeline, a body, and an optional `else` body. */
export interface ControlNode extends Span {
  kind: 'if' | 'with' | 'range';
  pipe: PipeNode;
  list: TemplateNode[];
  elseList?: TemplateNode[];
}

/** `{{ template "name" pipeline }}` (also what `block` leaves in place). */
export interface TemplateCallNode extends Span {
  kind: 'template';
  name: string;
  pipe?: PipeNode;
}

export interface LoopControlNode extends Span {
  kind: 'break' | 'continue';
}

export type TemplateNode = TextNode | ActionNode | ControlNode | TemplateCallNode | LoopControlNode;

/** Commands joined by `|`, optionally declaring (`$x :=`) or assigning (`$x =`) variables. */
export interface PipeNode extends Span {
  kind: 'pipe';
  decl: string[];
  isAssign: boolean;
  commands: CommandNode[];
}

/** One stage of a pipeline: a function or method with its arguments, or a single operand. */
export interface CommandNode extends Span {
  kind: 'command';
  args: Operand[];
}

export interface FieldNode extends Span {
  kind: 'field';
  /** `.a.b` → `['a', 'b']`. */
  names: string[];
}

export interface VariableNode extends Span {
  kind: 'variable';
  /** `$x.a.b` → name `$x`, fields `['a', 'b']`. */
  name: string;
  fields: string[];
}

/** Fields applied to a term that is neither `.` nor a variable: `(pipeline).a.b`. */
export interface ChainNode extends Span {
  kind: 'chain';
  node: Operand;
  fields: string[];
}

export interface IdentifierNode extends Span {
  kind: 'identifier';
  name: string;
}

export interface DotNode extends Span {
  kind: 'dot';
}

export interface NilNode extends Span {
  kind: 'nil';
}

export interface BoolNode extends Span {
  kind: 'bool';
  value: boolean;
}

export interface NumberNode extends Span {
  kind: 'number';
  constant: NumberConstant;
}

export interface StringNode extends Span {
  kind: 'string';
  value: string;
}

export type Operand =
  | FieldNode
  | VariableNode
  | ChainNode
  | IdentifierNode
  | DotNode
  | NilNode
  | BoolNode
  | NumberNode
  | StringNode
  | PipeNode;

/** A template file: its main body and the templates it defines with `define` or `block`. */
export interface ParsedTemplate {
  main: TemplateNode[];
  defined: Map<string, TemplateNode[]>;
}

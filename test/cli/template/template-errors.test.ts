import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderComposition } from '../../../cli/template/render-composition.ts';
import { TemplateError } from '../../../cli/template/template-error.ts';
import { TestgroundError } from '../../../core/errors.ts';

/**
 * Every error names the file, the 1-based line and column of what failed, and Go's reason (its columns
 * are 0-based bytes and its parse errors carry only a line; ours point at the token or node).
 */
const env = { A: '1', B: 'x' };
const failure = (text: string): TemplateError => {
  try {
    renderComposition(text, { file: 'comp.toml', env });
  } catch (err) {
    assert.ok(err instanceof TemplateError, `expected a TemplateError, got ${String(err)}`);
    return err;
  }
  assert.fail(`${JSON.stringify(text)} rendered without an error`);
};
const message = (text: string): string => failure(text).message;

describe('template errors: parsing', () => {
  it('an unknown function, at its line and column, with the file', () => {
    const text = `${'[global]\n'.repeat(11)}   {{ lod_resource "versions.toml" }}\n`;
    const err = failure(text);
    assert.equal(err.message, 'comp.toml:12:7: function "lod_resource" not defined');
    assert.deepEqual(
      [err.file, err.line, err.column, err.reason],
      ['comp.toml', 12, 7, 'function "lod_resource" not defined'],
    );
    assert.ok(err instanceof TestgroundError);
    assert.equal(err.code, 'invalid_request');
  });

  const cases: [string, string][] = [
    ['{{ $undefined }}', 'comp.toml:1:4: undefined variable "$undefined"'],
    ['{{ if true }}unterminated', 'comp.toml:1:26: unexpected EOF'],
    ['a\n{{ end }}', 'comp.toml:2:4: unexpected {{end}}'],
    ['{{ else }}', 'comp.toml:1:4: unexpected {{else}}'],
    ['{{ if 1 }}{{ else }}{{ else }}{{ end }}', 'comp.toml:1:24: expected end; found {{else}}'],
    ['x\n  {{ .Env.A ', 'comp.toml:2:3: unclosed action'],
    ['{{ "unterminated }}', 'comp.toml:1:4: unterminated quoted string'],
    ['{{/* unclosed', 'comp.toml:1:1: unclosed comment'],
    ['{{ (.Env.A }}', 'comp.toml:1:12: unclosed left paren'],
    ['{{ .Env.A) }}', 'comp.toml:1:10: unexpected ")" in command'],
    ['{{ # }}', 'comp.toml:1:4: unexpected "#" in command'],
    ['{{ 1 | 2 }}', 'comp.toml:1:8: non executable command in pipeline stage 2'],
    ['{{ break }}', 'comp.toml:1:4: {{break}} outside {{range}}'],
    ['{{ if }}{{ end }}', 'comp.toml:1:7: missing value for if'],
    ['{{ $a, $b := 1 }}', 'comp.toml:1:6: too many declarations in command'],
    [
      '{{ define "a" }}x{{ end }}{{ define "a" }}y{{ end }}',
      'comp.toml:1:37: multiple definition of template "a"',
    ],
    ['{{ define "x" }}{{ define "y" }}{{ end }}{{ end }}', 'comp.toml:1:20: unexpected <define> in command'],
    ['{{ template .Env.A }}', 'comp.toml:1:13: unexpected ".Env" in template clause'],
    ['{{ 99999999999999999999 }}', 'comp.toml:1:4: integer overflow: "99999999999999999999"'],
    ['{{ "\\q" }}', 'comp.toml:1:4: invalid syntax: unknown escape \\q in "\\q"'],
    ['{{ 1+2i }}', 'comp.toml:1:4: complex constants are not supported: "1+2i"'],
  ];
  for (const [text, expected] of cases) {
    it(`${JSON.stringify(text)} → ${expected.replace(/^comp\.toml:\d+:\d+: /, '')}`, () => {
      assert.equal(message(text), expected);
    });
  }
});

describe('template errors: executing', () => {
  const cases: [string, string][] = [
    [
      '{{ .Foo }}',
      "comp.toml:1:4: executing <.Foo>: can't evaluate field Foo in type compositionData (its fields: .Env)",
    ],
    ['{{ .Env.A.B }}', "comp.toml:1:4: executing <.Env.A.B>: can't evaluate field B in type string"],
    ['{{ .Env.A "x" }}', 'comp.toml:1:4: executing <.Env.A>: A is not a method but has arguments'],
    [
      '{{ atoi "x" }}',
      'comp.toml:1:4: executing <atoi "x">: error calling atoi: strconv.Atoi: parsing "x": invalid syntax',
    ],
    ['{{ .Env.NOPE | atoi }}', 'comp.toml:1:16: executing <atoi>: invalid value; expected string'],
    [
      '{{ eq 1 1.0 }}',
      'comp.toml:1:4: executing <eq 1 1.0>: error calling eq: incompatible types for comparison',
    ],
    [
      '{{ lt "a" 1 }}',
      'comp.toml:1:4: executing <lt "a" 1>: error calling lt: incompatible types for comparison',
    ],
    ['{{ nil }}', 'comp.toml:1:4: executing <nil>: nil is not a command'],
    ['{{ 3 4 }}', "comp.toml:1:4: executing <3>: can't give argument to non-function 3"],
    [
      '{{ printf }}',
      'comp.toml:1:4: executing <printf>: wrong number of args for printf: want at least 1 got 0',
    ],
    ['{{ split "a" "b" }}', 'comp.toml:1:4: executing <split>: wrong number of args for split: want 1 got 2'],
    [
      '{{ index (split "a,b") 5 }}',
      'comp.toml:1:4: executing <index (split "a,b") 5>: error calling index: index out of range: 5',
    ],
    [
      '{{ index .Env 1 }}',
      'comp.toml:1:4: executing <index .Env 1>: error calling index: value has type int; should be string',
    ],
    ['{{ len 3 }}', 'comp.toml:1:4: executing <len 3>: error calling len: len of type int'],
    [
      '{{ slice "abc" 2 1 }}',
      'comp.toml:1:4: executing <slice "abc" 2 1>: error calling slice: invalid slice index: 2 > 1',
    ],
    ['{{ range 5 }}x{{ end }}', "comp.toml:1:10: executing <5>: range can't iterate over 5"],
    ['{{ $x = 1 }}', 'comp.toml:1:4: executing <$x = 1>: undefined variable: $x'],
    [
      '{{ template "nope" }}',
      'comp.toml:1:4: executing <template "nope">: template "nope" not defined; defined templates are: (none)',
    ],
    [
      '{{ define "loop" }}{{ template "loop" }}{{ end }}{{ template "loop" }}',
      'comp.toml:1:23: executing <template "loop">: exceeded maximum template depth (1000)',
    ],
  ];
  for (const [text, expected] of cases) {
    it(`${JSON.stringify(text)} → ${expected.replace(/^comp\.toml:\d+:\d+: /, '')}`, () => {
      assert.equal(message(text), expected);
    });
  }

  it('recursion that exhausts the stack before the depth limit is still an error at the call', () => {
    const text =
      '{{ define "loop" }}{{ with $x := . }}{{ range $i, $v := split "a" }}{{ if true }}{{ with . }}' +
      '{{ template "loop" (printf "%s" $v) }}{{ end }}{{ end }}{{ end }}{{ end }}{{ end }}{{ template "loop" "a" }}';
    assert.match(
      message(text),
      /^comp\.toml:1:97: executing <template "loop" \(printf "%s" \$v\)>: template calls nest too deeply: the stack ran out at depth \d+$/,
    );
  });

  it('columns count characters, not UTF-16 units or bytes', () => {
    assert.equal(
      message('name = "😀 é" {{ .Nope }}'),
      "comp.toml:1:17: executing <.Nope>: can't evaluate field Nope in type compositionData (its fields: .Env)",
    );
  });

  it('an error inside a defined template points into its body', () => {
    const text =
      '{{ define "t" }}\nx = {{ .nope.deeper | atoi }}\n{{ end }}\n{{ template "t" (withEnv nil) }}';
    assert.equal(message(text), 'comp.toml:2:23: executing <atoi>: invalid value; expected string');
  });

  it('a failing command inside a long action is quoted on one line and shortened', () => {
    const text = `{{ printf "%s"\n  (index (split "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t,u,v,w,x,y,z") 99) }}`;
    assert.equal(
      message(text),
      'comp.toml:2:4: executing <index (split "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t,u,v...>: ' +
        'error calling index: index out of range: 99',
    );
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderComposition } from '../../../cli/template/render-composition.ts';

/**
 * Go's text/template language as compositions use it. Every expected output here is what Go's
 * text/template prints for the same template and environment.
 */
const env = { A: '1', B: 'x' };
const render = (text: string): string => renderComposition(text, { file: 'comp.toml', env });

describe('template language: text, trim markers, comments', () => {
  it('trim markers eat the white space (spaces, tabs, newlines) on their side only', () => {
    assert.equal(render('a {{- 1 -}} b {{-2}} c {{ -3 }} d{{- "\\n" -}}\n   e'), 'a1b -2 c -3 d\ne');
    assert.equal(render('x\n{{- /* c */}}\ny{{/* c */ -}}\n  z {{- /* c */ -}}   w'), 'x\nyz' + 'w');
    assert.equal(render('\t{{- "tab" }}'), 'tab');
  });

  it('an action may span lines', () => {
    assert.equal(render('{{\n  .Env.A\n}}|{{- \n  "multi"\n  -}}|'), '1|multi|');
  });
});

describe('template language: control structures', () => {
  it('if / else if / else', () => {
    assert.equal(render('{{ if false }}a{{ else if false }}b{{ else if true }}c{{ else }}d{{ end }}'), 'c');
    assert.equal(
      render(
        '{{ if .Env.A }}yes{{ else }}no{{ end }} {{ if .Env.NOPE }}yes{{ else if eq .Env.B "x" }}bx{{ else }}no{{ end }}',
      ),
      'yes bx',
    );
  });

  it('with sets dot, and takes else when the value is empty', () => {
    assert.equal(
      render('{{ with .Env.NOPE }}has{{ else }}none{{ end }}{{ with .Env.A }}[{{ . }}]{{ end }}'),
      'none[1]',
    );
    assert.equal(render('{{ with $x := .Env.A }}{{ $x }}{{ . }}{{ end }}'), '11');
  });

  it('range over a slice with $i, $v, over a map in key order, with else, break and continue', () => {
    assert.equal(
      render(
        '{{ range $i, $v := split "a,b,c" }}{{ $i }}:{{ $v }}{{ if eq $v "b" }}{{ continue }}{{ end }}!{{ end }}|' +
          '{{ range split "x,y" }}{{ . }}{{ break }}{{ end }}',
      ),
      '0:a!1:b2:c!|x',
    );
    assert.equal(render('{{ range $k, $v := .Env }}{{ $k }}={{ $v }};{{ end }}'), 'A=1;B=x;');
    assert.equal(
      render('{{ range .Env.NOPE }}x{{ else }}empty{{ end }}{{ range $v := split "p,q" }}{{ $v }}{{ end }}'),
      'emptypq',
    );
    assert.equal(
      render(
        '{{ range $i, $o := split "a,b" }}{{ range $j, $p := split "1,2,3" }}{{ if eq $p "2" }}{{ break }}{{ end }}' +
          '{{ $o }}{{ $p }}{{ $i }}{{ $j }} {{ end }}{{ end }}',
      ),
      'a100 b110 ',
    );
  });

  it('define, template and block; a template sees only what it is given as dot and $', () => {
    assert.equal(
      render(
        '{{ define "t1" }}[{{ . }}|{{ $ }}]{{ end }}{{ template "t1" "arg" }}{{ template "t1" }}{{ block "b1" 5 }}<{{ . }}>{{ end }}',
      ),
      '[arg|arg][<no value>|<no value>]<5>',
    );
    assert.equal(render('{{ template "x" }}{{ define "x" }}ok{{ end }}'), 'ok');
    assert.equal(
      render(
        '{{ define "rec" }}{{ if . }}{{ len . }}{{ template "rec" (slice . 1) }}{{ end }}{{ end }}{{ template "rec" (split "a,b,c") }}',
      ),
      '321',
    );
  });
});

describe('template language: variables, pipelines, fields', () => {
  it('declares, assigns (also from inside a block) and scopes variables; $ is the data', () => {
    assert.equal(
      render(
        '{{ $x := 1 }}{{ $x }}{{ $x = "two" }}{{ $x }}{{ if true }}{{ $x = 3 }}{{ $y := 4 }}{{ $y }}{{ end }}{{ $x }}',
      ),
      '1two43',
    );
    assert.equal(
      render('{{ $x := "outer" }}{{ range split "a,b" }}{{ $x }}{{ $x = . }}{{ end }}{{ $x }}'),
      'outerab',
    );
    assert.equal(render('{{ range split "a,b" }}{{ $.Env.A }}{{ . }}{{ end }}'), '1a1b');
  });

  it('a pipeline passes its value as the last argument; parentheses group', () => {
    assert.equal(
      render('{{ .Env.A | printf "%s-%s" "x" }} {{ "a" | eq "a" }} {{ 3 | printf "%d" }}'),
      'x-1 true 3',
    );
    assert.equal(
      render(
        '{{ $x := (split "a,b,c" | len) }}{{ $x }} {{ (index (split "a,b") 1) | printf "%s!" }} {{ (len "ab") }}',
      ),
      '3 b! 2',
    );
    assert.equal(render('{{ printf "%d" 1 | printf "%s %d" "x" }}'), 'x %!d(string=1)');
  });

  it('literals: ints in every base, floats, chars, raw and interpreted strings, bools', () => {
    assert.equal(
      render(
        "{{ 1.0 }} {{ 1e6 }} {{ 1e21 }} {{ 0.00001 }} {{ 123456.0 }} {{ 1234567.0 }} {{ -0.5 }} {{ 0x1F }} {{ 017 }} {{ 0b101 }} {{ 1_000 }} {{ 'a' }} {{ 3.0e2 }}",
      ),
      '1 1e+06 1e+21 1e-05 123456 1.234567e+06 -0.5 31 15 5 1000 97 300',
    );
    assert.equal(
      render('{{ `raw\\n` }} {{ "\\u00e9\\U0001F600\\t|" }} {{ true }} {{ "<no value>" }}'),
      'raw\\n é😀\t| true <no value>',
    );
  });

  it('an unset value stays <no value> through a variable and is false', () => {
    assert.equal(render('{{ $v := .Env.NOPE }}{{ $v }}{{ if $v }}t{{ else }}f{{ end }}'), '<no value>f');
    assert.equal(render('{{ print .Env.NOPE }}|{{ .Env.NOPE | printf "%v" }}'), '<nil>|<nil>');
  });

  it('the data prints as Go prints the struct', () => {
    assert.equal(
      renderComposition('{{ . }}|{{ print . }}', { file: 'c.toml', env: { A: '1' } }),
      '{map[A:1]}|&{map[A:1]}',
    );
  });
});

describe('template language: builtin functions', () => {
  it('and, or and not return the deciding argument, lazily', () => {
    assert.equal(
      render('{{ and 1 0 2 }} {{ and 1 2 }} {{ or 0 "" "x" }} {{ or 0 "" }} {{ not 0 }} {{ not "a" }}'),
      '0 2 x  true false',
    );
    // `len .Env.NOPE` would fail: and stops at the unset value first.
    assert.equal(
      render('{{ and .Env.NOPE (len .Env.NOPE) }}|{{ or .Env.NOPE }}|{{ "" | or "x" }}|{{ "" | and "x" }}'),
      '<no value>|<no value>|x|',
    );
  });

  it('comparisons: eq with several operands, ne, lt, le, gt, ge; an unset value equals nothing', () => {
    assert.equal(
      render(
        '{{ eq 1 1 }} {{ eq "a" "b" "a" }} {{ ne 1 2 }} {{ lt 1 2 }} {{ le 2 2 }} {{ gt "b" "a" }} {{ ge 1.5 2.5 }}',
      ),
      'true true true true true true false',
    );
    assert.equal(
      render('{{ eq .Env.NOPE "x" }} {{ eq "" .Env.NOPE }} {{ ne .Env.NOPE "" }}'),
      'false false true',
    );
  });

  it('len, index and slice count bytes of strings, as Go does', () => {
    assert.equal(
      render(
        '{{ len "héllo" }} {{ len (split "a,b") }} {{ len .Env }} {{ index "abc" 1 }} {{ slice "hello" 1 3 }} {{ slice (split "a,b,c") 1 }}',
      ),
      '6 2 2 98 el [b c]',
    );
    assert.equal(render('{{ index .Env "NOPE" | len }}|{{ print (index .Env "NOPE") }}'), '0|');
  });

  it('print, println, printf', () => {
    assert.equal(
      render('{{ print 1 2 "a" "b" 3 true nil 1.5 }}|{{ println "a" 1 }}|{{ print }}{{ printf "" }}end'),
      '1 2ab3 true <nil> 1.5|a 1\n|end',
    );
  });

  it('html, js and urlquery escape', () => {
    assert.equal(
      render(`{{ html "<a href='x'>&\\"" }} {{ js "it's <b>" }} {{ urlquery "a b&c=d/é" }}`),
      "&lt;a href=&#39;x&#39;&gt;&amp;&#34; it\\'s \\u003Cb\\u003E a+b%26c%3Dd%2F%C3%A9",
    );
  });
});

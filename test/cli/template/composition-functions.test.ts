import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { renderComposition } from '../../../cli/template/render-composition.ts';
import { repoRoot } from '../../helpers/processes.ts';

/**
 * The original's helpers (pkg/cmd/template.go): load_resource, withEnv, pick, toml, split, atoi. The
 * expected outputs are what the original's code prints for the same template and resource.
 */
const file = path.join(repoRoot, 'test/fixtures/templates/comp.toml');
const env = { A: '1', B: 'x' };
const render = (text: string): string => renderComposition(text, { file, env });
const withTypes = (body: string): string => `{{ $r := load_resource "resources/types.toml" }}${body}`;

describe('load_resource', () => {
  it('reads a TOML file relative to the composition and keeps Go types: int, float64, dates, slices, maps', () => {
    assert.equal(
      render(
        withTypes(
          '{{ $r.int }} {{ $r.float }} {{ $r.small }} {{ $r.flag }} {{ $r.day }} {{ $r.moment }} {{ $r.list }} ' +
            '{{ $r.nested }} {{ $r.tables }} {{ index $r "odd key" }} {{ $r.server }}',
        ),
      ),
      '42 1e+06 1e-05 true 1979-05-27 00:00:00 +0000 date-local 1979-05-27 07:32:00 +0000 UTC [1 2 3] ' +
        '[[1 2] [a]] [map[a:1] map[b:x]] v map[host:h limits:map[cpu:2 memory:512MiB]]',
    );
    assert.equal(
      render(withTypes('{{ printf "%T %T %T" $r.float $r.list $r.server }}')),
      'float64 []interface {} map[string]interface {}',
    );
  });

  it('a missing key of a resource prints <no value>, and so does a field of it', () => {
    assert.equal(
      render(withTypes('{{ $r.nope }}|{{ $r.nope.deeper }}|{{ index $r "nope" }}')),
      '<no value>|<no value>|<no value>',
    );
  });

  it('joins even an absolute path under the composition directory, like Go filepath.Join', () => {
    assert.equal(render('{{ load_resource "/resources/types.toml" | len }}'), '13');
  });

  it('reports a TOML syntax error in the resource with its line and column', () => {
    assert.throws(
      () => render('{{ load_resource "resources/broken.toml" }}'),
      (err: Error) =>
        err.message ===
        `${file}:1:4: executing <load_resource "resources/broken.toml">: error calling load_resource: ` +
          'load_resource resources/broken.toml failed: toml: line 3, column 1: invalid value',
    );
  });
});

describe('withEnv', () => {
  it('copies the map and adds Env, so a template called with it reads $.Env', () => {
    assert.equal(
      render(withTypes('{{ $w := withEnv $r }}{{ $w.Env.A }} {{ $w.int }} {{ len $w }} {{ len $r }}')),
      '1 42 14 13',
    );
    const text =
      '{{ define "t" }}{{ $.Env.B }}-{{ .int }}{{ end }}' + withTypes('{{ template "t" (withEnv $r) }}');
    assert.equal(render(text), 'x-42');
    assert.equal(render('{{ (withEnv nil).Env.A }}'), '1');
  });

  it('takes a map of anything, as the original: .Env itself (a map of strings) or a string is refused', () => {
    assert.throws(
      () => render('{{ withEnv .Env }}'),
      /comp\.toml:1:12: executing <\.Env>: wrong type for value; expected map\[string\]interface \{\}; got map\[string\]string$/,
    );
    assert.throws(
      () => render('{{ withEnv "x" }}'),
      /comp\.toml:1:12: executing <"x">: can't handle "x" for arg of type map\[string\]interface \{\}$/,
    );
  });
});

describe('pick', () => {
  it('keeps one key; a missing key becomes nil, which toml leaves out', () => {
    assert.equal(
      render(withTypes('{{ pick $r "int" }}|{{ pick $r "missing" }}|{{ toml (pick $r "missing") }}|')),
      'map[int:42]|map[missing:<nil>]||',
    );
  });
});

describe('toml', () => {
  it('writes a map the way the original did: sorted, plain keys before tables, nested tables indented', () => {
    assert.equal(
      render(withTypes('{{ toml $r }}')),
      [
        'csv = "a,b,,c"',
        'day = 1979-05-27',
        'flag = true',
        'float = 1000000.0',
        'int = 42',
        'list = [1, 2, 3]',
        'moment = 1979-05-27T07:32:00Z',
        'nested = [[1, 2], ["a"]]',
        '"odd key" = "v"',
        'small = 0.00001',
        'text = "quote \\" backslash \\\\ tab \\t"',
        '',
        '[server]',
        '  host = "h"',
        '  [server.limits]',
        '    cpu = 2',
        '    memory = "512MiB"',
        '',
        '[[tables]]',
        '  a = 1',
        '',
        '[[tables]]',
        '  b = "x"',
        '',
      ].join('\n'),
    );
  });

  it('writes the environment of withEnv as an [Env] table', () => {
    assert.equal(render(withTypes('{{ toml (pick (withEnv $r) "Env") }}')), '[Env]\n  A = "1"\n  B = "x"\n');
  });

  it('refuses what is not a table, with the original encoder message', () => {
    for (const text of ['{{ toml "str" }}', '{{ toml (split "a,b") }}'])
      assert.throws(
        () => render(text),
        /error calling toml: toml: top-level values must be Go maps or structs$/,
      );
    assert.throws(
      () => render('{{ toml .Env.NOPE }}'),
      /error calling toml: toml: nothing to encode: the value is nil$/,
    );
  });
});

describe('split and atoi', () => {
  it('split cuts at commas only and keeps empty parts', () => {
    assert.equal(
      render(withTypes('{{ split $r.csv }} {{ len (split $r.csv) }} {{ split "" | len }} {{ split "a b" }}')),
      '[a b  c] 4 1 [a b]',
    );
  });

  it('atoi reads a decimal int, with Go strconv errors', () => {
    assert.equal(
      render('{{ atoi "42" }} {{ atoi "-7" }} {{ atoi "+3" }} {{ index (split "a,b") (atoi "1") }}'),
      '42 -7 3 b',
    );
    assert.throws(
      () => render('{{ atoi " 1" }}'),
      /error calling atoi: strconv\.Atoi: parsing " 1": invalid syntax$/,
    );
    assert.throws(
      () => render('{{ atoi "9223372036854775808" }}'),
      /error calling atoi: strconv\.Atoi: parsing "9223372036854775808": value out of range$/,
    );
    assert.throws(() => render('{{ atoi 1 }}'), /comp\.toml:1:9: executing <1>: expected string; found 1$/);
  });
});

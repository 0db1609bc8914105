import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { renderComposition } from '../../../cli/template/render-composition.ts';
import { TemplateError } from '../../../cli/template/template-error.ts';
import { parseComposition } from '../../../plan/composition.ts';
import { repoRoot } from '../../helpers/processes.ts';

/**
 * The fixtures exercise what the original's own template fixtures do (pkg/cmd/fixtures/templates); each
 * `.expected` file was produced by the original's code path (Go text/template with its helper functions
 * and BurntSushi/toml v0.4.1) and must come out of ours byte for byte.
 */
const fixtures = path.join(repoRoot, 'test/fixtures/templates');
const fixture = (name: string): string => path.join(fixtures, name);
const read = (name: string): string => readFileSync(fixture(name), 'utf8');
const render = (name: string, env: Record<string, string> = {}): string =>
  renderComposition(read(name), { file: fixture(name), env });

describe('renderComposition: the original fixtures behaviours', () => {
  it('with + load_resource: a TOML file beside the composition fills a group; trim markers eat the blank lines', () => {
    assert.equal(render('resource-with.toml'), read('resource-with.toml.expected'));
  });

  it('range over a resource array of tables, a nested with, actions inside a multi-line string', () => {
    assert.equal(render('resource-range.toml'), read('resource-range.toml.expected'));
  });

  it('define + template (withEnv .) sees $.Env; pick | toml writes [[groups]]; index with atoi', () => {
    assert.equal(
      render('define-with-env.toml', { PLAN_VERSION: '1.4.2' }),
      read('define-with-env.toml.expected'),
    );
  });

  it('a composition that is not a template comes back byte for byte (CRLF and all)', () => {
    const text = read('plain.toml');
    assert.ok(text.includes('\r\n') && !text.endsWith('\n'));
    assert.equal(renderComposition(text, { file: fixture('plain.toml'), env: {} }), text);
    const json = '{"global": {"plan": "p", "case": "c"}, "groups": [{"id": "a"}]}';
    assert.equal(renderComposition(json, { file: 'comp.json', env: {} }), json);
  });

  it('a missing resource fails at the load_resource call, naming the file it tried', () => {
    assert.throws(
      () => render('missing-resource.toml'),
      (err: unknown) => {
        assert.ok(err instanceof TemplateError);
        assert.equal(err.code, 'invalid_request');
        assert.equal(err.file, fixture('missing-resource.toml'));
        assert.equal(err.line, 4);
        assert.equal(err.column, 10);
        assert.equal(
          err.reason,
          `executing <load_resource "./resources/absent.toml">: error calling load_resource: ` +
            `open ${fixture('resources/absent.toml')}: no such file or directory`,
        );
        assert.equal(err.message, `${err.file}:4:10: ${err.reason}`);
        assert.deepEqual(err.details, [{ path: 'composition', message: `template ${err.message}` }]);
        return true;
      },
    );
  });

  it('resources are read relative to the composition, whatever the working directory', () => {
    const relative = path.relative(process.cwd(), fixture('resource-with.toml'));
    const text = renderComposition(read('resource-with.toml'), { file: relative, env: {} });
    assert.equal(text, read('resource-with.toml.expected'));
  });
});

describe('renderComposition: the rendered fixtures are compositions', () => {
  it('resource-with.toml parses and carries the resource values', () => {
    const composition = parseComposition(render('resource-with.toml'));
    assert.equal(composition.global.plan, 'network');
    assert.deepEqual(composition.groups[0]?.build_config, {
      node_version: '20',
      sdk_version: '0.1.2',
      selector: 'stable',
    });
  });

  it('resource-range.toml parses into one group per resource entry plus the baseline', () => {
    const composition = parseComposition(render('resource-range.toml'));
    assert.deepEqual(
      composition.groups.map((group) => [group.id, group.build_config?.node_version]),
      [
        ['node-18', '18'],
        ['node-20', '20'],
        ['baseline', '22'],
      ],
    );
    assert.match(String(composition.groups[2]?.build_config?.dockerfile_extra), /grep -q v22\n$/);
  });

  it('define-with-env.toml parses, with test params from the environment and groups from toml', () => {
    const composition = parseComposition(render('define-with-env.toml', { PLAN_VERSION: '1.4.2' }));
    assert.deepEqual(composition.global.run?.test_params, { version: '1.4.2', node: '20', peer: 'beta' });
    assert.deepEqual(
      composition.groups.map((group) => [group.id, group.instances?.count]),
      [
        ['listener', 1],
        ['dialer', 1],
      ],
    );
  });

  it('plain.toml parses unchanged', () => {
    assert.equal(parseComposition(render('plain.toml')).groups[0]?.id, 'single');
  });
});

describe('renderComposition: the environment', () => {
  const renderText = (text: string, env: Record<string, string | undefined>): string =>
    renderComposition(text, { file: 'comp.toml', env });

  it('.Env holds every variable; an unset one prints <no value>, as in Go', () => {
    const env = { RUNNER: 'local:exec', UNSET: undefined };
    assert.equal(renderText('runner = "{{ .Env.RUNNER }}"', env), 'runner = "local:exec"');
    assert.equal(renderText('{{ .Env.UNSET }}|{{ .Env.NEVER }}', env), '<no value>|<no value>');
  });

  it('index on .Env gives "" for an unset variable, so a default can be chosen', () => {
    const text = '{{ $r := index .Env "RUNNER" }}{{ if $r }}{{ $r }}{{ else }}local:docker{{ end }}';
    assert.equal(renderText(text, {}), 'local:docker');
    assert.equal(renderText(text, { RUNNER: 'local:exec' }), 'local:exec');
  });

  it('.Env is the only field of the data; another is an error that names it', () => {
    assert.throws(
      () => renderText('{{ .Environment.X }}', {}),
      /^TemplateError: comp.toml:1:4: executing <\.Environment\.X>: can't evaluate field Environment in type compositionData \(its fields: \.Env\)$/,
    );
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ValidationError } from '../../core/errors.ts';
import { parseManifest } from '../../plan/manifest.ts';

/** The manifest of CONTRACT §5. */
const contractExample = `
name = "example"
[defaults]
builder = "exec:node"
runner = "local:exec"
[builders."exec:node"]
enabled = true
[builders."docker:node"]
enabled = true
[runners."local:exec"]
enabled = true
[runners."local:docker"]
enabled = true
[[testcases]]
name = "sync"
instances = { min = 2, max = 1000, default = 10 }
  [testcases.params]
  some_param = { type = "int", desc = "…", unit = "peers", default = 3 }
`;

function validationError(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ValidationError, `expected a ValidationError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a ValidationError, but nothing was thrown');
}

function messageAt(err: ValidationError, path: string): string {
  const found = err.details.find((d) => d.path === path);
  assert.ok(found, `no problem at ${path}; problems: ${JSON.stringify(err.details, null, 1)}`);
  return found.message;
}

describe('parseManifest', () => {
  it('reads the contract example', () => {
    const manifest = parseManifest(contractExample);
    assert.deepEqual(manifest, {
      name: 'example',
      defaults: { builder: 'exec:node', runner: 'local:exec' },
      builders: { 'exec:node': { enabled: true }, 'docker:node': { enabled: true } },
      runners: { 'local:exec': { enabled: true }, 'local:docker': { enabled: true } },
      testcases: [
        {
          name: 'sync',
          instances: { min: 2, max: 1000, default: 10 },
          params: { some_param: { type: 'int', desc: '…', unit: 'peers', default: 3 } },
        },
      ],
      warnings: [],
    });
  });

  it('accepts what real Go-era manifests hold', () => {
    // From testground/testground's manifests/dht.toml and the docs' quickstart: legacy table names,
    // string defaults for typed params, extra keys, a test case without instances.default.
    const manifest = parseManifest(`
name = "dht"
source_path = "file://\${TESTGROUND_SRCDIR}/plans/dht"
[defaults]
builder = "exec:go"
[build_strategies."exec:go"]
enabled = true
module_path = "github.com/ipfs/testground/plans/dht"
[run_strategies."local:exec"]
enabled = true
[[testcases]]
name = "find-peers"
instances = { min = 16, max = 10000 }
roles = ["storer", "fetcher"]
  [testcases.params]
  auto_refresh  = { type = "bool", desc = "enable autorefresh", unit = "bool", default = "true" }
  n_bootstrap   = { type = "int", default = "1" }
  ratio         = { type = "float64", default = 0.5 }
  peers         = { type = "[]string", default = ["a", "b"] }
  settle        = { type = "duration", default = "30s" }
  file_size     = { type = "size", default = "64MiB" }
  enabled       = { type = "boolean" }
`);
    assert.deepEqual(Object.keys(manifest.builders), ['exec:go']);
    assert.deepEqual(manifest.builders['exec:go'], {
      enabled: true,
      module_path: 'github.com/ipfs/testground/plans/dht',
    });
    assert.deepEqual(Object.keys(manifest.runners), ['local:exec']);
    const [testCase] = manifest.testcases;
    assert.deepEqual(testCase?.instances, { min: 16, max: 10000, default: 16 });
    assert.equal(Object.hasOwn(testCase ?? {}, 'roles'), false);
    const types = Object.fromEntries(Object.entries(testCase?.params ?? {}).map(([k, v]) => [k, v.type]));
    assert.deepEqual(types, {
      auto_refresh: 'bool',
      n_bootstrap: 'int',
      ratio: 'float',
      peers: 'json',
      settle: 'duration',
      file_size: 'size',
      enabled: 'bool',
    });
    assert.equal(testCase?.params.auto_refresh?.default, 'true');
  });

  it('reports every problem at once, each with its TOML path', () => {
    const err = validationError(() =>
      parseManifest(`
[defaults]
builder = "docker:go"
runner = "local:exec"
metrics = false
[builders."exec:node"]
[runners."local:exec"]
[[testcases]]
name = "a"
instances = { min = 5, max = 2, default = 1 }
  [testcases.params]
  typo = { type = "string", defualt = "x" }
  "bad|name" = { type = "string" }
  listed = { type = "enum", values = [{ a = 1 }] }
[[testcases]]
name = "b"
instances = { min = 1, max = "many" }
[[testcases]]
name = "a"
instances = { min = 1, max = 10, default = 20 }
`),
    );
    assert.match(messageAt(err, 'manifest.name'), /^missing; expected a string/);
    assert.match(
      messageAt(err, 'manifest.defaults.metrics'),
      /accepted keys here: builder, runner, disable_metrics/,
    );
    assert.match(messageAt(err, 'manifest.testcases[0].instances.min'), /min 5 is greater than max 2/);
    assert.match(
      messageAt(err, 'manifest.testcases[0].instances.default'),
      /default 1 is outside min\.\.max \(5\.\.2\)/,
    );
    assert.match(
      messageAt(err, 'manifest.testcases[0].params.typo.defualt'),
      /unknown key "defualt"; accepted keys here: type, desc, unit, default, values, options, min, max/,
    );
    assert.match(
      messageAt(err, 'manifest.testcases[0].params."bad|name"'),
      /must not be empty or hold spaces, "=" or "\|"/,
    );
    assert.match(
      messageAt(err, 'manifest.testcases[0].params.listed.values[0]'),
      /expected a string, number or boolean, got a table/,
    );
    assert.match(messageAt(err, 'manifest.testcases[1].instances.max'), /expected a number, got "many"/);
    assert.match(
      messageAt(err, 'manifest.testcases[2].name'),
      /duplicate test case name "a" \(also testcases\[0\]\.name\)/,
    );
    assert.match(
      messageAt(err, 'manifest.testcases[2].instances.default'),
      /default 20 is outside min\.\.max \(1\.\.10\)/,
    );
    assert.equal(err.details.length, 10, JSON.stringify(err.details, null, 1));
    assert.match(err.message, /^manifest\.toml has 10 problems: manifest\.name: missing/);
  });

  it("warns, as the original's informational types allow, about what does not fit; never refuses it", () => {
    const manifest = parseManifest(`
name = "webrtc:go"
[defaults]
builder = "exec:go"
runner = "local:exec"
disable_metrics = true
[builders."exec:node"]
[runners."local:exec"]
[[testcases]]
name = "a"
instances = { min = 1, max = 10 }
  [testcases.params]
  count = { type = "int", default = "three" }
  flag = { type = "yesno", default = "maybe" }
  on = { type = "bool", default = "yes" }
  cfg = { type = "json", default = "{not json" }
  wait = { type = "duration", default = 10 }
  mode = { type = "enum", values = ["tcp", "quic"], default = "udp" }
  transport = { type = "enum", options = ["ws", "wss"], default = "ws" }
  peers = { type = "int", min = 2, max = 8, default = 9 }
  ratio = { type = "float", min = 0.5, max = 0.1 }
  untyped = { desc = "no type at all", default = ["x", 1] }
`);
    assert.equal(manifest.name, 'webrtc:go');
    assert.deepEqual(manifest.defaults, { runner: 'local:exec', disable_metrics: true });
    const params = manifest.testcases[0]!.params;
    assert.deepEqual(params.mode, { type: 'enum', values: ['tcp', 'quic'], default: 'udp' });
    assert.deepEqual(params.transport, { type: 'enum', values: ['ws', 'wss'], default: 'ws' });
    assert.deepEqual(params.peers, { type: 'int', min: 2, max: 8, default: 9 });
    assert.equal(params.flag?.type, 'string');
    assert.equal(params.untyped?.type, 'string');
    const byPath = new Map(manifest.warnings.map((warning) => [warning.path, warning.message]));
    assert.match(
      byPath.get('manifest.defaults.builder') ?? '',
      /^builder "exec:go" is not declared in \[builders\] \(declared: exec:node\), so it is ignored, as the original Testground ignored \[defaults\]; a composition without global\.builder is refused/,
    );
    assert.match(
      byPath.get('manifest.testcases[0].params.count.default') ?? '',
      /expected an integer, like 3, got "three" \(declared as int\); instances receive "three" as it is/,
    );
    assert.match(
      byPath.get('manifest.testcases[0].params.flag.type') ?? '',
      /unknown type "yesno", read as string: values are passed on unchecked .*; accepted types: int, float, bool, string, json, duration, size, enum/,
    );
    assert.match(
      byPath.get('manifest.testcases[0].params.on.default') ?? '',
      /expected true or false, got "yes"/,
    );
    assert.match(byPath.get('manifest.testcases[0].params.cfg.default') ?? '', /expected JSON text/);
    assert.match(
      byPath.get('manifest.testcases[0].params.wait.default') ?? '',
      /expected a duration with a unit, like "90s" or "10m", got 10 \(declared as duration\); instances receive "10"/,
    );
    assert.match(
      byPath.get('manifest.testcases[0].params.mode.default') ?? '',
      /expected one of "tcp", "quic", got "udp" \(declared as enum\)/,
    );
    assert.match(
      byPath.get('manifest.testcases[0].params.peers.default') ?? '',
      /9 is above the declared max 8/,
    );
    assert.match(
      byPath.get('manifest.testcases[0].params.ratio.min') ?? '',
      /min 0\.5 is greater than max 0\.1/,
    );
    assert.match(
      byPath.get('manifest.testcases[0].params.untyped.default') ?? '',
      /expected a string, got an array \(declared as string\); instances receive "\[\\"x\\",1\]" as it is/,
    );
    assert.equal(manifest.warnings.length, 10, JSON.stringify(manifest.warnings, null, 1));
  });

  it('requires builders, runners and test cases', () => {
    const err = validationError(() => parseManifest('name = "x"\ntestcases = []\n[builders]\n'));
    assert.match(
      messageAt(err, 'manifest.builders'),
      /declares no builders; add one, like \[builders\."exec:node"\]/,
    );
    assert.match(messageAt(err, 'manifest.runners'), /^missing; expected a table/);
    assert.match(messageAt(err, 'manifest.testcases'), /declares no test cases/);
  });

  it('rejects plan names that cannot be directory names', () => {
    const base = contractExample.replace('name = "example"', 'name = "../etc"');
    const err = validationError(() => parseManifest(base));
    assert.match(messageAt(err, 'manifest.name'), /must start with a letter or digit/);
  });

  it('names the line and column of a TOML syntax error', () => {
    const err = validationError(() => parseManifest('name = "x"\n[defaults]\nbuilder = \n'));
    assert.match(err.message, /^manifest\.toml is not valid TOML: line 3, column 11: invalid value/);
    assert.deepEqual(
      err.details.map((d) => d.path),
      ['manifest'],
    );
  });
});

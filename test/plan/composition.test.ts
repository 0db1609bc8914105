import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import type { Components } from '../../plan/check-config.ts';
import { parseComposition } from '../../plan/composition.ts';
import { resolveComposition } from '../../plan/resolve-composition.ts';
import { ValidationError } from '../../core/errors.ts';
import { parseManifest } from '../../plan/manifest.ts';

/** The one run a composition without several [[runs]] resolves to. */
const resolveFirstRun = (...args: Parameters<typeof resolveComposition>) =>
  resolveComposition(...args).task.runs[0]!;

const MANIFEST = parseManifest(`
name = "example"
[defaults]
builder = "exec:node"
runner = "local:exec"
[builders."exec:node"]
enabled = true
minify = false
target = "node20"
[builders."docker:node"]
enabled = true
[runners."local:exec"]
enabled = true
keep_outputs = true
[runners."local:docker"]
enabled = true
[[testcases]]
name = "sync"
instances = { min = 2, max = 20, default = 2 }
  [testcases.params]
  a = { type = "string", default = "manifest" }
  b = { type = "string", default = "manifest" }
  c = { type = "string", default = "manifest" }
  d = { type = "string", default = "manifest" }
  e = { type = "string", default = "manifest" }
  n = { type = "int", default = 3 }
  f = { type = "bool", default = false }
  r = { type = "float" }
  j = { type = "json" }
  w = { type = "duration" }
[[testcases]]
name = "ping"
instances = { min = 1, max = 5 }
`);

// Resolution tests use components that accept any config; the config checks have tests of their own.
const anyConfig = z.looseObject({});
const KNOWN: Components = {
  builders: { 'exec:node': { configSchema: anyConfig, produces: 'bundle' } },
  runners: { 'local:exec': { configSchema: anyConfig, accepts: 'bundle' } },
};

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

function resolve(toml: string) {
  return resolveFirstRun(parseComposition(toml), MANIFEST, KNOWN);
}

describe('parseComposition', () => {
  it('reads TOML and JSON into the same composition, with test params as strings', () => {
    const fromToml = parseComposition(`
[metadata]
name = "demo"
author = "me"
[global]
plan = "example"
case = "sync"
total_instances = 4
disable_metrics = true
  [global.run_config]
  timeout = "90s"
  [global.run.test_params]
  n = 5
  f = true
  a = "x"
[[groups]]
id = "one"
builder = "exec:node"
resources = { memory = "512MiB", cpu = 0.5 }
instances = { count = 4 }
  [groups.build_config]
  minify = true
`);
    const fromJson = parseComposition(
      JSON.stringify({
        metadata: { name: 'demo', author: 'me' },
        global: {
          plan: 'example',
          case: 'sync',
          total_instances: 4,
          disable_metrics: true,
          run_config: { timeout: '90s' },
          run: { test_params: { n: 5, f: true, a: 'x' } },
        },
        groups: [
          {
            id: 'one',
            builder: 'exec:node',
            resources: { memory: '512MiB', cpu: 0.5 },
            instances: { count: 4 },
            build_config: { minify: true },
          },
        ],
      }),
    );
    assert.deepEqual(fromToml, fromJson);
    assert.deepEqual(fromToml.global.run?.test_params, { n: '5', f: 'true', a: 'x' });
  });

  it('rejects unknown keys, listing the accepted ones', () => {
    const err = validationError(() =>
      parseComposition(`
[global]
plan = "example"
testcase = "sync"
[[groups]]
id = "a"
instances = { count = 2, min = 1 }
[groups.bild]
selectors = ["x"]
[groups.build]
selector = ["x"]
`),
    );
    assert.match(
      messageAt(err, 'global.testcase'),
      /unknown key "testcase"; accepted keys here: plan, case, builder, runner, total_instances, build_config, build, run_config, run, disable_metrics, concurrent_builds/,
    );
    assert.match(messageAt(err, 'global.case'), /^missing; expected a string/);
    assert.match(messageAt(err, 'groups[0].instances.min'), /accepted keys here: count, percentage/);
    assert.match(
      messageAt(err, 'groups[0].bild'),
      /accepted keys here: id, builder, build_config, build, resources, instances, run, run_config/,
    );
    assert.match(messageAt(err, 'groups[0].build.selector'), /accepted keys here: selectors, dependencies/);
  });

  it('reports shape problems with paths, all at once', () => {
    const err = validationError(() =>
      parseComposition(`
[global]
plan = "example"
case = "sync"
total_instances = 0
[[groups]]
id = "a"
instances = { count = 1, percentage = 0.5 }
resources = { memory = "lots", cpu = "-1" }
[[groups]]
id = "b"
instances = { percentage = 25 }
  [groups.run.test_params]
  nested = { x = 1 }
[[groups]]
id = "c"
instances = {}
`),
    );
    assert.match(messageAt(err, 'global.total_instances'), /must be at least 1, got 0/);
    assert.match(messageAt(err, 'groups[0].instances'), /set count or percentage, not both/);
    assert.match(messageAt(err, 'groups[0].resources.memory'), /"lots" is not a byte size/);
    assert.match(messageAt(err, 'groups[0].resources.cpu'), /positive number of CPUs/);
    assert.match(
      messageAt(err, 'groups[1].instances.percentage'),
      /fraction of total_instances between 0 and 1, like 0\.25.*got 25/,
    );
    assert.match(
      messageAt(err, 'groups[1].run.test_params.nested'),
      /expected a string, number or boolean, got a table/,
    );
    assert.match(messageAt(err, 'groups[2].instances'), /set either count .* or percentage/);
    assert.equal(err.details.length, 7, JSON.stringify(err.details, null, 1));
  });

  it("reads what the original's compositions hold: build tables, zeros as unset, k8s units, artifacts", () => {
    const composition = parseComposition(`
[global]
plan = "testground/example"
case = "sync"
concurrent_builds = 2
  [global.build]
  selectors = ["foo"]
  dependencies = [{ module = "libp2p", version = "1.2.3", target = "" }]
  [global.run]
  artifact = ""
[[groups]]
id = "a"
instances = { count = 0, percentage = 0.5 }
resources = { cpu = "500m", memory = "512Mi" }
run_config = { keep_containers = true }
  [groups.build]
  [groups.run]
  artifact = "abc123"
  profiles = { cpu = "", heap = "5s" }
[[groups]]
id = "b"
instances = { count = 3, percentage = 0 }
resources = { cpu = "", memory = "" }
`);
    assert.deepEqual(composition.global.build?.dependencies, [
      { module: 'libp2p', version: '1.2.3', target: undefined },
    ]);
    assert.equal(composition.global.run?.artifact, undefined);
    assert.deepEqual(composition.groups[0]?.instances, { percentage: 0.5 });
    assert.deepEqual(composition.groups[1]?.instances, { count: 3 });
    assert.deepEqual(composition.groups[0]?.build, {});
    assert.equal(composition.groups[0]?.run?.artifact, 'abc123');
    assert.deepEqual(composition.groups[1]?.resources, { cpu: undefined, memory: undefined });
  });

  it('refuses count and percentage both set, and says that 0 means unset', () => {
    const err = validationError(() =>
      parseComposition(`
[global]
plan = "example"
case = "sync"
[[groups]]
id = "a"
instances = { count = 2, percentage = 0.5 }
[[groups]]
id = "b"
instances = { count = 0 }
[[groups]]
id = "c"
instances = { count = 0, percentage = 0 }
resources = { cpu = "1000x" }
  [[groups.build.dependencies]]
  module = "libp2p"
  version = ""
`),
    );
    assert.equal(messageAt(err, 'groups[0].instances'), 'set count or percentage, not both');
    assert.match(
      messageAt(err, 'groups[1].instances.count'),
      /^count = 0 means unset \(as in the original Testground\); set either count .* or percentage/,
    );
    assert.match(messageAt(err, 'groups[2].instances.count'), /count = 0 means unset/);
    assert.match(messageAt(err, 'groups[2].resources.cpu'), /"1500m" \(millicores\), got "1000x"/);
    assert.match(
      messageAt(err, 'groups[2].build.dependencies[0].version'),
      /dependency "libp2p" says neither which version to take nor where from; set version .* or target/,
    );
    assert.equal(err.details.length, 5, JSON.stringify(err.details, null, 1));
  });

  it('names the position of JSON and TOML syntax errors', () => {
    const json = validationError(() => parseComposition('{\n  "global": {"plan": "x",}\n}'));
    assert.match(json.message, /^composition is not valid JSON: line 2, column 26: /);
    assert.deepEqual(
      json.details.map((d) => d.path),
      ['composition'],
    );
    // V8 gives no position for this one; the scanner finds it.
    const unplaced = validationError(() => parseComposition('{\n"a": 1,\n"b": }'));
    assert.match(unplaced.message, /^composition is not valid JSON: line 3, column 6: Unexpected token/);
    const truncated = validationError(() => parseComposition('{"global": {"plan": "x"'));
    assert.match(truncated.message, /^composition is not valid JSON: line 1, column 24: /);
    const toml = validationError(() => parseComposition('[global]\nplan = "x\n'));
    assert.match(toml.message, /^composition is not valid TOML: line 2, column \d+: /);
  });
});

describe('resolveComposition', () => {
  it('resolves a plain composition with manifest defaults', () => {
    const run = resolve(`
[global]
plan = "example"
case = "sync"
[[groups]]
id = "a"
instances = { count = 2 }
[[groups]]
id = "b"
builder = "exec:node"
resources = { memory = "1GiB", cpu = "1.5" }
instances = { count = 1 }
  [groups.build_config]
  minify = true
`);
    assert.deepEqual(
      { ...run, groups: undefined },
      {
        id: 'default',
        plan: 'example',
        testCase: 'sync',
        builder: 'exec:node',
        runner: 'local:exec',
        totalInstances: 3,
        runConfig: { keep_outputs: true },
        timeoutMs: 600_000,
        disableMetrics: false,
        groups: undefined,
      },
    );
    const defaults = {
      a: 'manifest',
      b: 'manifest',
      c: 'manifest',
      d: 'manifest',
      e: 'manifest',
      n: '3',
      f: 'false',
    };
    assert.deepEqual(run.groups, [
      {
        id: 'a',
        instances: 2,
        builder: 'exec:node',
        buildConfig: { minify: false, target: 'node20' },
        resources: {},
        dependencies: [],
        testParams: defaults,
      },
      {
        id: 'b',
        instances: 1,
        builder: 'exec:node',
        buildConfig: { minify: true, target: 'node20' },
        resources: { memoryBytes: 1024 ** 3, cpus: 1.5 },
        dependencies: [],
        testParams: defaults,
      },
    ]);
  });

  it('merges build and run config: group over global over manifest', () => {
    const run = resolve(`
[global]
plan = "example"
case = "sync"
build_config = { target = "node22", sourcemap = true }
run_config = { keep_outputs = false, timeout = "1h30m" }
[[groups]]
id = "a"
instances = { count = 2 }
build_config = { sourcemap = false }
`);
    assert.deepEqual(run.groups[0]?.buildConfig, { minify: false, target: 'node22', sourcemap: false });
    assert.deepEqual(run.runConfig, { keep_outputs: false, timeout: '1h30m' });
    assert.equal(run.timeoutMs, 5_400_000);
  });

  it('applies test-param precedence: run-group > run > group > global > manifest default', () => {
    const run = resolve(`
[global]
plan = "example"
case = "sync"
  [global.run.test_params]
  b = "global"
  c = "global"
  d = "global"
  e = "global"
[[groups]]
id = "g1"
  [groups.run.test_params]
  c = "group"
  d = "group"
  e = "group"
[[groups]]
id = "g2"
[[runs]]
id = "only"
total_instances = 3
test_params = { d = "run", e = "run" }
  [[runs.groups]]
  id = "first"
  group_id = "g1"
  instances = { count = 1 }
  test_params = { e = "run-group" }
  [[runs.groups]]
  id = "second"
  group_id = "g2"
  instances = { count = 2 }
`);
    const [first, second] = run.groups;
    assert.deepEqual(
      {
        a: first?.testParams.a,
        b: first?.testParams.b,
        c: first?.testParams.c,
        d: first?.testParams.d,
        e: first?.testParams.e,
      },
      { a: 'manifest', b: 'global', c: 'group', d: 'run', e: 'run-group' },
    );
    // g2 has no group-level params, so c falls back to global; d and e come from the run.
    assert.deepEqual(
      { c: second?.testParams.c, d: second?.testParams.d, e: second?.testParams.e },
      { c: 'global', d: 'run', e: 'run' },
    );
    assert.deepEqual(
      run.groups.map((g) => [g.id, g.instances]),
      [
        ['first', 1],
        ['second', 2],
      ],
    );
  });

  it('without [[runs]], group params override global ones', () => {
    const run = resolve(`
[global]
plan = "example"
case = "sync"
run = { test_params = { a = "global", b = "global" } }
[[groups]]
id = "g"
instances = { count = 2 }
run = { test_params = { b = "group" } }
`);
    assert.equal(run.groups[0]?.testParams.a, 'global');
    assert.equal(run.groups[0]?.testParams.b, 'group');
  });

  it('run-groups default to the group with their own id and to its instances', () => {
    const run = resolve(`
[global]
plan = "example"
case = "sync"
[[groups]]
id = "peers"
instances = { count = 4 }
[[runs]]
id = "r"
  [[runs.groups]]
  id = "peers"
`);
    assert.deepEqual(
      run.groups.map((g) => [g.id, g.instances]),
      [['peers', 4]],
    );
    assert.equal(run.totalInstances, 4);
  });

  it('reports run-groups that reference no group', () => {
    const err = validationError(() =>
      resolve(`
[global]
plan = "example"
case = "sync"
[[groups]]
id = "peers"
instances = { count = 2 }
[[runs]]
id = "r"
  [[runs.groups]]
  id = "seeders"
  [[runs.groups]]
  id = "x"
  group_id = "leechers"
  instances = { count = 2 }
`),
    );
    assert.match(
      messageAt(err, 'runs[0].groups[0].id'),
      /no \[\[groups\]\] entry has id "seeders"; declared groups: peers \(set group_id/,
    );
    assert.match(
      messageAt(err, 'runs[0].groups[1].group_id'),
      /no \[\[groups\]\] entry has id "leechers"; declared groups: peers$/,
    );
  });

  it('rounds percentages of total_instances and checks that counts add up', () => {
    const ok = resolve(`
[global]
plan = "example"
case = "sync"
total_instances = 10
[[groups]]
id = "a"
instances = { percentage = 0.3 }
[[groups]]
id = "b"
instances = { percentage = 0.7 }
`);
    assert.deepEqual(
      ok.groups.map((g) => g.instances),
      [3, 7],
    );
    assert.equal(ok.totalInstances, 10);

    // 2.5 and 7.5 both round up: 3 + 8 = 11.
    const err = validationError(() =>
      resolve(`
[global]
plan = "example"
case = "sync"
total_instances = 10
[[groups]]
id = "a"
instances = { percentage = 0.25 }
[[groups]]
id = "b"
instances = { percentage = 0.75 }
`),
    );
    assert.equal(
      messageAt(err, 'global.total_instances'),
      "the groups' instances add up to 11 (a: 3, b: 8) but total_instances is 10; make them add up; percentages are rounded to whole instances",
    );
  });

  it('reports counts that do not add up to total_instances, and percentages without a total', () => {
    const err = validationError(() =>
      resolve(`
[global]
plan = "example"
case = "sync"
total_instances = 5
[[groups]]
id = "a"
instances = { count = 2 }
[[groups]]
id = "b"
instances = { count = 2 }
`),
    );
    assert.match(
      messageAt(err, 'global.total_instances'),
      /add up to 4 \(a: 2, b: 2\) but total_instances is 5; make them add up$/,
    );

    const noTotal = validationError(() =>
      resolve(`
[global]
plan = "example"
case = "sync"
[[groups]]
id = "a"
instances = { percentage = 0.5 }
`),
    );
    assert.match(
      messageAt(noTotal, 'groups[0].instances.percentage'),
      /needs a total to take it from; set global\.total_instances/,
    );
  });

  it("checks the total against the test case's min..max", () => {
    const tooMany = validationError(() =>
      resolve(`
[global]
plan = "example"
case = "sync"
[[groups]]
id = "a"
instances = { count = 21 }
`),
    );
    assert.equal(
      messageAt(tooMany, 'groups'),
      '21 instances is outside the range 2..20 that test case "sync" accepts',
    );

    const tooFew = validationError(() =>
      resolve(`
[global]
plan = "example"
case = "sync"
total_instances = 1
[[groups]]
id = "a"
instances = { count = 1 }
`),
    );
    assert.match(messageAt(tooFew, 'global.total_instances'), /^1 instances is outside the range 2\.\.20/);
  });

  it('lists the valid test cases, builders and runners', () => {
    const err = validationError(() =>
      resolve(`
[global]
plan = "example"
case = "nope"
runner = "local:docker"
builder = "docker:go"
[[groups]]
id = "a"
builder = "docker:node"
instances = { count = 2 }
`),
    );
    assert.equal(
      messageAt(err, 'global.case'),
      'test case "nope" is not in plan "example"; its test cases: sync, ping',
    );
    assert.equal(
      messageAt(err, 'global.builder'),
      'builder "docker:go" is not supported by plan "example", which declares: exec:node, docker:node; ' +
        'builders usable with this plan here: exec:node',
    );
    assert.equal(
      messageAt(err, 'global.runner'),
      'runner "local:docker" is not available on this daemon, which has: local:exec; runners usable with this plan here: local:exec',
    );
    assert.match(
      messageAt(err, 'groups[0].builder'),
      /builder "docker:node" is not available on this daemon/,
    );
  });

  it("reports a manifest default builder this daemon lacks, at the manifest's path", () => {
    const err = validationError(() =>
      resolveFirstRun(
        parseComposition(
          '[global]\nplan = "example"\ncase = "sync"\n[[groups]]\nid = "a"\ninstances = { count = 2 }\n',
        ),
        MANIFEST,
        {
          builders: { 'docker:node': { configSchema: anyConfig, produces: 'bundle' } },
          runners: { 'local:exec': { configSchema: anyConfig, accepts: 'bundle' } },
        },
      ),
    );
    assert.match(
      messageAt(err, 'manifest.defaults.builder'),
      /builder "exec:node" \(the manifest's default\) is not available/,
    );
  });

  it('takes global.plan as a path, as the original did, and warns only when it names another plan', () => {
    const body = 'case = "sync"\n[[groups]]\nid = "a"\ninstances = { count = 2 }\n';
    for (const plan of ['example', 'testground/example', 'plans/example/']) {
      const { warnings } = resolveComposition(
        parseComposition(`[global]\nplan = "${plan}"\n${body}`),
        MANIFEST,
        KNOWN,
      );
      assert.deepEqual(warnings, [], plan);
    }
    const { task, warnings } = resolveComposition(
      parseComposition(`[global]\nplan = "libp2p/ping"\n${body}`),
      MANIFEST,
      KNOWN,
    );
    assert.equal(task.plan, 'example');
    assert.deepEqual(warnings, [
      {
        path: 'global.plan',
        message:
          'plan "libp2p/ping" is neither the uploaded plan\'s name "example" nor a path ending in it; the uploaded plan runs (the original, too, used the name in the manifest of the plan it found)',
      },
    ]);
  });

  it('replaces "/" in the plan name', () => {
    const manifest = parseManifest(
      'name = "org/example"\n[builders."exec:node"]\n[runners."local:exec"]\n[[testcases]]\nname = "t"\ninstances = { min = 1, max = 1 }\n',
    );
    const run = resolveFirstRun(
      parseComposition(
        '[global]\nplan = "org/example"\ncase = "t"\nbuilder = "exec:node"\nrunner = "local:exec"\n[[groups]]\nid = "a"\ninstances = { count = 1 }\n',
      ),
      manifest,
      KNOWN,
    );
    assert.equal(run.plan, 'org-example');
  });

  it('passes undeclared params and values of another type on, with a warning for each', () => {
    const { task, warnings } = resolveComposition(
      parseComposition(`
[global]
plan = "example"
case = "sync"
run = { test_params = { nope = "1", n = "100,10", f = "yes" } }
[[groups]]
id = "a"
instances = { count = 2 }
run = { test_params = { r = "fast", j = "{oops", w = "0" } }
`),
      MANIFEST,
      KNOWN,
    );
    const params = task.runs[0]!.groups[0]!.testParams;
    assert.deepEqual(
      { nope: params.nope, n: params.n, f: params.f, r: params.r, j: params.j, w: params.w },
      { nope: '1', n: '100,10', f: 'yes', r: 'fast', j: '{oops', w: '0' },
    );
    const byPath = new Map(warnings.map((warning) => [warning.path, warning.message]));
    assert.equal(
      byPath.get('global.run.test_params.nope'),
      'param "nope" is not declared by test case "sync" (it declares: a, b, c, d, e, n, f, r, j, w); passed on as "1", as the original passed undeclared params through',
    );
    assert.equal(
      byPath.get('global.run.test_params.n'),
      'expected an integer, like 3, got "100,10" (param "n" is declared as int); passed on as "100,10": runenv.intParam("n") will refuse it, runenv.stringParam("n") reads it',
    );
    assert.match(
      byPath.get('global.run.test_params.f') ?? '',
      /expected true or false, got "yes".*booleanParam/,
    );
    assert.match(byPath.get('groups[0].run.test_params.r') ?? '', /expected a number, like 0\.5, got "fast"/);
    assert.match(byPath.get('groups[0].run.test_params.j') ?? '', /expected JSON text.*jsonParam\("j"\)/);
    assert.match(
      byPath.get('groups[0].run.test_params.w') ?? '',
      /expected a duration with a unit.*durationParam/,
    );
    assert.equal(warnings.length, 6, JSON.stringify(warnings, null, 1));
  });

  it('accepts well-typed values and normalises booleans', () => {
    const run = resolve(`
[global]
plan = "example"
case = "sync"
run = { test_params = { n = -4, f = "TRUE", r = 1.5, j = '{"x": [1]}', w = "1m" } }
[[groups]]
id = "a"
instances = { count = 2 }
`);
    const params = run.groups[0]?.testParams;
    assert.deepEqual(
      { n: params?.n, f: params?.f, r: params?.r, j: params?.j, w: params?.w },
      { n: '-4', f: 'true', r: '1.5', j: '{"x": [1]}', w: '1m' },
    );
  });

  it('checks group ids: non-empty, unique, safe for paths', () => {
    const err = validationError(() =>
      resolve(`
[global]
plan = "example"
case = "sync"
[[groups]]
id = ""
instances = { count = 1 }
[[groups]]
id = ".."
instances = { count = 1 }
[[groups]]
id = "a/b"
instances = { count = 1 }
[[groups]]
id = "ok"
instances = { count = 1 }
[[groups]]
id = "ok"
instances = { count = 1 }
`),
    );
    assert.equal(messageAt(err, 'groups[0].id'), 'must not be empty');
    assert.match(messageAt(err, 'groups[1].id'), /cannot be a group id/);
    assert.match(messageAt(err, 'groups[2].id'), /may hold only letters, digits/);
    assert.match(messageAt(err, 'groups[4].id'), /duplicate group id "ok" \(also groups\[3\]\.id\)/);
  });

  it('reads the timeout from run_config and rejects bare numbers', () => {
    const err = validationError(() =>
      resolve(
        '[global]\nplan = "example"\ncase = "sync"\nrun_config = { timeout = "10" }\n[[groups]]\nid = "a"\ninstances = { count = 2 }\n',
      ),
    );
    assert.equal(
      messageAt(err, 'global.run_config.timeout'),
      '"10" is not a duration; use a number with a unit, like "90s" or "10m" (units: ns, us, ms, s, m, h; combine them as in "1h30m")',
    );
  });

  it('collects problems from every level before throwing', () => {
    const err = validationError(() =>
      resolve(`
[global]
plan = "other"
case = "sync"
runner = "local:nope"
total_instances = 3
run_config = { timeout = "soon" }
run = { test_params = { zzz = "1" } }
[[groups]]
id = "a b"
instances = { count = 2 }
`),
    );
    assert.deepEqual(err.details.map((d) => d.path).sort(), [
      'global.run_config.timeout',
      'global.runner',
      'global.total_instances',
      'groups[0].id',
    ]);
    assert.match(err.message, /^composition has 4 problems: /);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { ValidationError } from '../../core/errors.ts';
import type { Components } from '../../plan/check-config.ts';
import { parseComposition } from '../../plan/composition.ts';
import { parseManifest } from '../../plan/manifest.ts';
import { resolveComposition } from '../../plan/resolve-composition.ts';

const manifest = parseManifest(`
name = "example"
[defaults]
builder = "exec:node"
runner = "local:exec"
[builders."exec:node"]
[runners."local:exec"]
[[testcases]]
name = "sync"
instances = { min = 2, max = 8 }
  [testcases.params]
  role = { type = "string", default = "peer" }
  size = { type = "int", default = 1 }
  label = { type = "string" }
`);

const anyConfig = z.looseObject({});
const known: Components = {
  builders: { 'exec:node': { configSchema: anyConfig, produces: 'bundle' } },
  runners: { 'local:exec': { configSchema: anyConfig, accepts: 'bundle' } },
};

const head = '[global]\nplan = "example"\ncase = "sync"\n';

function resolve(toml: string) {
  return resolveComposition(parseComposition(toml), manifest, known);
}

function problems(toml: string): Map<string, string> {
  try {
    resolve(toml);
  } catch (error) {
    assert.ok(error instanceof ValidationError, String(error));
    return new Map(error.details.map((detail) => [detail.path, detail.message]));
  }
  assert.fail('expected the composition to be refused');
}

describe('several [[runs]]', () => {
  it('resolves each entry to its own run, with its own instances and params', () => {
    const { task, warnings } = resolve(`${head}
[[groups]]
id = "peers"
instances = { count = 1 }
run = { test_params = { role = "group" } }
[[groups]]
id = "seeds"
instances = { count = 1 }

[[runs]]
id = "small"
  [[runs.groups]]
  id = "peers"
  instances = { count = 2 }

[[runs]]
id = "medium"
test_params = { size = 3 }
  [[runs.groups]]
  id = "peers"
  instances = { count = 2 }
  [[runs.groups]]
  id = "seeds"

[[runs]]
id = "large"
total_instances = 4
test_params = { size = 4, label = "run" }
  [[runs.groups]]
  id = "peers"
  instances = { percentage = 0.5 }
  test_params = { role = "run-group" }
  [[runs.groups]]
  id = "seeds"
  instances = { percentage = 0.5 }
`);
    assert.deepEqual(warnings, []);
    assert.deepEqual(
      task.runs.map((run) => [run.id, run.totalInstances, run.groups.map((g) => [g.id, g.instances])]),
      [
        ['small', 2, [['peers', 2]]],
        [
          'medium',
          3,
          [
            ['peers', 2],
            ['seeds', 1],
          ],
        ],
        [
          'large',
          4,
          [
            ['peers', 2],
            ['seeds', 2],
          ],
        ],
      ],
    );
    const params = task.runs.map((run) => run.groups.map((g) => g.testParams));
    assert.deepEqual(params[0], [{ role: 'group', size: '1' }]);
    assert.deepEqual(params[1], [
      { role: 'group', size: '3' },
      { role: 'peer', size: '3' },
    ]);
    // The run-group's own param beats the group's; the run's beat the manifest's defaults.
    assert.deepEqual(params[2], [
      { role: 'run-group', size: '4', label: 'run' },
      { role: 'peer', size: '4', label: 'run' },
    ]);
    assert.deepEqual(
      task.runs.map((run) => [run.plan, run.testCase, run.runner, run.builder]),
      Array(3).fill(['example', 'sync', 'local:exec', 'exec:node']),
    );
  });

  it('lets a run use one group several times, under different run-group ids', () => {
    const { task } = resolve(`${head}
[[groups]]
id = "node"
instances = { count = 1 }
[[runs]]
id = "pairs"
  [[runs.groups]]
  id = "a"
  group_id = "node"
  test_params = { label = "a" }
  [[runs.groups]]
  id = "b"
  group_id = "node"
  test_params = { label = "b" }
`);
    const [a, b] = task.runs[0]!.groups;
    assert.deepEqual([a?.id, a?.testParams.label, b?.id, b?.testParams.label], ['a', 'a', 'b', 'b']);
    // Same builder, build config and dependencies: the daemon builds them once.
    assert.deepEqual(
      { builder: a?.builder, buildConfig: a?.buildConfig, dependencies: a?.dependencies },
      { builder: b?.builder, buildConfig: b?.buildConfig, dependencies: b?.dependencies },
    );
  });

  it('checks run ids like group ids, and run-group ids within each run', () => {
    const found = problems(`${head}
[[groups]]
id = "g"
instances = { count = 2 }
[[runs]]
id = "a/b"
  [[runs.groups]]
  id = "g"
[[runs]]
id = "same"
  [[runs.groups]]
  id = "g"
  [[runs.groups]]
  id = "g"
[[runs]]
id = "same"
  [[runs.groups]]
  id = "g"
[[runs]]
id = ""
  [[runs.groups]]
  id = "g"
`);
    assert.match(
      found.get('runs[0].id') ?? '',
      /"a\/b" may hold only letters, digits, "\.", "_" and "-" \(run ids become directory names\)/,
    );
    assert.equal(
      found.get('runs[1].groups[1].id'),
      'duplicate group id "g" (also runs[1].groups[0].id); group ids must be unique',
    );
    assert.equal(
      found.get('runs[2].id'),
      'duplicate run id "same" (also runs[1].id); run ids must be unique',
    );
    assert.equal(found.get('runs[3].id'), 'must not be empty');
  });

  it('names the run in every path, and the run when the path is outside it', () => {
    const found = problems(`${head}
total_instances = 4
[[groups]]
id = "g"
instances = { count = 2 }
[[runs]]
id = "ok"
  [[runs.groups]]
  id = "g"
[[runs]]
id = "too-many"
  [[runs.groups]]
  id = "g"
  instances = { count = 9 }
[[runs]]
id = "no-total"
total_instances = 3
  [[runs.groups]]
  id = "g"
  instances = { count = 2 }
[[runs]]
id = "off"
  [[runs.groups]]
  id = "g"
  instances = { percentage = 0.25 }
  [[runs.groups]]
  id = "h"
  group_id = "g"
  instances = { count = 2 }
`);
    assert.equal(
      found.get('runs[1].groups'),
      '9 instances is outside the range 2..8 that test case "sync" accepts',
    );
    assert.match(
      found.get('runs[2].total_instances') ?? '',
      /add up to 2 \(g: 2\) but total_instances is 3; make them add up$/,
    );
    assert.equal(
      found.get('global.total_instances'),
      'the groups\' instances add up to 3 (g: 1, h: 2) but total_instances is 4; make them add up; percentages are rounded to whole instances (run "off")',
    );
    assert.equal(found.size, 3, JSON.stringify([...found]));
  });

  it('takes percentages of the run’s total_instances, else the global one, and says where to set one', () => {
    const { task } = resolve(`${head}
total_instances = 4
[[groups]]
id = "g"
instances = { percentage = 0.5 }
[[runs]]
id = "own"
total_instances = 6
  [[runs.groups]]
  id = "g"
  instances = { percentage = 1 }
[[runs]]
id = "global"
  [[runs.groups]]
  id = "g"
  [[runs.groups]]
  id = "g2"
  group_id = "g"
`);
    assert.deepEqual(
      task.runs.map((run) => run.groups.map((g) => g.instances)),
      [[6], [2, 2]],
    );

    const found = problems(`${head}
[[groups]]
id = "g"
instances = { count = 2 }
[[runs]]
id = "r"
  [[runs.groups]]
  id = "g"
  instances = { percentage = 0.5 }
`);
    assert.equal(
      found.get('runs[0].groups[0].instances.percentage'),
      'a percentage needs a total to take it from; set runs[0].total_instances or global.total_instances',
    );
  });

  it('warns that global.total_instances does not bind a run that counts its groups, as in the original', () => {
    const { task, warnings } = resolve(`${head}
total_instances = 4
[[groups]]
id = "g"
instances = { count = 3 }
[[runs]]
id = "three"
  [[runs.groups]]
  id = "g"
[[runs]]
id = "four"
  [[runs.groups]]
  id = "g"
  instances = { count = 4 }
`);
    assert.deepEqual(
      task.runs.map((run) => run.totalInstances),
      [3, 4],
    );
    assert.deepEqual(warnings, [
      {
        path: 'global.total_instances',
        message:
          'total_instances = 4 does not apply to run "three", whose groups add up to 3 instances (as in the original, a [[runs]] entry counts its own groups); set runs[0].total_instances to check the sum',
      },
    ]);
  });

  it('merges run-group resources over the group’s, and warns about groups no run uses', () => {
    const { task, warnings } = resolve(`${head}
[[groups]]
id = "g"
instances = { count = 2 }
resources = { memory = "1Gi", cpu = "500m" }
[[groups]]
id = "unused"
instances = { count = 2 }
[[runs]]
id = "r"
  [[runs.groups]]
  id = "g"
  resources = { cpu = "2" }
`);
    assert.deepEqual(task.runs[0]?.groups[0]?.resources, { memoryBytes: 1024 ** 3, cpus: 2 });
    assert.deepEqual(warnings, [
      {
        path: 'groups[1]',
        message: 'group "unused" is used by no [[runs]] entry, so it is neither built nor run',
      },
    ]);
  });

  it('without [[runs]], resolves one run named default of every group', () => {
    const { task } = resolve(`${head}
[[groups]]
id = "a"
instances = { count = 1 }
[[groups]]
id = "b"
instances = { count = 1 }
`);
    assert.deepEqual(
      task.runs.map((run) => [run.id, run.groups.map((g) => g.id)]),
      [['default', ['a', 'b']]],
    );
  });
});

describe('build dependencies, artifacts and settings that have no effect', () => {
  it('merges global and group dependencies, the group winning per module, sorted by module', () => {
    const { task, warnings } = resolve(`${head}
[global.build]
dependencies = [
  { module = "libp2p", version = "1.0.0" },
  { module = "it-pipe", version = "3.0.0" },
]
[[groups]]
id = "a"
instances = { count = 1 }
  [groups.build]
  dependencies = [
    { module = "libp2p", target = "npm:@me/libp2p@2.0.0", version = "" },
    { module = "@chainsafe/noise", version = "15.0.0" },
  ]
[[groups]]
id = "b"
instances = { count = 1 }
  [groups.build]
`);
    const [a, b] = task.runs[0]!.groups;
    assert.deepEqual(a?.dependencies, [
      { module: '@chainsafe/noise', version: '15.0.0' },
      { module: 'it-pipe', version: '3.0.0' },
      { module: 'libp2p', target: 'npm:@me/libp2p@2.0.0' },
    ]);
    assert.deepEqual(b?.dependencies, [
      { module: 'it-pipe', version: '3.0.0' },
      { module: 'libp2p', version: '1.0.0' },
    ]);
    assert.deepEqual(warnings, []);
  });

  it('takes a prebuilt artifact from the group, else from global.run; "" is unset', () => {
    const { task } = resolve(`${head}
[global.run]
artifact = "global-artifact"
[[groups]]
id = "own"
instances = { count = 1 }
run = { artifact = "own-artifact" }
[[groups]]
id = "inherits"
instances = { count = 1 }
run = { artifact = "" }
`);
    assert.deepEqual(
      task.runs[0]?.groups.map((g) => [g.id, g.artifact]),
      [
        ['own', 'own-artifact'],
        ['inherits', 'global-artifact'],
      ],
    );
    const { task: unset } = resolve(
      `${head}[global.run]\nartifact = ""\n[[groups]]\nid = "g"\ninstances = { count = 2 }\n`,
    );
    assert.equal(Object.hasOwn(unset.runs[0]!.groups[0]!, 'artifact'), false);
  });

  it('warns about selectors, concurrent_builds, a group run_config and profiles, naming key and value', () => {
    const { warnings } = resolve(`${head}
concurrent_builds = 4
[global.build]
selectors = ["foo", "bar"]
[global.run]
profiles = { cpu = "" }
[[groups]]
id = "g"
instances = { count = 2 }
run_config = { keep_containers = true }
  [groups.build]
  selectors = []
`);
    const byPath = new Map(warnings.map((warning) => [warning.path, warning.message]));
    assert.equal(
      byPath.get('global.concurrent_builds'),
      'concurrent_builds = 4 has no effect: a task builds each distinct build once (groups with the same builder, build config and dependencies share it), one build after another',
    );
    assert.match(
      byPath.get('global.build.selectors') ?? '',
      /^selectors "foo", "bar" have no effect: the original passed them to its Go builders as build tags/,
    );
    assert.match(byPath.get('global.run.profiles') ?? '', /^profiles \(cpu = ""\) have no effect/);
    assert.match(
      byPath.get('groups[0].run_config') ?? '',
      /^run_config in a group has no effect \(keys: keep_containers\): the runner is configured once for the whole run, in \[global\.run_config\]/,
    );
    assert.equal(warnings.length, 4, JSON.stringify(warnings, null, 1));
  });

  it("takes disable_metrics from the manifest's [defaults] unless the composition sets it", () => {
    const withDefault = parseManifest(
      'name = "m"\n[defaults]\nbuilder = "exec:node"\nrunner = "local:exec"\ndisable_metrics = true\n' +
        '[builders."exec:node"]\n[runners."local:exec"]\n[[testcases]]\nname = "t"\ninstances = { min = 1, max = 1 }\n',
    );
    const body = '[[groups]]\nid = "g"\ninstances = { count = 1 }\n';
    const run = (global: string) =>
      resolveComposition(
        parseComposition(`[global]\nplan = "m"\ncase = "t"\n${global}${body}`),
        withDefault,
        known,
      ).task.runs[0]!;
    assert.equal(run('').disableMetrics, true);
    assert.equal(run('disable_metrics = false\n').disableMetrics, false);
  });

  it('keeps ":" in the plan name for TEST_PLAN and outputs, and replaces "/"', () => {
    const named = (name: string) =>
      parseManifest(
        `name = "${name}"\n[builders."exec:node"]\n[runners."local:exec"]\n[[testcases]]\nname = "t"\ninstances = { min = 1, max = 1 }\n`,
      );
    const composition = (plan: string) =>
      parseComposition(
        `[global]\nplan = "${plan}"\ncase = "t"\nbuilder = "exec:node"\nrunner = "local:exec"\n[[groups]]\nid = "g"\ninstances = { count = 1 }\n`,
      );
    assert.equal(
      resolveComposition(composition('webrtc:go'), named('webrtc:go'), known).task.plan,
      'webrtc:go',
    );
    assert.equal(resolveComposition(composition('org/x'), named('org/x'), known).task.runs[0]?.plan, 'org-x');
  });

  it('refuses a composition without a builder when the manifest’s default was dropped', () => {
    const undeclared = parseManifest(
      'name = "m"\n[defaults]\nbuilder = "exec:go"\nrunner = "local:exec"\n' +
        '[builders."exec:node"]\n[runners."local:exec"]\n[[testcases]]\nname = "t"\ninstances = { min = 1, max = 1 }\n',
    );
    const body = '[[groups]]\nid = "g"\ninstances = { count = 1 }\n';
    const { task, warnings } = resolveComposition(
      parseComposition(`[global]\nplan = "m"\ncase = "t"\nbuilder = "exec:node"\n${body}`),
      undeclared,
      known,
    );
    assert.equal(task.builder, 'exec:node');
    assert.deepEqual(
      warnings.map((warning) => warning.path),
      ['manifest.defaults.builder'],
    );
    assert.throws(
      () =>
        resolveComposition(parseComposition(`[global]\nplan = "m"\ncase = "t"\n${body}`), undeclared, known),
      (error: unknown) =>
        error instanceof ValidationError &&
        /^no builder chosen; set global\.builder/.test(
          error.details.find((d) => d.path === 'global.builder')?.message ?? '',
        ),
    );
  });
});

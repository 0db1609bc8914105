/**
 * The fixture compositions of test/fixtures/compositions/, one test per fixture grouped by the row of issue
 * 7's table it covers: each is parsed and resolved against its plan's manifest with the real builders' and
 * runners' config schemas, and does what expectations.json says (its runs and warnings, or the problems it
 * is refused with). Go text/template fixtures are only checked for being templates: the CLI renders them
 * before anything parses them, so resolving the raw text here would test nothing real.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DockerGenericBuilder } from '../../builders/docker-generic.ts';
import { DockerNodeBuilder } from '../../builders/docker-node.ts';
import { ExecNodeBuilder } from '../../builders/exec-node.ts';
import type { RuntimeImageProvider } from '../../builders/runtime-image.ts';
import { type ProblemDetail, ValidationError } from '../../core/errors.ts';
import type { ResolvedRun } from '../../core/run.ts';
import type { ImageClient } from '../../docker/container-engine.ts';
import type { Components } from '../../plan/check-config.ts';
import { parseComposition } from '../../plan/composition.ts';
import { parseManifest } from '../../plan/manifest.ts';
import { resolveComposition } from '../../plan/resolve-composition.ts';
import { localDockerConfigSchema } from '../../runners/local-docker/local-docker-runner.ts';
import { localExecConfigSchema } from '../../runners/local-exec/local-exec-runner.ts';
import {
  compositionsDir,
  fixtureExpectations,
  fixturePlansDir,
  type Expectation,
  type ExpectedFinding,
  type ExpectedRun,
} from '../helpers/fixture-expectations.ts';

const plansDir = fixturePlansDir;

/** The rows of issue 7's table (and the refusals that must stay); every one needs a fixture. */
const tableRows = [
  '[global.build] / [groups.build] with selectors and dependencies',
  'param type = "enum" with values/options; params with min/max',
  'instances with both count and percentage where one is 0 (Go: 0 means unset)',
  "global.plan as a plan path (libp2p/ping, testground/placebo), not the manifest's name",
  'empty [groups.build] / [global.build] tables',
  'test params not declared in the manifest (the original passes them through)',
  'resources.cpu in millicores ("1000m"), memory in k8s units ("512Mi"); "" for either',
  'run.artifact = "" (unset) / a prebuilt artifact id',
  'Go text/template compositions ({{ .Env.X }}, load_resource, withEnv): rendered by the CLI before parsing',
  'param values the manifest types differently ("100,10" for int, "0" for duration)',
  'global.concurrent_builds; groups[i].run_config; [defaults] disable_metrics; [defaults] naming a builder the plan does not declare',
  'several [[runs]]',
  'a manifest name with : (webrtc:go)',
  'docker:generic build_config.path naming a sub-directory ("./rust/")',
  "a group CPU limit above the host's cores (the original's local:docker ignored resources)",
  "build_config / run_config keys of the original's Go builders and runners",
  'still refused',
];

const fixtures = fixtureExpectations;

// The real builders and runners' schemas: what a fixture is refused or warned for depends on what they declare.
const known: Components = {
  builders: {
    'exec:node': new ExecNodeBuilder({ cacheDir: '/nonexistent', sdkEntry: '/nonexistent' }),
    'docker:node': new DockerNodeBuilder({
      engine: {} as ImageClient,
      runtimeImages: {} as RuntimeImageProvider,
      sdkEntry: '/nonexistent',
      daemonId: 'test',
    }),
    'docker:generic': new DockerGenericBuilder({ engine: {} as ImageClient, daemonId: 'test' }),
  },
  runners: {
    'local:exec': { configSchema: localExecConfigSchema, accepts: 'bundle' },
    'local:docker': { configSchema: localDockerConfigSchema, accepts: 'image' },
  },
};

function compositionText(name: string): string {
  return readFileSync(path.join(compositionsDir, `${name}.toml`), 'utf8');
}

function assertFindings(
  actual: readonly ProblemDetail[],
  expected: readonly ExpectedFinding[],
  ordered: boolean,
): void {
  const shown = JSON.stringify(actual, null, 1);
  assert.equal(actual.length, expected.length, `expected ${expected.length}, got: ${shown}`);
  expected.forEach((want, index) => {
    const found = ordered ? actual[index] : actual.find((finding) => finding.path === want.path);
    assert.equal(found?.path, want.path, `no finding at ${want.path} (position ${index}): ${shown}`);
    assert.match(found.message, new RegExp(want.pattern), `at ${want.path}`);
  });
}

function assertRun(run: ResolvedRun | undefined, want: ExpectedRun): void {
  assert.ok(run, `no run ${want.id}`);
  assert.equal(run.id, want.id);
  assert.equal(run.totalInstances, want.instances, `instances of run ${want.id}`);
  if (want.plan !== undefined) assert.equal(run.plan, want.plan);
  if (want.disableMetrics !== undefined) assert.equal(run.disableMetrics, want.disableMetrics);
  if (want.timeoutMs !== undefined) assert.equal(run.timeoutMs, want.timeoutMs);
  assert.deepEqual(
    run.groups.map((group) => [group.id, group.instances]),
    want.groups.map((group) => [group.id, group.instances]),
    `groups of run ${want.id}`,
  );
  want.groups.forEach((wanted, index) => {
    const group = run.groups[index]!;
    const where = `run ${want.id}, group ${wanted.id}`;
    if (wanted.builder !== undefined) assert.equal(group.builder, wanted.builder, where);
    if (wanted.buildConfig !== undefined) assert.deepEqual(group.buildConfig, wanted.buildConfig, where);
    if (wanted.dependencies !== undefined) assert.deepEqual(group.dependencies, wanted.dependencies, where);
    if (wanted.resources !== undefined) assert.deepEqual(group.resources, wanted.resources, where);
    if (wanted.artifact === null) assert.equal(Object.hasOwn(group, 'artifact'), false, where);
    else if (wanted.artifact !== undefined) assert.equal(group.artifact, wanted.artifact, where);
    for (const [name, value] of Object.entries(wanted.testParams ?? {}))
      assert.equal(group.testParams[name], value, `${where}, param ${name}`);
  });
}

function checkFixture(name: string, expectation: Expectation): void {
  const text = compositionText(name);
  if (expectation.template === true) {
    assert.match(text, /\{\{.*\}\}/, 'a template fixture holds template actions');
    const used = [...text.matchAll(/\.Env\.([A-Za-z_][A-Za-z0-9_]*)/g)].map((match) => match[1]);
    for (const variable of used)
      assert.ok(Object.hasOwn(expectation.env ?? {}, variable!), `env of ${name} lacks ${variable}`);
    for (const match of text.matchAll(/load_resource "([^"]+)"/g))
      assert.ok(existsSync(path.join(compositionsDir, match[1]!)), `${match[1]} exists`);
    return;
  }
  assert.doesNotMatch(text, /\{\{/, 'only template fixtures hold template actions');
  const manifest = parseManifest(
    readFileSync(path.join(plansDir, expectation.plan, 'manifest.toml'), 'utf8'),
  );
  let resolved;
  try {
    resolved = resolveComposition(parseComposition(text), manifest, known);
  } catch (error) {
    if (!(error instanceof ValidationError) || expectation.refused === undefined) throw error;
    assertFindings(error.details, expectation.refused, false);
    return;
  }
  assert.equal(expectation.refused, undefined, `${name} was expected to be refused, but it resolved`);
  const runs = expectation.runs ?? [];
  assert.deepEqual(
    resolved.task.runs.map((run) => run.id),
    runs.map((run) => run.id),
  );
  runs.forEach((run, index) => assertRun(resolved.task.runs[index], run));
  assertFindings(resolved.warnings, expectation.warnings ?? [], true);
}

describe('fixture compositions', () => {
  const files = readdirSync(compositionsDir)
    .filter((file) => file.endsWith('.toml'))
    .map((file) => file.replace(/\.toml$/, ''))
    .sort();

  it('has an expectation for every fixture, and a fixture for every expectation', () => {
    assert.deepEqual(Object.keys(fixtures).sort(), files);
  });

  it('covers every row of the table, with at least 25 compositions that are not templates', () => {
    const rows = new Set(Object.values(fixtures).map((expectation) => expectation.row));
    assert.deepEqual(
      [...rows].filter((row) => !tableRows.includes(row)),
      [],
      'rows not in the table',
    );
    assert.deepEqual(
      tableRows.filter((row) => !rows.has(row)),
      [],
      'rows without a fixture',
    );
    const plain = Object.values(fixtures).filter((expectation) => expectation.template !== true);
    assert.ok(plain.length >= 25, `${plain.length} compositions`);
  });

  it('has runnable stand-in plans: a manifest, and every test case it declares in the plan’s code', () => {
    const used = new Set(Object.values(fixtures).map((expectation) => expectation.plan));
    for (const plan of used) {
      const dir = path.join(plansDir, plan);
      const manifest = parseManifest(readFileSync(path.join(dir, 'manifest.toml'), 'utf8'));
      const generic = Object.keys(manifest.builders).every((builder) => builder === 'docker:generic');
      const entry = generic ? path.join(dir, 'node/index.mjs') : path.join(dir, 'index.ts');
      const code = readFileSync(entry, 'utf8');
      if (!generic) {
        const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as Record<
          string,
          unknown
        >;
        assert.deepEqual([pkg.type, pkg.main], ['module', 'index.ts'], `${plan}/package.json`);
        assert.match(code, /invokeMap\(/, `${plan}/index.ts uses invokeMap`);
      }
      for (const testCase of manifest.testcases)
        assert.match(code, new RegExp(`\\b${testCase.name}\\b`), `${plan} implements ${testCase.name}`);
    }
  });

  for (const row of tableRows) {
    describe(row, () => {
      for (const [name, expectation] of Object.entries(fixtures).filter(([, e]) => e.row === row)) {
        it(expectation.template === true ? `${name} (a template: checked, not resolved)` : name, () =>
          checkFixture(name, expectation),
        );
      }
    });
  }
});

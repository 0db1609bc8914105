import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DockerGenericBuilder } from '../../builders/docker-generic.ts';
import { ExecNodeBuilder } from '../../builders/exec-node.ts';
import { ValidationError } from '../../core/errors.ts';
import type { ImageClient } from '../../docker/container-engine.ts';
import type { Components } from '../../plan/check-config.ts';
import { parseComposition } from '../../plan/composition.ts';
import { parseManifest } from '../../plan/manifest.ts';
import { resolveComposition } from '../../plan/resolve-composition.ts';
import { localDockerConfigSchema } from '../../runners/local-docker/local-docker-runner.ts';
import { localExecConfigSchema } from '../../runners/local-exec/local-exec-runner.ts';

/** The one run a composition without several [[runs]] resolves to. */
const resolveFirstRun = (...args: Parameters<typeof resolveComposition>) =>
  resolveComposition(...args).task.runs[0]!;

const manifest = parseManifest(`
name = "example"
[defaults]
builder = "exec:node"
runner = "local:exec"
[builders."exec:node"]
enabled = true
go_version = "1.14"
[builders."docker:generic"]
enabled = true
[runners."local:exec"]
enabled = true
[runners."local:docker"]
enabled = true
[[testcases]]
name = "sync"
instances = { min = 1, max = 20, default = 2 }
`);

// The real builders and the real runners' schemas: the check is only as good as what they declare.
const known: Components = {
  builders: {
    'exec:node': new ExecNodeBuilder({ cacheDir: '/nonexistent', sdkEntry: '/nonexistent' }),
    'docker:generic': new DockerGenericBuilder({ engine: {} as ImageClient, daemonId: 'test' }),
  },
  runners: {
    'local:exec': { configSchema: localExecConfigSchema, accepts: 'bundle' },
    'local:docker': { configSchema: localDockerConfigSchema, accepts: 'image' },
  },
};

function problems(toml: string): { path: string; message: string }[] {
  try {
    resolveFirstRun(parseComposition(toml), manifest, known);
  } catch (error) {
    assert.ok(error instanceof ValidationError, String(error));
    return error.details;
  }
  assert.fail('expected the composition to be refused');
}

const head = '[global]\nplan = "example"\ncase = "sync"\ntotal_instances = 2\n';
const onDocker = `${head}builder = "docker:generic"\nrunner = "local:docker"\n`;
const group = (extra = '') => `[[groups]]\nid = "a"\ninstances = { count = 2 }\n${extra}`;

describe('build_config and run_config are checked at submit', () => {
  it('refuses a build_config typo, naming the key and the keys the builder accepts', () => {
    const found = problems(`${head}[global.build_config]\nentyr = "main.ts"\n${group()}`);
    assert.deepEqual(
      found.map((problem) => problem.path),
      ['global.build_config.entyr'],
    );
    assert.match(found[0]!.message, /unknown key "entyr"; accepted keys here: entry/);
  });

  it("checks a group's build_config against that group's own builder", () => {
    const found = problems(
      `${head}runner = "local:docker"\n[[groups]]\nid = "a"\nbuilder = "docker:generic"\ninstances = { count = 2 }\n[groups.build_config]\nbulid_args = { A = "1" }\n`,
    );
    assert.deepEqual(
      found.map((problem) => problem.path),
      ['groups[0].build_config.bulid_args'],
    );
    assert.match(found[0]!.message, /accepted keys here: path, build_args, base_image/);
  });

  it('refuses a known key with a value of the wrong type, at its path', () => {
    const found = problems(`${onDocker}${group('[groups.build_config]\nbuild_args = { A = 1 }\n')}`);
    assert.equal(found[0]?.path, 'groups[0].build_config.build_args.A');
    assert.match(found[0]!.message, /expected a string, got 1/);
  });

  it('reports a global build_config typo once, however many groups share it', () => {
    const toml = `[global]\nplan = "example"\ncase = "sync"\n[global.build_config]\nentyr = "x"\n[[groups]]\nid = "a"\ninstances = { count = 1 }\n[[groups]]\nid = "b"\ninstances = { count = 1 }\n`;
    assert.equal(problems(toml).filter((problem) => problem.path === 'global.build_config.entyr').length, 1);
  });

  it('refuses a run_config typo with the keys the runner accepts; timeout keeps its own check', () => {
    const found = problems(
      `${onDocker}[global.run_config]\nkeep_container = true\ntimeout = "soon"\n${group()}`,
    );
    const byPath = new Map(found.map((problem) => [problem.path, problem.message]));
    assert.match(
      byPath.get('global.run_config.keep_container') ?? '',
      /accepted keys here: timeout, keep_containers/,
    );
    assert.match(byPath.get('global.run_config.timeout') ?? '', /not a duration/);
    assert.equal(found.length, 2, JSON.stringify(found));
  });

  it("warns about the original's builder and runner keys instead of refusing them", () => {
    const { task, warnings } = resolveComposition(
      parseComposition(
        `${onDocker}[global.build_config]\ngo_version = "1.16"\nbuild_base_image = "golang:1.16"\n` +
          `[global.run_config]\nkeep_service = true\nlog_level = "debug"\n` +
          `${group('[groups.build_config]\nenable_go_build_cache = true\npath = "./rust/"\n')}`,
      ),
      manifest,
      known,
    );
    assert.deepEqual(
      warnings.map((warning) => warning.path),
      [
        'global.run_config.keep_service',
        'global.run_config.log_level',
        'global.build_config.go_version',
        'global.build_config.build_base_image',
        'groups[0].build_config.enable_go_build_cache',
      ],
    );
    assert.equal(
      warnings[0]?.message,
      '"keep_service" was a setting of the original\'s cluster:swarm, cluster:k8s runners; it has no effect on local:docker, which understands: timeout, keep_containers',
    );
    assert.equal(
      warnings[2]?.message,
      '"go_version" was a setting of the original\'s docker:go builder; it has no effect on docker:generic, which understands: path, build_args, base_image',
    );
    // A key of ours for this builder is used, not warned about.
    assert.equal(task.runs[0]?.groups[0]?.buildConfig.path, './rust/');
  });

  it("warns about a key of another builder of the original's on a Node builder", () => {
    const { warnings } = resolveComposition(
      parseComposition(
        `${head}${group('[groups.build_config]\nbuild_args = { A = "1" }\nmodule_path = "x"\n')}`,
      ),
      manifest,
      known,
    );
    assert.deepEqual(
      warnings.map((warning) => [warning.path, warning.message.split(';')[0]]),
      [
        [
          'groups[0].build_config.build_args',
          '"build_args" was a setting of the original\'s docker:go, docker:generic builders',
        ],
        [
          'groups[0].build_config.module_path',
          '"module_path" was a setting of the original\'s docker:go, exec:go builders',
        ],
      ],
    );
  });

  it("tolerates keys in the manifest's builder table that the builder does not know", () => {
    const run = resolveFirstRun(parseComposition(`${head}${group()}`), manifest, known);
    assert.equal(run.groups[0]?.buildConfig.go_version, '1.14');
  });

  it('accepts what the builder and runner declare', () => {
    const run = resolveFirstRun(
      parseComposition(
        `${onDocker}[global.build_config]\npath = "Dockerfile"\n[global.run_config]\nkeep_containers = true\n${group()}`,
      ),
      manifest,
      known,
    );
    assert.equal(run.groups[0]?.buildConfig.path, 'Dockerfile');
    assert.equal(run.runConfig.keep_containers, true);
  });
});

describe('builders and runners are matched at submit', () => {
  it('refuses a builder whose artifacts the runner cannot start, naming the builders that fit', () => {
    const found = problems(`${head}builder = "exec:node"\nrunner = "local:docker"\n${group()}`);
    assert.deepEqual(
      found.map((problem) => problem.path),
      ['global.builder'],
    );
    assert.match(
      found[0]!.message,
      /builder "exec:node" makes a bundle, but runner "local:docker" starts images; use docker:generic with it/,
    );
  });

  it("points at the group's own builder, and at the manifest's default when nothing else chose", () => {
    const own = problems(
      `${head}[[groups]]\nid = "a"\nbuilder = "docker:generic"\ninstances = { count = 2 }\n`,
    );
    assert.deepEqual(
      own.map((problem) => problem.path),
      ['groups[0].builder'],
    );
    const fromDefault = problems(`${head}runner = "local:docker"\n${group()}`);
    assert.deepEqual(
      fromDefault.map((problem) => problem.path),
      ['manifest.defaults.builder'],
    );
  });
});

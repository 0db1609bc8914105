/**
 * The CLI (`cli/main.ts`, in-process, its output captured) against the in-process app listening on a port:
 * tasks of several runs, their summaries, exit codes, archives and warnings, `--run-ids`, `status`, and the
 * build commands. The composition side of issue 7 is stood in by `resolveWithRuns`.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseToml } from 'smol-toml';
import { runCli as testground } from '../../cli/main.ts';
import { RunnerError, type ProblemDetail } from '../../core/errors.ts';
import { readTgz } from '../helpers/archive.ts';
import { resolveWithRuns, startTestApp, type RunStub, type TestApp } from '../helpers/app.ts';
import { repoRoot, scratchDir } from '../helpers/processes.ts';

const placeboDir = path.join(repoRoot, 'plans/placebo');

const compositionToml = `# one group of the placebo plan; runs come from the test's stand-in resolver
[metadata]
name = "three sizes"

[global]
plan = "placebo"
case = "ok"
builder = "exec:node"
runner = "local:exec"

[[groups]]
id = "single"
instances = { count = 1 }

  [groups.build_config]
  entry = "index.ts"

  # filled in by build composition --write-artifacts
  [groups.run]
`;

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

describe('testground run/build composition against the in-process app', () => {
  let api: TestApp;
  let server: Server;
  let endpoint: string;
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  let stubs: RunStub[] = [{ id: 'default' }];
  let warnings: ProblemDetail[] = [];
  const cwd = process.cwd();
  before(async () => {
    api = await startTestApp({
      resolve: (composition, manifest, known) =>
        resolveWithRuns(stubs, warnings)(composition, manifest, known),
    });
    api.runner.writesOutputs = true;
    server = api.app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    scratch = await scratchDir('cli-runs');
    // `--collect` writes its archive into the working directory, as a user's shell would have it.
    process.chdir(scratch.dir);
  });
  after(async () => {
    process.chdir(cwd);
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await api?.close();
    await scratch?.remove();
  });

  const cli = async (...args: string[]): Promise<Ran> => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await testground(
      ['node', 'testground', '--endpoint', endpoint, '--user', 'ci', ...args],
      {
        runDaemon: () => assert.fail('no daemon is started here'),
        runSyncService: () => assert.fail('no sync service is started here'),
      },
      { out: (text) => out.push(text), err: (text) => err.push(text) },
    );
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  };
  const writeComposition = async (name: string, text = compositionToml): Promise<string> => {
    const file = path.join(scratch.dir, name);
    await writeFile(file, text);
    return file;
  };
  const taskIdOf = (stdout: string): string => {
    const id = /\(task (\w+)\)/.exec(stdout)?.[1];
    assert.ok(id, `the CLI named the task: ${stdout}`);
    return id;
  };
  const threeRuns: RunStub[] = [
    { id: 'small', instances: 2, testParams: { size: '1' } },
    { id: 'medium', instances: 3, testParams: { size: '2' } },
    { id: 'large', instances: 4, testParams: { size: '3' } },
  ];

  it("--wait prints each run's summary under its name and exits with the worst; --collect archives every run", async () => {
    stubs = threeRuns;
    api.runner.outcomes.set('medium/single/1', 'failure');
    try {
      const file = await writeComposition('three.toml');
      const ran = await cli('run', 'composition', '-f', file, '-p', placeboDir, '--collect');
      const id = taskIdOf(ran.stdout);
      assert.equal(ran.code, 1, `a failed run makes the task fail: ${ran.stdout}\n${ran.stderr}`);
      assert.match(
        ran.stdout,
        new RegExp(`^runs ${id}-small, ${id}-medium, ${id}-large queued \\(task ${id}\\)$`, 'm'),
      );
      const summary = ran.stdout.slice(ran.stdout.indexOf(`run small (${id}-small): complete`));
      assert.deepEqual(summary.split('\n').slice(0, 8), [
        `run small (${id}-small): complete, outcome success`,
        '  single: 2/2 ok',
        `run medium (${id}-medium): complete, outcome failure (1 of 3 instances did not succeed (1 failure))`,
        '  single: 2/3 ok (1 failure)',
        `run large (${id}-large): complete, outcome success`,
        '  single: 4/4 ok',
        `task ${id}: complete, outcome failure (run medium: 1 of 3 instances did not succeed (1 failure))`,
        `outputs: ${path.join(scratch.dir, `${id}.tgz`)}`,
      ]);
      assert.match(ran.stdout, new RegExp(`INFO  run medium \\(${id}-medium\\) started: 3 instances`));
      assert.match(ran.stdout, new RegExp(`INFO  run large \\(${id}-large\\) ended: success`));

      const entries = await readTgz(path.join(scratch.dir, `${id}.tgz`));
      assert.deepEqual(
        [...entries.keys()].sort(),
        [
          ...[0, 1, 2, 3].map((index) => `${id}-large/single/${index}/run.out`),
          ...[0, 1, 2].map((index) => `${id}-medium/single/${index}/run.out`),
          ...[0, 1].map((index) => `${id}-small/single/${index}/run.out`),
        ],
        '<run_id>/<group>/<instance>/<file> for every run',
      );

      const status = await cli('status', '-t', id);
      assert.equal(status.code, 1, 'status exits by the outcome, as --wait does');
      assert.match(
        status.stdout,
        new RegExp(`^task ${id} \\(placebo/ok, 9 instances, exec:node → local:exec, by ci\\)$`, 'm'),
      );
      assert.match(status.stdout, /^ {4}single\[1\]: failure \(scripted failure\)$/m);
      assert.match(
        status.stdout,
        new RegExp(`^run large \\(${id}-large\\): complete, outcome success$`, 'm'),
      );
    } finally {
      api.runner.outcomes.clear();
    }
  });

  it('exits 3 when a run ended in error, the runs after it canceled', async () => {
    stubs = threeRuns;
    api.runner.failures.set('medium', new RunnerError('the sync service did not come up within 10000 ms'));
    try {
      const ran = await cli(
        'run',
        'composition',
        '-f',
        await writeComposition('error.toml'),
        '-p',
        placeboDir,
        '--wait',
      );
      const id = taskIdOf(ran.stdout);
      assert.equal(ran.code, 3, ran.stdout);
      assert.match(
        ran.stdout,
        new RegExp(
          `^run large \\(${id}-large\\): canceled, outcome canceled \\(not run: run medium ended in error \\(the sync service did not come up within 10000 ms\\)\\)$`,
          'm',
        ),
      );
    } finally {
      api.runner.failures.clear();
    }
  });

  it('a composition without [[runs]] reads and collects as before: <run_id>.tgz, summary lines unindented', async () => {
    stubs = [{ id: 'default', instances: 2 }];
    const ran = await cli(
      'run',
      'composition',
      '-f',
      await writeComposition('one.toml'),
      '-p',
      placeboDir,
      '--collect',
    );
    assert.equal(ran.code, 0, ran.stdout);
    const id = taskIdOf(ran.stdout);
    assert.match(ran.stdout, new RegExp(`^run ${id} queued \\(task ${id}\\)$`, 'm'));
    assert.match(ran.stdout, /^single: 2\/2 ok$/m);
    assert.match(ran.stdout, new RegExp(`^run ${id}: complete, outcome success$`, 'm'));
    const entries = await readTgz(path.join(scratch.dir, `${id}.tgz`));
    assert.deepEqual([...entries.keys()].sort(), [`${id}/single/0/run.out`, `${id}/single/1/run.out`]);
  });

  it('prints each warning once, on stderr, and not again from the log', async () => {
    stubs = [{ id: 'default' }];
    warnings = [
      { path: 'global.build.selectors', message: 'ignored: Go build tags mean nothing to exec:node' },
    ];
    try {
      const ran = await cli(
        'run',
        'composition',
        '-f',
        await writeComposition('warned.toml'),
        '-p',
        placeboDir,
        '--wait',
      );
      assert.equal(ran.code, 0, ran.stderr);
      assert.equal(
        ran.stderr,
        'warning: global.build.selectors: ignored: Go build tags mean nothing to exec:node',
      );
      assert.doesNotMatch(ran.stdout, /Go build tags/);
    } finally {
      warnings = [];
    }
  });

  it('--run-ids picks and orders runs; an unknown one is refused with the known ones (exit 2)', async () => {
    stubs = threeRuns;
    const file = await writeComposition('picked.toml');
    const ran = await cli(
      'run',
      'composition',
      '-f',
      file,
      '-p',
      placeboDir,
      '--run-ids',
      'large,small',
      '--wait',
    );
    assert.equal(ran.code, 0, ran.stdout);
    const id = taskIdOf(ran.stdout);
    assert.match(ran.stdout, new RegExp(`^runs ${id}-large, ${id}-small queued`, 'm'));
    assert.ok(
      ran.stdout.indexOf(`run large (${id}-large): complete`) <
        ran.stdout.indexOf(`run small (${id}-small): complete`),
    );
    const refused = await cli('run', 'composition', '-f', file, '-p', placeboDir, '--run-ids', 'huge');
    assert.equal(refused.code, 2);
    assert.match(
      refused.stderr,
      /run_ids: "huge" is not a run of this composition; its runs are: small, medium, large/,
    );
  });

  it('build composition --write-artifacts writes each artifact into the file; build single prints it', async () => {
    stubs = [{ id: 'default' }];
    const buildsBefore = api.builder.builds.length;
    const file = await writeComposition('build.toml');
    const built = await cli('build', 'composition', '-f', file, '-p', placeboDir, '--write-artifacts');
    assert.equal(built.code, 0, `${built.stdout}\n${built.stderr}`);
    assert.equal(api.builder.builds.length, buildsBefore + 1);
    const artifact = /^group single: (bundle:[0-9a-f]{32}) \(exec:node\)$/m.exec(built.stdout)?.[1];
    assert.ok(artifact, built.stdout);
    assert.match(built.stdout, /^build \w+: complete, outcome success$/m);
    assert.match(
      built.stdout,
      /wrote 1 artifact into .*build\.toml \(rewritten from its parsed form: comments are not kept\)/,
    );
    // Through JSON: smol-toml's tables have no prototype, which deepEqual tells apart.
    const rewritten = JSON.parse(JSON.stringify(parseToml(await readFile(file, 'utf8')))) as {
      metadata: unknown;
      groups: { id: string; build_config: unknown; run: { artifact: string } }[];
    };
    assert.deepEqual(rewritten.groups[0]?.run, { artifact });
    assert.deepEqual(rewritten.groups[0]?.build_config, { entry: 'index.ts' });
    assert.deepEqual(rewritten.metadata, { name: 'three sizes' }, 'the rest of the composition is kept');

    const json = path.join(scratch.dir, 'build.json');
    await writeFile(json, JSON.stringify(parseToml(compositionToml)));
    const builtJson = await cli('build', 'composition', '-f', json, '-p', placeboDir, '--write-artifacts');
    assert.equal(builtJson.code, 0, builtJson.stderr);
    const document = JSON.parse(await readFile(json, 'utf8')) as { groups: { run: { artifact: string } }[] };
    assert.equal(document.groups[0]?.run.artifact, artifact, 'the same plan and config: the same artifact');

    const single = await cli('build', 'single', '-p', placeboDir, '--build-config', 'entry=index.ts');
    assert.equal(single.code, 0, single.stderr);
    assert.match(single.stdout, new RegExp(`^group single: ${artifact} \\(exec:node\\)$`, 'm'));
    assert.equal(existsSync(path.join(scratch.dir, `${taskIdOf(single.stdout)}.tgz`)), false);
  });

  it('renders a composition template with the environment before sending it; its errors point into the file', async () => {
    stubs = [{ id: 'default' }];
    process.env.TG_TEMPLATE_TEST_CASE = 'ok';
    try {
      const template = compositionToml.replace('case = "ok"', 'case = "{{ .Env.TG_TEMPLATE_TEST_CASE }}"');
      const file = await writeComposition('templated.toml', template);
      const ran = await cli('run', 'composition', '-f', file, '-p', placeboDir, '--wait');
      assert.equal(ran.code, 0, `${ran.stdout}\n${ran.stderr}`);
      const task = await api.tasks.get(taskIdOf(ran.stdout));
      assert.equal(task.testCase, 'ok', 'the daemon received the rendered composition');

      const built = await cli('build', 'composition', '-f', file, '-p', placeboDir, '--write-artifacts');
      assert.equal(built.code, 0, built.stderr);
      const beside = path.join(scratch.dir, 'templated.built.toml');
      assert.match(
        built.stdout,
        /templated\.toml is a template: the rendered composition with its artifacts went beside it/,
      );
      assert.equal(await readFile(file, 'utf8'), template, 'the template itself is left as it was');
      assert.match(await readFile(beside, 'utf8'), /artifact = "bundle:[0-9a-f]{32}"/);

      const broken = await writeComposition(
        'broken.toml',
        `${compositionToml}\n# {{ lod_resource "x.toml" }}\n`,
      );
      const refused = await cli('run', 'composition', '-f', broken, '-p', placeboDir);
      assert.equal(refused.code, 2, refused.stdout);
      assert.match(refused.stderr, /broken\.toml:\d+:\d+: function "lod_resource" not defined/);
    } finally {
      delete process.env.TG_TEMPLATE_TEST_CASE;
    }
  });

  it('records --metadata-* on the task, and testground report prints or writes its reports', async () => {
    stubs = [{ id: 'default' }];
    const file = await writeComposition('metadata.toml');
    const ran = await cli(
      'run',
      'composition',
      '-f',
      file,
      '-p',
      placeboDir,
      '--wait',
      '--metadata-repo',
      'org/repo',
      '--metadata-branch',
      'main',
      '--metadata-commit',
      'abc123',
      '--supersede',
    );
    assert.equal(ran.code, 0, `${ran.stdout}\n${ran.stderr}`);
    const id = taskIdOf(ran.stdout);
    const task = await api.tasks.get(id);
    assert.deepEqual(task.metadata, { repo: 'org/repo', branch: 'main', commit: 'abc123' });

    const csv = await cli('report', '-t', id, '--format', 'csv');
    assert.equal(csv.code, 0, csv.stderr);
    assert.deepEqual(csv.stdout.split(/\r?\n/), ['run_id,task_id,outcome,error', `${id},${id},success,`]);
    const written = await cli('report', '-t', id, '--format', 'junit', '-o', 'task.xml');
    assert.equal(written.code, 0, written.stderr);
    assert.match(
      await readFile(path.join(scratch.dir, 'task.xml'), 'utf8'),
      /<testsuite name="placebo\/ok run default"/,
    );
    const unknown = await cli('report', '-t', id, '--format', 'pdf');
    assert.equal(unknown.code, 2, 'an unknown format is refused by the CLI');
  });

  it('run single --use-build of an unknown artifact is refused, naming it (exit 2)', async () => {
    stubs = [{ id: 'default' }];
    const ran = await cli(
      'run',
      'single',
      '-p',
      placeboDir,
      '-t',
      'ok',
      '-i',
      '1',
      '--use-build',
      'bundle:0badc0de',
    );
    assert.equal(ran.code, 2, ran.stdout);
    assert.match(
      ran.stderr,
      /^ {2}--use-build: artifact "bundle:0badc0de" \(run\.artifact, or --use-build\) is not known/m,
    );
  });
});

/**
 * The original Testground's habits (issue 12): each flag alias and command through the real CLI
 * (`cli/main.ts` in-process, its output captured) against the in-process app listening on a port, `--json`
 * documents checked with the API's own schemas, and the exit codes of `status` and `logs`.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  buildPurgeReportSchema,
  logLineSchema,
  submittedSchema,
  taskListSchema,
  taskViewSchema,
} from '../../api/schemas.ts';
import { exitCodes } from '../../cli/exit-codes.ts';
import { planDescriptionSchema, planListSchema, versionViewSchema } from '../../cli/json-views.ts';
import { runCli as testground } from '../../cli/main.ts';
import { Gate } from '../helpers/fake-components.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { repoRoot, scratchDir } from '../helpers/processes.ts';

const placeboDir = path.join(repoRoot, 'plans/placebo');
const exampleDir = path.join(repoRoot, 'plans/example');

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

describe('the original Testground habits, through the CLI against the in-process app', () => {
  let api: TestApp;
  let server: Server;
  let endpoint: string;
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  const cwd = process.cwd();
  const home = process.env.TESTGROUND_HOME;
  before(async () => {
    api = await startTestApp({
      retention: { policy: { outputs: {}, snapshots: {}, cache: {}, images: {} } },
    });
    server = api.app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    scratch = await scratchDir('cli-habits');
    // --collect and -O write into the working directory; plan commands use the home.
    process.chdir(scratch.dir);
    process.env.TESTGROUND_HOME = path.join(scratch.dir, 'home');
  });
  after(async () => {
    process.chdir(cwd);
    if (home === undefined) delete process.env.TESTGROUND_HOME;
    else process.env.TESTGROUND_HOME = home;
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
  const json = (ran: Ran): unknown => {
    assert.doesNotThrow(() => JSON.parse(ran.stdout), `stdout is one JSON document: ${ran.stdout}`);
    return JSON.parse(ran.stdout) as unknown;
  };
  const singleGlobal = (task: { composition: Record<string, unknown> }): Record<string, unknown> =>
    task.composition.global as Record<string, unknown>;

  it('run s --tp, --build-cfg, --run-cfg, -d, --json: the aliases reach the composition; the JSON is the API’s', async () => {
    const ran = await cli(
      'run',
      's',
      '-p',
      placeboDir,
      '-t',
      'sleep',
      '-i',
      '1',
      '--tp',
      'seconds=2',
      '--build-cfg',
      'entry=index.ts',
      '--run-cfg',
      'timeout=30s',
      '-d',
      'left-pad=1.3.0',
      '--json',
    );
    assert.equal(ran.code, 0, ran.stderr);
    const submitted = submittedSchema.parse(json(ran));
    const task = taskViewSchema.parse(json(await cli('status', '-t', submitted.task_id, '--json')));
    const global = singleGlobal(task);
    assert.deepEqual(global.run, { test_params: { seconds: '2' } });
    assert.deepEqual(global.build_config, { entry: 'index.ts' });
    assert.deepEqual(global.run_config, { timeout: '30s' });
    assert.deepEqual(global.build, { dependencies: [{ module: 'left-pad', version: '1.3.0' }] });
  });

  it('build s --wait --json, then run single --ub <artifact> --collect -o <file> -O <file> --wait', async () => {
    const built = await cli('build', 's', '-p', placeboDir, '--wait', '--json');
    assert.equal(built.code, 0, built.stderr);
    const build = taskViewSchema.parse(json(built));
    assert.equal(build.outcome, 'success');
    const artifact = build.artifacts[0]?.artifact;
    assert.ok(artifact, 'the build produced an artifact');

    api.runner.writesOutputs = true;
    const ran = await cli(
      'run',
      'single',
      '-p',
      placeboDir,
      '-t',
      'ok',
      '-i',
      '1',
      '--ub',
      artifact,
      '--collect',
      '-o',
      'outputs.tgz',
      '-O',
      'results.csv',
    );
    api.runner.writesOutputs = false;
    assert.equal(ran.code, 0, `${ran.stdout}\n${ran.stderr}`);
    assert.ok(existsSync(path.join(scratch.dir, 'outputs.tgz')), ran.stdout);
    assert.match(await readFile(path.join(scratch.dir, 'results.csv'), 'utf8'), /success/);
    const id = /\(task (\w+)\)/.exec(ran.stdout)?.[1];
    assert.ok(id, ran.stdout);
    const task = taskViewSchema.parse(json(await cli('status', '-t', id, '--json')));
    const groups = task.composition.groups as { run?: { artifact?: string } }[];
    assert.equal(groups[0]?.run?.artifact, artifact);
  });

  it('run --json --collect --junit: stdout is the ended task alone; what was written is said on stderr', async () => {
    api.runner.writesOutputs = true;
    let ran: Ran;
    try {
      ran = await cli(
        'run',
        'single',
        '-p',
        placeboDir,
        '-t',
        'ok',
        '-i',
        '1',
        '--json',
        '--collect',
        '-o',
        'json-outputs.tgz',
        '--junit',
        'junit.xml',
      );
    } finally {
      api.runner.writesOutputs = false;
    }
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(taskViewSchema.parse(json(ran)).outcome, 'success');
    assert.ok(existsSync(path.join(scratch.dir, 'json-outputs.tgz')));
    assert.match(await readFile(path.join(scratch.dir, 'junit.xml'), 'utf8'), /<testsuite/);
    assert.match(ran.stderr, /^outputs: .*json-outputs\.tgz$/m);
    assert.match(ran.stderr, /^junit report: .*junit\.xml$/m);
  });

  it('--detach returns once queued; it cannot go with --wait', async () => {
    const detached = await cli('run', 'single', '-p', placeboDir, '-t', 'ok', '-i', '1', '--detach');
    assert.equal(detached.code, 0, detached.stderr);
    assert.match(detached.stdout, /follow it with: testground logs -t \w+ -f/);
    const both = await cli('run', 'single', '-p', placeboDir, '-t', 'ok', '-i', '1', '--detach', '--wait');
    assert.equal(both.code, exitCodes.rejected);
    assert.match(both.stderr, /option '--detach' cannot be used with option '--wait'/);
  });

  it('run c, build c -w and run c -i: the composition aliases of the original', async () => {
    const file = path.join(scratch.dir, 'placebo.toml');
    await writeFile(
      file,
      [
        '[global]',
        'plan = "placebo"',
        'case = "ok"',
        'builder = "exec:node"',
        'runner = "local:exec"',
        '',
        '[[groups]]',
        'id = "single"',
        'instances = { count = 1 }',
        '',
      ].join('\n'),
    );
    const built = await cli('build', 'c', '-f', file, '-p', placeboDir, '-w');
    assert.equal(built.code, 0, built.stderr);
    assert.match(built.stdout, /wrote 1 artifact into/);
    assert.match(await readFile(file, 'utf8'), /artifact = "/);
    const ran = await cli('run', 'c', '-f', file, '-p', placeboDir, '--wait', '--json');
    assert.equal(ran.code, 0, ran.stderr);
    const prebuilt = taskViewSchema.parse(json(ran));
    assert.equal(prebuilt.outcome, 'success');
    assert.match(JSON.stringify(prebuilt.composition.groups), /"artifact"/);

    const afresh = await cli('run', 'c', '-f', file, '-p', placeboDir, '-i', '--wait', '--json');
    assert.equal(afresh.code, 0, afresh.stderr);
    assert.match(
      afresh.stderr,
      /--ignore-artifacts: building every group afresh \(1 artifact\(s\) of .* ignored\)/,
    );
    const rebuilt = taskViewSchema.parse(json(afresh));
    assert.equal(rebuilt.outcome, 'success');
    assert.doesNotMatch(JSON.stringify(rebuilt.composition.groups), /"artifact"/);
  });

  it('status and logs exit by the outcome (1 for a failure), 6 while the task runs; --extended shows the input', async () => {
    api.runner.outcomes.set('single/0', 'failure');
    let failed: string;
    try {
      const ran = await cli('run', 'single', '-p', placeboDir, '-t', 'ok', '-i', '1', '--wait');
      assert.equal(ran.code, exitCodes.failure, ran.stdout);
      failed = /\(task (\w+)\)/.exec(ran.stdout)![1]!;
    } finally {
      api.runner.outcomes.clear();
    }
    const status = await cli('status', '-t', failed);
    assert.equal(status.code, exitCodes.failure);
    const extended = await cli('status', '-t', failed, '--extended');
    assert.equal(extended.code, exitCodes.failure);
    assert.match(extended.stdout, /^ {2}composition:$/m);
    assert.match(extended.stdout, /"case": "ok"/);
    assert.match(extended.stdout, /^ {2}metadata: none$/m);
    assert.match(extended.stdout, /single\[0\]: failure \(scripted failure\)/);
    const logs = await cli('logs', '-t', failed);
    assert.equal(logs.code, exitCodes.failure);
    const logLines = await cli('logs', '-t', failed, '--json');
    assert.equal(logLines.code, exitCodes.failure);
    const parsed = logLines.stdout.split('\n').map((line) => logLineSchema.parse(JSON.parse(line)));
    assert.equal(parsed.at(-1)?.kind, 'end');

    api.runner.gate = new Gate();
    try {
      const queued = await cli('run', 'single', '-p', placeboDir, '-t', 'ok', '-i', '1');
      const id = /\(task (\w+)\)/.exec(queued.stdout)![1]!;
      await api.runner.nextRun();
      const running = await cli('status', '-t', id);
      assert.equal(running.code, exitCodes.running, running.stdout);
      assert.equal((await cli('logs', '-t', id)).code, exitCodes.running);
      api.runner.gate.open();
      assert.equal((await cli('logs', '-t', id, '-f')).code, exitCodes.success);
      assert.equal((await cli('status', '-t', id)).code, exitCodes.success);
    } finally {
      api.runner.gate.open();
      api.runner.gate = undefined;
    }
  });

  it('tasks --json is the API’s listing', async () => {
    const ran = await cli('tasks', '--limit', '3', '--json');
    assert.equal(ran.code, 0, ran.stderr);
    const list = taskListSchema.parse(json(ran));
    assert.equal(list.tasks.length, 3);
    assert.ok(list.next_cursor, 'more tasks than the limit: a cursor to go on');
  });

  it('version names the CLI and the daemon; --json too, and an absent daemon is said, not an error', async () => {
    const ran = await cli('version');
    assert.equal(ran.code, 0);
    assert.match(ran.stdout, /^testground CLI 0\.1\.0$/m);
    assert.match(ran.stdout, new RegExp(`^daemon at ${endpoint}: test$`, 'm'));
    const view = versionViewSchema.parse(json(await cli('version', '--json')));
    assert.equal(view.daemon.version, 'test');
    // A port nothing listens on: taken, then let go.
    const probe = createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const closedPort = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const out: string[] = [];
    const code = await testground(
      ['node', 'testground', '--endpoint', `http://127.0.0.1:${closedPort}`, 'version', '--json'],
      { runDaemon: () => assert.fail(), runSyncService: () => assert.fail() },
      { out: (text) => out.push(text), err: () => {} },
    );
    assert.equal(code, 0);
    const away = versionViewSchema.parse(JSON.parse(out.join('\n')));
    assert.equal(away.daemon.version, null);
    assert.equal(away.daemon.error, 'ECONNREFUSED');
  });

  it('describe -p prints every test case and param with type, default, unit and description', async () => {
    const ran = await cli('describe', '-p', exampleDir);
    assert.equal(ran.code, 0, ran.stderr);
    assert.match(ran.stdout, /^test case sync: 2 to 1000 instances \(default 10\)$/m);
    assert.match(ran.stdout, /^ {4}sleep_scale \(float, default 1\): multiplies every sleep/m);
    assert.match(ran.stdout, /^test case pubsub: 1 to 1000 instances \(default 10\)\n {2}params: none$/m);
    const description = planDescriptionSchema.parse(json(await cli('describe', '-p', exampleDir, '--json')));
    assert.deepEqual(
      description.testcases.map((testCase) => testCase.name),
      ['sync', 'pubsub'],
    );
    assert.deepEqual(description.defaults, { builder: 'exec:node', runner: 'local:exec' });
  });

  it('plan create, list [--testcases], import --from, rm: plans in $TESTGROUND_HOME/plans', async () => {
    const created = await cli('plan', 'create', '-p', 'hello');
    assert.equal(created.code, 0, created.stderr);
    const dir = path.join(scratch.dir, 'home', 'plans', 'hello');
    for (const file of ['manifest.toml', 'index.ts', 'package.json', 'tsconfig.json']) {
      assert.ok(existsSync(path.join(dir, file)), `plan create wrote ${file}`);
    }
    const again = await cli('plan', 'create', '-p', 'hello');
    assert.equal(again.code, exitCodes.rejected);
    assert.match(again.stderr, /--plan hello: .* exists and is not empty/);

    const described = await cli('describe', '-p', 'hello');
    assert.match(described.stdout, /^ {4}pause \(int, default 0, unit ms\): how long each instance waits/m);
    assert.match(described.stdout, /^ {4}greeting \(string, default "hello"\): /m);

    const source = path.join(scratch.dir, 'mine');
    await mkdir(path.join(source, 'node_modules', 'dep'), { recursive: true });
    await writeFile(path.join(source, 'manifest.toml'), 'name = "mine"\n[[testcases]]\nname = "only"\n');
    await writeFile(path.join(source, 'index.ts'), '// mine\n');
    await writeFile(path.join(source, 'node_modules', 'dep', 'index.js'), '// installed\n');
    const imported = await cli('plan', 'import', '--from', source);
    assert.equal(imported.code, 0, imported.stderr);
    assert.ok(existsSync(path.join(scratch.dir, 'home', 'plans', 'mine', 'index.ts')));
    assert.ok(!existsSync(path.join(scratch.dir, 'home', 'plans', 'mine', 'node_modules')));
    const remote = await cli('plan', 'import', '--from', 'git@github.com:acme/plans.git');
    assert.equal(remote.code, exitCodes.rejected);
    assert.match(remote.stderr, /only a local directory can be imported; clone the repository first/);
    const goTemplate = await cli('plan', 'create', '-p', 'other', '--target', 'go');
    assert.equal(goTemplate.code, exitCodes.rejected);
    assert.match(goTemplate.stderr, /argument 'go' is invalid. Allowed choices are typescript/);
    const twice = await cli('plan', 'import', '--from', source);
    assert.equal(twice.code, exitCodes.rejected);
    assert.match(twice.stderr, /exists already; remove it with "testground plan rm -p mine --yes"/);

    const listed = planListSchema.parse(json(await cli('plan', 'list', '--json')));
    assert.deepEqual(
      listed.plans.map((plan) => [plan.name, plan.testcases]),
      [
        ['hello', ['hello']],
        ['mine', ['only']],
      ],
    );
    assert.equal((await cli('plan', 'list', '--testcases')).stdout, 'hello:hello\nmine:only');

    const unconfirmed = await cli('plan', 'rm', '-p', 'mine');
    assert.equal(unconfirmed.code, exitCodes.rejected);
    assert.ok(existsSync(path.join(scratch.dir, 'home', 'plans', 'mine')));
    assert.equal((await cli('plan', 'rm', '-p', 'mine', '--yes')).code, 0);
    assert.ok(!existsSync(path.join(scratch.dir, 'home', 'plans', 'mine')));
  });

  it("build purge -b exec:node -p <plan> removes that plan's bundles only; an unknown builder is refused by name", async () => {
    const bundle = async (hash: string, plan: string): Promise<string> => {
      const dir = path.join(api.dirs.cache, hash);
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, 'manifest.toml'), `name = "${plan}"\n`);
      await writeFile(path.join(dir, 'bundle.mjs'), '// bundle\n');
      return dir;
    };
    const mine = await bundle('a'.repeat(32), 'purged');
    const theirs = await bundle('b'.repeat(32), 'kept');
    const ran = await cli('build', 'p', '-b', 'exec:node', '-p', 'purged', '--json');
    assert.equal(ran.code, 0, ran.stderr);
    const report = buildPurgeReportSchema.parse(json(ran));
    assert.deepEqual(
      report.removed.map((entry) => entry.id),
      [`bundle:${'a'.repeat(32)}`],
    );
    assert.ok(!existsSync(mine));
    assert.ok(existsSync(theirs));

    const plain = await cli('build', 'purge', '-b', 'exec:node', '-p', 'kept');
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, /^purged plan kept for builder exec:node: removed 1 entry, \d+ bytes$/m);

    const unknown = await cli('build', 'purge', '-b', 'exec:go', '-p', 'kept');
    assert.equal(unknown.code, exitCodes.rejected);
    assert.match(
      unknown.stderr,
      /builder "exec:go" keeps no caches to purge; accepted: exec:node, docker:node, docker:generic/,
    );
  });

  it('healthcheck and gc take --json too', async () => {
    const health = await cli('healthcheck', '-r', 'local:exec', '--json');
    assert.equal(typeof (json(health) as { ok: unknown }).ok, 'boolean');
    const gc = await cli('gc', '--dry-run', '--json');
    assert.equal(gc.code, 0, gc.stderr);
    assert.equal((json(gc) as { dryRun: unknown }).dryRun, true);
  });
});

/**
 * A composition of three [[runs]] through the real CLI and a real daemon (local:exec): one build, three runs
 * one after another with their own params, outcomes and outputs, one archive of all of them, and the exit
 * code of the worst; then a build task whose artifacts, written into the composition, spare the next run
 * its build.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { XMLParser } from 'fast-xml-parser';
import { readTgz } from '../helpers/archive.ts';
import { taskIdOf, taskOf } from '../helpers/daemon-api.ts';
import {
  repoRoot,
  runCli,
  scratchDir,
  startDaemonProcess,
  type DaemonProcess,
} from '../helpers/processes.ts';

const execFileAsync = promisify(execFile);
const junitSchema = path.join(repoRoot, 'test/fixtures/junit/junit.xsd');

// A plan of its own, so that a run-group's params decide whether its instances fail.
const manifest = `name = "sizes"

[defaults]
builder = "exec:node"
runner = "local:exec"

[builders."exec:node"]
enabled = true

[runners."local:exec"]
enabled = true

[[testcases]]
name = "sized"
instances = { min = 1, max = 100, default = 1 }

  [testcases.params]
  size = { type = "string", default = "unset" }
  fail = { type = "bool", default = false }
`;

const plan = `import { invokeMap, type RunEnv } from 'testground-sdk';

await invokeMap({
  sized: (runenv: RunEnv) => {
    runenv.recordMessage(\`size \${runenv.stringParam('size')}\`);
    if (runenv.booleanParam('fail')) throw new Error(\`size \${runenv.stringParam('size')} fails on purpose\`);
  },
});
`;

// small: its run-group overrides the group's size; medium: its run-group makes it fail; large: run params.
const composition = `# three runs of one group, one build
[metadata]
name = "three sizes"

[global]
plan = "sizes"
case = "sized"
builder = "exec:node"
runner = "local:exec"

[[groups]]
id = "peers"

  [groups.run]
  test_params = { size = "group" }

[[runs]]
id = "small"
total_instances = 2

  [[runs.groups]]
  id = "peers"
  instances = { count = 2 }
  test_params = { size = "tiny" }

[[runs]]
id = "medium"
total_instances = 3
test_params = { size = "medium" }

  [[runs.groups]]
  id = "peers"
  instances = { count = 3 }
  test_params = { fail = "true" }

[[runs]]
id = "large"
total_instances = 4
test_params = { size = "large" }

  [[runs.groups]]
  id = "peers"
  instances = { count = 4 }
`;

interface StartEvent {
  run_id: string;
  event: { type: string; runenv?: { params?: Record<string, string> } };
}

describe('a composition of three [[runs]] through the real CLI and daemon (local:exec)', () => {
  let daemon: DaemonProcess;
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  let planDir: string;
  before(async () => {
    scratch = await scratchDir('runs');
    planDir = path.join(scratch.dir, 'sizes');
    await mkdir(planDir, { recursive: true });
    await writeFile(path.join(planDir, 'manifest.toml'), manifest);
    await writeFile(path.join(planDir, 'index.ts'), plan);
    await writeFile(
      path.join(planDir, 'package.json'),
      JSON.stringify({ name: 'sizes', private: true, type: 'module', main: 'index.ts' }),
    );
    daemon = await startDaemonProcess({ home: path.join(scratch.dir, 'home') });
  });
  after(async () => {
    await daemon?.stop();
    await scratch?.remove();
  });

  const testground = (...args: string[]) => runCli(['--endpoint', daemon.url, ...args], { cwd: scratch.dir });
  const logOf = async (taskId: string): Promise<string> =>
    (await fetch(`${daemon.url}/api/v1/tasks/${taskId}/logs`)).text();

  it('builds once, runs three runs with their own params, outcomes and outputs, and exits with the worst', async () => {
    const file = path.join(scratch.dir, 'three.toml');
    await writeFile(file, composition);
    const summary = path.join(scratch.dir, 'step-summary.md');
    const ran = await runCli(
      [
        '--endpoint',
        daemon.url,
        'run',
        'composition',
        '-f',
        file,
        '-p',
        planDir,
        '--collect',
        '--junit',
        'report.xml',
        '--result-file',
        'results.csv',
      ],
      { cwd: scratch.dir, env: { GITHUB_STEP_SUMMARY: summary } },
    );
    const taskId = taskIdOf(ran.stdout);
    assert.equal(ran.code, 1, `the worst run failed: exit 1\n${ran.stdout}\n${ran.stderr}`);

    // --junit: a real XML parser reads it, and it validates against the JUnit schema.
    const junit = path.join(scratch.dir, 'report.xml');
    const { stderr: validated } = await execFileAsync('xmllint', ['--noout', '--schema', junitSchema, junit]);
    assert.match(validated, /validates/);
    const xml = new XMLParser({
      ignoreAttributes: false,
      attributeNamePrefix: '',
      isArray: (name) => ['testsuite', 'testcase'].includes(name),
    }).parse(await readFile(junit, 'utf8')) as {
      testsuites: {
        failures: string;
        testsuite: {
          id: string;
          tests: string;
          failures: string;
          testcase: { name: string; failure?: { message: string; '#text': string } }[];
        }[];
      };
    };
    assert.deepEqual(
      xml.testsuites.testsuite.map((suite) => [suite.id, suite.tests, suite.failures]),
      [
        [`${taskId}-small`, '1', '0'],
        [`${taskId}-medium`, '1', '1'],
        [`${taskId}-large`, '1', '0'],
      ],
    );
    const failure = xml.testsuites.testsuite[1]!.testcase[0]!.failure;
    assert.equal(failure?.message, '3 of 3 instances did not succeed');
    assert.match(failure?.['#text'] ?? '', /peers\[0\] failure: /);
    assert.match(failure?.['#text'] ?? '', /last lines:/, "each failed instance's last log lines");
    // --result-file: the original's columns, one row per run.
    assert.deepEqual(
      (await readFile(path.join(scratch.dir, 'results.csv'), 'utf8')).trimEnd().split('\r\n'),
      [
        'run_id,task_id,outcome,error',
        `${taskId}-small,${taskId},success,`,
        `${taskId}-medium,${taskId},failure,3 of 3 instances did not succeed (3 failure)`,
        `${taskId}-large,${taskId},success,`,
      ],
    );
    // $GITHUB_STEP_SUMMARY: a Markdown summary appended.
    assert.match(await readFile(summary, 'utf8'), /^### Testground sizes\/sized: ❌ failure/m);
    assert.match(ran.stdout, new RegExp(`^run small \\(${taskId}-small\\): complete, outcome success$`, 'm'));
    assert.match(
      ran.stdout,
      new RegExp(`^run medium \\(${taskId}-medium\\): complete, outcome failure`, 'm'),
    );
    assert.match(ran.stdout, new RegExp(`^run large \\(${taskId}-large\\): complete, outcome success$`, 'm'));
    assert.match(ran.stdout, /^ {2}peers: 0\/3 ok \(3 failure\)$/m);

    const log = await logOf(taskId);
    assert.equal(log.match(/building group peers with exec:node/g)?.length, 1, 'one build for three runs');
    assert.equal(log.match(/exec:node: (built|plan unchanged)/g)?.length, 1, 'one bundle');

    const task = await taskOf(daemon.url, taskId);
    assert.equal(task.outcome, 'failure');
    assert.deepEqual(
      task.runs.map((run) => [run.id, run.instances, run.outcome]),
      [
        [`${taskId}-small`, 2, 'success'],
        [`${taskId}-medium`, 3, 'failure'],
        [`${taskId}-large`, 4, 'success'],
      ],
    );

    // --collect: <task_id>.tgz holding each run as <run_id>/<group>/<instance>/<file>.
    const entries = await readTgz(path.join(scratch.dir, `${taskId}.tgz`));
    const expectedSizes: Record<string, [number, string]> = {
      small: [2, 'tiny'],
      medium: [3, 'medium'],
      large: [4, 'large'],
    };
    for (const [name, [instances, size]] of Object.entries(expectedSizes)) {
      const runId = `${taskId}-${name}`;
      const runOuts = [...entries.keys()].filter(
        (entry) => entry.startsWith(`${runId}/`) && entry.endsWith('/run.out'),
      );
      assert.deepEqual(
        runOuts.sort(),
        Array.from({ length: instances }, (_, index) => `${runId}/peers/${index}/run.out`).sort(),
      );
      for (const entry of runOuts) {
        const start = JSON.parse(entries.get(entry)!.split('\n')[0]!) as StartEvent;
        assert.equal(start.run_id, runId, 'each instance knows its run');
        assert.equal(start.event.runenv?.params?.size, size, `${name}: params by precedence`);
      }
    }
  });

  it('build composition --write-artifacts, then run composition builds nothing', async () => {
    const file = path.join(scratch.dir, 'prebuilt.toml');
    await writeFile(file, composition);
    const built = await testground('build', 'composition', '-f', file, '-p', planDir, '--write-artifacts');
    assert.equal(built.code, 0, `${built.stdout}\n${built.stderr}`);
    const artifact = /^group peers: (bundle:[0-9a-f]+) \(exec:node\)$/m.exec(built.stdout)?.[1];
    assert.ok(artifact, built.stdout);
    assert.match(await readFile(file, 'utf8'), new RegExp(`artifact = "${artifact}"`));

    const ran = await testground(
      'run',
      'composition',
      '-f',
      file,
      '-p',
      planDir,
      '--run-ids',
      'large,small',
      '--wait',
    );
    assert.equal(ran.code, 0, `${ran.stdout}\n${ran.stderr}`);
    const log = await logOf(taskIdOf(ran.stdout));
    assert.doesNotMatch(log, /building group|exec:node: (built|plan unchanged|bundl)/, 'no build');
  });

  it('run single --use-build of an unknown artifact is a 400 naming it', async () => {
    const ran = await testground(
      'run',
      'single',
      '-p',
      planDir,
      '-t',
      'sized',
      '-i',
      '1',
      '--use-build',
      'bundle:00000000000000000000000000000000',
    );
    assert.equal(ran.code, 2, ran.stdout);
    assert.match(
      ran.stderr,
      /^ {2}--use-build: artifact "bundle:0{32}" \(run\.artifact, or --use-build\) is not known to this daemon/m,
    );
  });
});

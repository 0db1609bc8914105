/**
 * The fixture compositions of test/fixtures/compositions/ end to end: each one submitted through the real CLI
 * (`testground run composition -f <file> -p <plan> --wait`) to one real daemon process that runs four tasks
 * at a time on local:exec and local:docker, and checked against expectations.json as far as a user can see
 * it: the exit code, each run's outcome and instances in the task view, the groups' instance counts, the
 * params, plan and versions each instance wrote to report.json in its outputs, the warnings on stderr (once
 * each), in the submit response and in the task log, or the problems of a refusal on stderr. Templates are
 * rendered by the CLI with their expectation's env; the prebuilt-artifact fixture gets its artifact from
 * `build composition --write-artifacts` first.
 *
 * Every CLI call starts in `before`, a few at a time; each test waits for its own fixture's calls.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { logLineSchema, type LogLine, type RunView, type TaskView } from '../../api/schemas.ts';
import { exitCodeForOutcome, exitCodes } from '../../cli/exit-codes.ts';
import { formatBytes } from '../../runners/local-docker/host-resource-clamp.ts';
import { connectEngine } from '../docker/docker-fixtures.ts';
import { taskIdOf, taskOf } from '../helpers/daemon-api.ts';
import {
  compositionsDir,
  fixtureExpectations,
  fixturePlansDir,
  type Expectation,
  type ExpectedFinding,
  type ExpectedGroup,
  type ExpectedRun,
} from '../helpers/fixture-expectations.ts';
import type { ResolvedGroup } from '../../core/run.ts';
import {
  runCli,
  scratchDir,
  startDaemonProcess,
  type CliResult,
  type DaemonProcess,
} from '../helpers/processes.ts';

const plansDir = fixturePlansDir;
// The daemon's workers: tasks run side by side, as many as the 2-core machine bears.
const workerConcurrency = 4;
// CLI processes at once: each starts Node and tsx, which costs a core for most of a second.
const cliConcurrency = 6;
// How long a fixture's test waits for its submissions (they all start in `before`), and the daemon for its stop.
const fixtureTimeoutMs = 180_000;
const stopGraceMs = 20_000;

type ExpectedDependency = ResolvedGroup['dependencies'][number];

/** What an instance of the stand-in plans writes to its outputs. */
interface Report {
  plan: string;
  group: string;
  instances: number;
  groupInstances: number;
  disableMetrics: boolean;
  params: Record<string, string>;
  versions?: Record<string, string>;
}

/** One submission as a user sees it: the CLI's output, and for an accepted one the task, its log and outputs. */
interface Submission {
  cli: CliResult;
  task?: TaskView;
  log: LogLine[];
  /** By run name, then group id: each instance's report.json, in instance order. */
  reports: Map<string, Map<string, Report[]>>;
  /** By run name, then group id: how many instance directories the run's outputs hold. */
  instanceDirs: Map<string, Map<string, number>>;
}

/** The prebuilt-artifact fixture's steps. */
interface PrebuiltSubmissions {
  /** The fixture as it is: its artifact id is one no daemon built. */
  unknown: Submission;
  /** `build composition --write-artifacts` of a copy whose artifact is unset. */
  built: CliResult;
  /** The artifact the build wrote into the copy. */
  artifact: string;
  /** The copy, run: every group starts from the written artifact. */
  rewritten: Submission;
  /** The fixture with its placeholder replaced by the artifact: only the other group is built. */
  named: Submission;
}

const fixtures = fixtureExpectations;
const prebuiltPlaceholder = 'fixture-prebuilt-artifact';

/** Runs at most `max` of the given calls at once. */
function limiter(max: number): <T>(call: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (call) => {
    while (active >= max) await new Promise<void>((resolve) => waiting.push(resolve));
    active += 1;
    try {
      return await call();
    } finally {
      active -= 1;
      waiting.shift()?.();
    }
  };
}

function worstOutcome(runs: readonly ExpectedRun[]): 'success' | 'failure' {
  return runs.some((run) => run.outcome === 'failure') ? 'failure' : 'success';
}

/** Whether the plan's instances write report.json (the docker:generic plan has no SDK and writes none). */
function writesReports(plan: string): boolean {
  const entry = path.join(plansDir, plan, 'index.ts');
  return existsSync(entry) && readFileSync(entry, 'utf8').includes('report.json');
}

/** The version a group's instances should report for a dependency entry: a `file:` target's own, or `version`. */
function expectedVersion(plan: string, dependency: ExpectedDependency): string | undefined {
  if (dependency.target?.startsWith('file:')) {
    const dir = path.join(plansDir, plan, dependency.target.slice('file:'.length));
    return (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version;
  }
  return dependency.version;
}

/** `warning: <path>: <message>` lines of the CLI's stderr. */
function stderrWarnings(stderr: string): { path: string; message: string }[] {
  return [...stderr.matchAll(/^warning: (\S+): (.*)$/gm)].map((match) => ({
    path: match[1]!,
    message: match[2]!,
  }));
}

/** The problems a refusal lists on stderr, one `  <path>: <message>` line each. */
function stderrProblems(stderr: string): { path: string; message: string }[] {
  return [...stderr.matchAll(/^ {2}(\S+): (.*)$/gm)].map((match) => ({
    path: match[1]!,
    message: match[2]!,
  }));
}

function assertFindingsInOrder(
  actual: readonly { path: string; message: string }[],
  expected: readonly ExpectedFinding[],
  where: string,
): void {
  const shown = JSON.stringify(actual, null, 1);
  assert.deepEqual(
    actual.map((finding) => finding.path),
    expected.map((finding) => finding.path),
    `${where}: ${shown}`,
  );
  expected.forEach((want, index) =>
    assert.match(actual[index]!.message, new RegExp(want.pattern), `${where}, ${want.path}`),
  );
}

/**
 * A group's resources as the task log shows them: local:exec says it does not enforce them, naming each
 * limited group with its limits; local:docker clamps a CPU limit above the host's and says so.
 */
function assertResourcesShown(messages: string, runner: string, group: ExpectedGroup, at: string): void {
  if (group.resources === undefined) return;
  const { cpus, memoryBytes } = group.resources;
  if (runner === 'local:exec') {
    const notEnforced =
      /^local:exec: resources are not enforced on this runner.*$/m.exec(messages)?.[0] ?? '';
    const asked = [
      ...(cpus ? [`cpu ${cpus}`] : []),
      ...(memoryBytes ? [`memory ${formatBytes(memoryBytes)}`] : []),
    ];
    if (asked.length === 0)
      assert.ok(!notEnforced.includes(` ${group.id} (`), `${at}: no limits, none named: ${notEnforced}`);
    else assert.ok(notEnforced.includes(` ${group.id} (${asked.join(', ')})`), `${at}: ${notEnforced}`);
  } else if (runner === 'local:docker' && cpus !== undefined && cpus > os.availableParallelism()) {
    assert.match(
      messages,
      new RegExp(
        `^local:docker: group ${group.id} asks for ${cpus} CPUs \\(resources\\.cpu\\) but the host has (\\d+); using \\1$`,
        'm',
      ),
      `${at}: the clamp is in the task log`,
    );
  }
}

describe('fixture compositions through the real CLI and one real daemon', () => {
  let daemon: DaemonProcess;
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  const submissions = new Map<string, Promise<Submission>>();
  let prebuilt: Promise<PrebuiltSubmissions>;

  before(async () => {
    const needsDocker = Object.values(fixtures).some((fixture) => fixture.requires?.includes('docker'));
    if (needsDocker) await connectEngine();
    scratch = await scratchDir('fixtures');
    daemon = await startDaemonProcess({
      home: path.join(scratch.dir, 'home'),
      env: { TESTGROUND_WORKER_CONCURRENCY: String(workerConcurrency) },
    });
    const limit = limiter(cliConcurrency);
    const cli = (args: string[], env: Record<string, string> = {}): Promise<CliResult> =>
      limit(() => runCli(['--endpoint', daemon.url, ...args], { cwd: scratch.dir, env }));
    const submit = async (file: string, expectation: Expectation): Promise<Submission> => {
      const planDir = path.join(plansDir, expectation.plan);
      const result = await cli(['run', 'composition', '-f', file, '-p', planDir, '--wait'], expectation.env);
      return observe(result);
    };
    const observe = async (result: CliResult): Promise<Submission> => {
      const submission: Submission = { cli: result, log: [], reports: new Map(), instanceDirs: new Map() };
      if (!/\(task \w+\)/.test(result.stdout)) return submission;
      const task = await taskOf(daemon.url, taskIdOf(result.stdout));
      submission.task = task;
      const logText = await (await fetch(`${daemon.url}/api/v1/tasks/${task.id}/logs`)).text();
      submission.log = logText
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => logLineSchema.parse(JSON.parse(line)));
      for (const run of task.runs) {
        const runDir = path.join(daemon.home, 'outputs', task.runner, task.plan, run.id);
        const reports = new Map<string, Report[]>();
        const dirs = new Map<string, number>();
        for (const group of existsSync(runDir) ? await readdir(runDir) : []) {
          const instances = (await readdir(path.join(runDir, group))).sort((a, b) => Number(a) - Number(b));
          dirs.set(group, instances.length);
          const found: Report[] = [];
          for (const instance of instances) {
            const file = path.join(runDir, group, instance, 'report.json');
            if (existsSync(file)) found.push(JSON.parse(await readFile(file, 'utf8')) as Report);
          }
          reports.set(group, found);
        }
        submission.reports.set(run.name, reports);
        submission.instanceDirs.set(run.name, dirs);
      }
      return submission;
    };

    // Docker builds and the prebuilt chain take longest: they start first.
    const order = Object.entries(fixtures).sort(
      ([, a], [, b]) => Number(b.requires !== undefined) - Number(a.requires !== undefined),
    );
    for (const [name, expectation] of order) {
      const file = path.join(compositionsDir, `${name}.toml`);
      if (expectation.requires?.includes('prebuilt-artifact')) {
        prebuilt = (async () => {
          const unknown = await submit(file, expectation);
          const copy = path.join(scratch.dir, `${name}.toml`);
          const text = await readFile(file, 'utf8');
          assert.ok(text.includes(`"${prebuiltPlaceholder}"`), `${name} names ${prebuiltPlaceholder}`);
          await writeFile(copy, text.replaceAll(`"${prebuiltPlaceholder}"`, '""'));
          const built = await cli([
            'build',
            'composition',
            '-f',
            copy,
            '-p',
            path.join(plansDir, expectation.plan),
            '--write-artifacts',
          ]);
          const artifact = /^group \S+: (\S+) \(/m.exec(built.stdout)?.[1] ?? '';
          const rewritten = await submit(copy, expectation);
          const named = path.join(scratch.dir, `${name}.named.toml`);
          await writeFile(named, text.replaceAll(`"${prebuiltPlaceholder}"`, JSON.stringify(artifact)));
          return { unknown, built, artifact, rewritten, named: await submit(named, expectation) };
        })();
        prebuilt.catch(() => undefined);
        continue;
      }
      const submission = submit(file, expectation);
      submission.catch(() => undefined);
      submissions.set(name, submission);
    }
  });

  after(async () => {
    // A run that never ends would hold up a graceful stop for good; the test has failed by then anyway.
    const stopped = await Promise.race([
      daemon?.stop(),
      delay(stopGraceMs, undefined, { ref: false }).then(() => 'late' as const),
    ]);
    if (stopped === 'late') daemon.child.kill('SIGKILL');
    await scratch?.remove();
  });

  function assertRefused(submission: Submission, expectation: Expectation): void {
    const { cli } = submission;
    const shown = `${cli.stdout}\n${cli.stderr}`;
    assert.equal(cli.code, exitCodes.rejected, `refused: exit ${exitCodes.rejected}\n${shown}`);
    assert.equal(submission.task, undefined, `nothing was queued\n${shown}`);
    const problems = stderrProblems(cli.stderr);
    const expected = expectation.refused ?? [];
    assert.equal(problems.length, expected.length, `problems on stderr:\n${cli.stderr}`);
    for (const want of expected) {
      const found = problems.find((problem) => problem.path === want.path);
      assert.ok(found, `a problem at ${want.path} on stderr:\n${cli.stderr}`);
      assert.match(found.message, new RegExp(want.pattern), want.path);
    }
  }

  /**
   * Everything a user can see of an accepted fixture. `artifacts` maps the expectation's artifact ids to
   * real ones; `prebuilt` names the artifact of groups that run from one whatever the expectation says.
   */
  function assertRan(
    submission: Submission,
    expectation: Expectation,
    options: { artifacts?: Record<string, string>; prebuilt?: Record<string, string> } = {},
  ): void {
    const { cli } = submission;
    const shown = `${cli.stdout}\n${cli.stderr}`;
    const task: TaskView | undefined = submission.task;
    if (task === undefined) assert.fail(`a task was queued\n${shown}`);
    const runs = expectation.runs ?? [];
    const outcome = worstOutcome(runs);
    assert.equal(
      cli.code,
      exitCodeForOutcome(outcome),
      `exit code of a task whose outcome is ${outcome}\n${shown}`,
    );
    assert.equal(task.state, 'complete');
    assert.equal(task.outcome, outcome, task.error ?? '');

    // Warnings: each once on stderr and nowhere on stdout, in the submit response (the task view keeps it)
    // and in the task log as it was queued, all in the expected order and no others.
    const warnings = expectation.warnings ?? [];
    const printed = stderrWarnings(cli.stderr);
    assertFindingsInOrder(printed, warnings, 'warnings on stderr');
    assert.deepEqual(task.warnings, printed, 'the task carries the warnings the CLI printed');
    for (const warning of printed)
      assert.ok(!cli.stdout.includes(`${warning.path}: ${warning.message}`), `printed once: ${warning.path}`);
    const building = submission.log.findIndex((line) => line.kind === 'state' && line.state !== 'queued');
    assert.ok(building > 0, 'the task log shows the task leaving the queue');
    const queuedWarnings = submission.log
      .slice(0, building)
      .filter((line) => line.kind === 'log' && line.level === 'warn')
      .map((line) => (line.kind === 'log' ? line.msg : ''));
    assert.deepEqual(
      queuedWarnings,
      printed.map((warning) => `${warning.path}: ${warning.message}`),
      'the task log carries the warnings',
    );

    assert.deepEqual(
      task.runs.map((run) => [run.name, run.instances, run.state, run.outcome]),
      runs.map((run) => [run.id, run.instances, 'complete', run.outcome]),
      'runs: name, instances, state, outcome',
    );
    const single = runs.length === 1 && runs[0]!.id === 'default';
    const messages = submission.log.flatMap((line) => (line.kind === 'log' ? [line.msg] : [])).join('\n');
    for (const [index, want] of runs.entries()) {
      const run: RunView = task.runs[index]!;
      const where = `run ${want.id}`;
      assert.equal(run.id, single ? task.id : `${task.id}-${want.id}`, where);
      assert.deepEqual(
        Object.fromEntries(Object.entries(run.result?.groups ?? {}).map(([id, group]) => [id, group.total])),
        Object.fromEntries(want.groups.map((group) => [group.id, group.instances])),
        `${where}: instances per group`,
      );
      assert.deepEqual(
        Object.fromEntries(submission.instanceDirs.get(want.id) ?? []),
        Object.fromEntries(want.groups.map((group) => [group.id, group.instances])),
        `${where}: an outputs directory per instance`,
      );
      const reports = submission.reports.get(want.id)!;
      for (const group of want.groups) {
        const at = `${where}, group ${group.id}`;
        if (writesReports(expectation.plan)) {
          const written = reports.get(group.id) ?? [];
          assert.equal(written.length, group.instances, `${at}: a report.json per instance`);
          for (const report of written) {
            assert.equal(report.group, group.id, at);
            assert.equal(report.instances, want.instances, `${at}: the run's instances`);
            assert.equal(report.groupInstances, group.instances, `${at}: the group's instances`);
            assert.equal(report.plan, want.plan ?? task.plan, `${at}: the plan`);
            if (want.disableMetrics !== undefined)
              assert.equal(report.disableMetrics, want.disableMetrics, `${at}: disable_metrics`);
            for (const [name, value] of Object.entries(group.testParams ?? {}))
              assert.equal(report.params[name], value, `${at}: param ${name}`);
            for (const dependency of group.dependencies ?? [])
              assert.equal(
                report.versions?.[dependency.module],
                expectedVersion(expectation.plan, dependency),
                `${at}: ${dependency.module} as the build dependency says`,
              );
          }
        }
        if (group.builder !== undefined) {
          assert.equal(task.builder, group.builder, at);
          assert.equal(
            task.artifacts.find((artifact) => artifact.group === group.id)?.builder,
            group.builder,
            `${at}: built by ${group.builder}`,
          );
        }
        const buildPath = group.buildConfig?.path;
        if (typeof buildPath === 'string')
          assert.ok(
            messages.includes(`build_config.path ${JSON.stringify(buildPath)}`),
            `${at}: the build used ${buildPath}`,
          );
        assertResourcesShown(messages, task.runner, group, at);
        // A group named with an artifact runs from it unbuilt; one without is built in this task.
        const artifact: string | undefined = task.artifacts.find(
          (entry) => entry.group === group.id,
        )?.artifact;
        const given =
          options.prebuilt?.[group.id] ??
          (typeof group.artifact === 'string'
            ? (options.artifacts?.[group.artifact] ?? group.artifact)
            : undefined);
        if (given !== undefined) {
          assert.equal(artifact, given, `${at}: runs from its artifact`);
          assert.ok(!messages.includes(`building group ${group.id} with`), `${at}: not built`);
        } else if (group.artifact === null) {
          assert.ok(artifact, `${at}: built in this task`);
        }
      }
    }
  }

  for (const row of new Set(Object.values(fixtures).map((fixture) => fixture.row))) {
    describe(row, () => {
      for (const [name, expectation] of Object.entries(fixtures).filter(([, e]) => e.row === row)) {
        if (expectation.requires?.includes('prebuilt-artifact')) {
          it(
            `${name}: refused while its artifact is unknown; built with --write-artifacts, it runs without a build`,
            { timeout: fixtureTimeoutMs },
            async () => {
              const steps = await prebuilt;
              assertRefused(steps.unknown, {
                ...expectation,
                refused: [
                  {
                    path: 'groups[0].run.artifact',
                    pattern: `^artifact "${prebuiltPlaceholder}" \\(run\\.artifact, or --use-build\\) is not known to this daemon`,
                  },
                ],
              });
              assert.equal(steps.built.code, 0, `${steps.built.stdout}\n${steps.built.stderr}`);
              assert.match(steps.artifact, /^bundle:[0-9a-f]+$/, steps.built.stdout);
              assert.match(steps.built.stdout, /^wrote 2 artifacts into /m);
              const groups = (expectation.runs ?? []).flatMap((run) => run.groups.map((group) => group.id));
              assertRan(steps.rewritten, expectation, {
                prebuilt: Object.fromEntries(groups.map((group) => [group, steps.artifact])),
              });
              assert.ok(
                !steps.rewritten.log.some(
                  (line) =>
                    line.kind === 'log' &&
                    /building group|exec:node: (built|plan unchanged|bundl)/.test(line.msg),
                ),
                'no build at all',
              );
              assertRan(steps.named, expectation, { artifacts: { [prebuiltPlaceholder]: steps.artifact } });
            },
          );
          continue;
        }
        const label = expectation.template === true ? `${name} (a template, rendered by the CLI)` : name;
        it(label, { timeout: fixtureTimeoutMs }, async () => {
          const submission = await submissions.get(name)!;
          if (expectation.refused !== undefined) assertRefused(submission, expectation);
          else assertRan(submission, expectation);
        });
      }
    });
  }
});

/**
 * What the network e2e tests (network-*.test.ts) share: compositions of plans/network and
 * plans/network-official run through the real CLI on local:docker, on the file's real daemon process, the measurements the instances
 * wrote to $TEST_OUTPUTS_PATH/measurement.json (read back from the collected archive), and the check that
 * a file leaves no container or network behind.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { DockerEngine } from '../../docker/docker-engine.ts';
import { daemonLabel, labelFilter } from '../../docker/labels.ts';
import { readTgz } from '../helpers/archive.ts';
import { taskIdOf, taskOf, type TaskJson } from '../helpers/daemon-api.ts';
import { runCli, type DaemonProcess } from '../helpers/processes.ts';

/** One `[[runs]]` entry: its id and its run-level test params. */
export interface RunSpec {
  id: string;
  params: Record<string, string | number>;
}

/** A composition of one test case: groups of `instances` each, and optionally several runs of all of them. */
export interface CompositionSpec {
  plan: string;
  testCase: string;
  groups: Record<string, number>;
  /** Params every run gets. */
  params?: Record<string, string | number>;
  /** Absent: one run `default`. */
  runs?: RunSpec[];
  /** The run timeout; a test that expects an early end sets it well above what it waits for. */
  timeout?: string;
}

export interface TaskRun {
  taskId: string;
  code: number | null;
  stdout: string;
  stderr: string;
  task: TaskJson;
  /** Each run's measurement.json by run name (`default` without [[runs]]). */
  measurements: Map<string, Record<string, unknown>>;
}

const toml = (value: string | number): string =>
  typeof value === 'number' ? String(value) : `'${value.replaceAll("'", '')}'`;
const inlineTable = (params: Record<string, string | number>): string =>
  `{ ${Object.entries(params)
    .map(([key, value]) => `${key} = ${toml(value)}`)
    .join(', ')} }`;

export function compositionToml(spec: CompositionSpec): string {
  const lines = [
    '[global]',
    `plan = "${spec.plan}"`,
    `case = "${spec.testCase}"`,
    'builder = "docker:node"',
    'runner = "local:docker"',
    ...(spec.params ? [`run = { test_params = ${inlineTable(spec.params)} }`] : []),
    ...(spec.timeout ? [`run_config = { timeout = "${spec.timeout}" }`] : []),
  ];
  for (const [id, count] of Object.entries(spec.groups)) {
    lines.push('', '[[groups]]', `id = "${id}"`, `instances = { count = ${count} }`);
  }
  for (const run of spec.runs ?? []) {
    lines.push('', '[[runs]]', `id = "${run.id}"`, `test_params = ${inlineTable(run.params)}`);
    for (const id of Object.keys(spec.groups)) lines.push('  [[runs.groups]]', `  id = "${id}"`);
  }
  return `${lines.join('\n')}\n`;
}

/** Runs compositions on one test file's daemon (started by the file) and checks what it left behind. */
export class NetworkE2e {
  readonly daemon: DaemonProcess;
  private readonly engine: DockerEngine;
  /** Where compositions and collected archives go. */
  private readonly dir: string;
  private tasks = 0;

  constructor(options: { daemon: DaemonProcess; engine: DockerEngine; dir: string }) {
    this.daemon = options.daemon;
    this.engine = options.engine;
    this.dir = options.dir;
  }

  /** Runs the composition to its end through the CLI (`run composition --collect`) and reads what it measured. */
  async run(spec: CompositionSpec): Promise<TaskRun> {
    this.tasks += 1;
    const file = path.join(this.dir, `${spec.testCase}-${this.tasks}.toml`);
    const archive = path.join(this.dir, `${spec.testCase}-${this.tasks}.tgz`);
    await writeFile(file, compositionToml(spec));
    const result = await runCli([
      '--endpoint',
      this.daemon.url,
      'run',
      'composition',
      '-f',
      file,
      '--collect',
      '--collect-file',
      archive,
    ]);
    const taskId = taskIdOf(result.stdout);
    const measurements = new Map<string, Record<string, unknown>>();
    const entries = await readTgz(archive).catch(() => new Map<string, string>());
    for (const [name, content] of entries) {
      if (!name.endsWith('/measurement.json')) continue;
      const runId = name.split('/')[0] ?? '';
      const runName = runId === taskId ? 'default' : runId.slice(taskId.length + 1);
      assert.ok(!measurements.has(runName), `one instance of run ${runName} measures`);
      measurements.set(runName, JSON.parse(content) as Record<string, unknown>);
    }
    return { taskId, ...result, task: await taskOf(this.daemon.url, taskId), measurements };
  }

  /** Containers and networks this daemon made that still exist (none, once its runs ended). */
  async leftovers(): Promise<string[]> {
    const daemonId = (await readFile(path.join(this.daemon.home, 'daemon-id'), 'utf8')).trim();
    const ours = labelFilter({ [daemonLabel]: daemonId });
    const containers = await this.engine.listContainers(ours, { all: true });
    const networks = await this.engine.listNetworks(ours);
    return [...containers.map((c) => `container ${c.id}`), ...networks.map((n) => `network ${n.name}`)];
  }
}

/** Asserts the task succeeded, saying what the CLI printed when it did not. */
export function assertSucceeded(run: TaskRun): void {
  assert.equal(run.code, 0, `task ${run.taskId} failed:\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`);
}

export function measurementOf(run: TaskRun, name = 'default'): Record<string, unknown> {
  const measurement = run.measurements.get(name);
  assert.ok(measurement, `run ${name} of task ${run.taskId} wrote measurement.json:\n${run.stdout}`);
  return measurement;
}

/** A number the measurement carries at `path` (`shapedLink.bitsPerSecond`). */
export function figure(measurement: Record<string, unknown>, keyPath: string): number {
  const value = keyPath
    .split('.')
    .reduce<unknown>((at, key) => (at as Record<string, unknown> | undefined)?.[key], measurement);
  assert.equal(typeof value, 'number', `${keyPath} in ${JSON.stringify(measurement)}`);
  return value as number;
}

/**
 * Prints one measured figure on its own line, `network-fidelity <what> <configured> measured <value>`,
 * so the README's figures can be copied from a run's output.
 */
export function report(what: string, configured: string, measured: number | string, unit = ''): void {
  console.log(`network-fidelity ${what} ${configured} measured ${measured}${unit ? ` ${unit}` : ''}`);
}

export const mbit = (bitsPerSecond: number): number => Math.round(bitsPerSecond / 1e4) / 100;

/** |measured − expected| ≤ tolerance × expected. */
export function assertWithin(measured: number, expected: number, tolerance: number, what: string): void {
  assert.ok(
    Math.abs(measured - expected) <= tolerance * expected,
    `${what}: measured ${measured}, expected ${expected} ± ${tolerance * 100} %`,
  );
}

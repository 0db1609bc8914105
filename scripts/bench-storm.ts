/**
 * `npm run bench`, the storm: N instances of plans/benchmarks `storm` (or any plan on our SDK) on one
 * runner, timed from the CLI's submit to its exit, with where each instance's time went: scheduled →
 * created → started → sync connected → network ready → barrier released → ended, p50/p95/p99 per phase,
 * printed beside the runner's floor measured in the same call.
 *
 * The phases come from what every run records, not from the plan: the run's start and each instance's
 * `created`, `started`, `network-initialized` and `ended` marks on the task record (`InstanceResult.phases`),
 * and the SDK's own points in metrics.out (`sync:connect` when the connection opened, `barrier:<state>`
 * when a barrier released the instance), read through `GET /runs/:id/metrics?raw=true`.
 */
import { spawn } from 'node:child_process';
import type { MetricPoint } from '../core/metrics-summary.ts';
import type { InstancePhase } from '../core/run.ts';
import { networkInitializedState } from '../core/contract/well-known.ts';
import { syncConnectMark } from '../sdk/invoke.ts';
import { runCli, type DaemonProcess } from '../test/helpers/processes.ts';

type Figures = Record<string, string>;

export type StormRunner = 'local:exec' | 'local:docker';

export interface StormBenchOptions {
  daemon: DaemonProcess;
  runner: StormRunner;
  instances: number;
  /** Default plans/benchmarks `storm`; the seed plan is `{ plan: 'example', testcase: 'sync', params: { sleep_scale: '0' } }`. */
  plan?: string;
  testcase?: string;
  params?: Record<string, string>;
  /** The first line's label; default names the runner, the count, the plan and the test case. */
  title?: string;
  /**
   * The floor printed beside the run, measured after it in the same call. Default for local:exec: spawning
   * N bare `node -e ''` at once; local:docker has no default (its bench part has the containers it drives).
   */
  floor?: { label: string; measure: (instances: number) => Promise<number> };
}

/** One instance's marks, Unix milliseconds; a mark it never reached is absent. */
type Marks = Partial<Record<PhaseName, number>>;

export const phaseNames = [
  'scheduled',
  'created',
  'started',
  'sync connected',
  'network ready',
  'barrier released',
  'ended',
] as const;
export type PhaseName = (typeof phaseNames)[number];

export interface PhaseRow {
  phase: PhaseName;
  /** How many instances reached it. */
  count: number;
  /** From the instance's previous mark to this one, ms. */
  step: Percentiles;
  /** From the run's start (scheduled) to this mark, ms. */
  sinceScheduled: Percentiles;
}

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface StormResult {
  runMs: number;
  floorMs?: number;
  taskId: string;
  phases: PhaseRow[];
  figures: Figures;
}

interface RunView {
  id: string;
  started_at: string | null;
  ended_at: string | null;
  result: { instances: { group: string; index: number; phases?: InstancePhase[] }[] } | null;
}

interface TaskView {
  outcome: string | null;
  created_at: string;
  states: { state: string; at: string }[];
  runs: RunView[];
}

const builderOf: Record<StormRunner, string> = { 'local:exec': 'exec:node', 'local:docker': 'docker:node' };

/** Runs the storm (or the plan asked for) once, then its floor, and returns the figures and the phase table. */
export async function stormBench(options: StormBenchOptions): Promise<StormResult> {
  const { daemon, runner, instances } = options;
  const plan = options.plan ?? 'benchmarks';
  const testcase = options.testcase ?? 'storm';
  const args = [
    '--endpoint',
    daemon.url,
    'run',
    'single',
    '--plan',
    plan,
    '--testcase',
    testcase,
    '--builder',
    builderOf[runner],
    '--runner',
    runner,
    '--instances',
    String(instances),
    ...Object.entries(options.params ?? {}).flatMap(([key, value]) => ['--test-param', `${key}=${value}`]),
  ];
  // The build is not what is measured: two instances build and cache the artifact first.
  await submit(daemon, [...args.slice(0, -2), '--instances', '2']);
  const cliStart = Date.now();
  const started = performance.now();
  const taskId = await submit(daemon, args);
  const runMs = performance.now() - started;
  const cliExit = Date.now();
  const task = await getJson<TaskView>(`${daemon.url}/api/v1/tasks/${taskId}`);
  const marks = await readMarks(daemon, task, taskId);
  const phases = phaseTable(marks);
  const floor = options.floor ?? (runner === 'local:exec' ? spawnFloorOption : undefined);
  const floorMs = floor ? await floor.measure(instances) : undefined;

  const title =
    options.title ?? `storm: ${runner}, ${instances} instances of ${plan} ${testcase} (CLI submit → exit)`;
  const figures: Figures = { [title]: `${runMs.toFixed(0)} ms` };
  if (floor && floorMs !== undefined) {
    figures[`  floor (${runner}, ${instances}, ${testcase}): ${floor.label}`] = `${floorMs.toFixed(0)} ms`;
    figures[`  ratio (${runner}, ${instances}, ${testcase})`] = `${(runMs / floorMs).toFixed(2)}x`;
  }
  Object.assign(
    figures,
    formatTimeline(timeline(task, marks, cliStart, cliExit), `${runner}, ${instances}, ${testcase}`),
  );
  Object.assign(figures, formatPhaseTable(phases, `${runner}, ${instances}, ${testcase}`));
  return { runMs, ...(floorMs === undefined ? {} : { floorMs }), taskId, phases, figures };
}

/** Spawning N bare `node -e ''` at once from this process, awaiting every exit: what any launcher pays. */
export async function spawnFloor(count: number): Promise<number> {
  const started = performance.now();
  await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise((resolve) =>
          spawn(process.execPath, ['-e', ''], { stdio: 'ignore' }).once('close', resolve),
        ),
    ),
  );
  return performance.now() - started;
}

const spawnFloorOption = {
  label: "spawn the same number of bare `node -e ''` at once",
  measure: spawnFloor,
};

/** `testground run … --wait`; the task id, once the CLI exited 0 (the run succeeded). */
async function submit(daemon: DaemonProcess, args: string[]): Promise<string> {
  const result = await runCli([...args, '--wait']);
  if (result.code !== 0) {
    throw new Error(`storm run ${args.join(' ')} exited ${result.code}:\n${result.stdout}\n${result.stderr}`);
  }
  const taskId = /queued \(task (\S+)\)/.exec(result.stdout)?.[1];
  if (!taskId) throw new Error(`the CLI did not print the run id:\n${result.stdout}`);
  return taskId;
}

/** Each instance's marks, from the task record and the run's metric points. */
async function readMarks(daemon: DaemonProcess, task: TaskView, taskId: string): Promise<Marks[]> {
  const run = task.runs[0];
  if (!run?.result) throw new Error(`task ${taskId} has no run result (outcome ${task.outcome})`);
  const { points = [] } = await getJson<{ points?: MetricPoint[] }>(
    `${daemon.url}/api/v1/runs/${run.id}/metrics?raw=true`,
  );
  const pointsOf = new Map<string, MetricPoint[]>();
  for (const point of points) {
    const key = `${point.group}/${point.instance}`;
    pointsOf.set(key, [...(pointsOf.get(key) ?? []), point]);
  }
  const scheduled = run.started_at ? Date.parse(run.started_at) : undefined;
  return run.result.instances.map((instance) => {
    const at = (name: string): number | undefined => {
      const phase = instance.phases?.find((mark) => mark.name === name);
      return phase ? Date.parse(phase.at) : undefined;
    };
    const own = pointsOf.get(`${instance.group}/${instance.index}`) ?? [];
    const pointAt = (point: MetricPoint | undefined): number | undefined =>
      point ? Date.parse(point.ts) : undefined;
    const networkBarrier = `barrier:${networkInitializedState}`;
    const barriers = own.filter(
      (point) => point.name.startsWith('barrier:') && point.name !== networkBarrier,
    );
    const marks: Marks = {
      scheduled,
      created: at('created'),
      started: at('started'),
      'sync connected': pointAt(own.find((point) => point.name === syncConnectMark)),
      // The instance's own view (its barrier released), else the runner's (it signalled the state).
      'network ready':
        pointAt(own.find((point) => point.name === networkBarrier)) ?? at(networkInitializedState),
      // The last barrier the instance waited at: where a plan's instances meet before their work ends.
      'barrier released': pointAt(barriers.at(-1)),
      ended: at('ended'),
    };
    return marks;
  });
}

/**
 * The run as a whole, Unix ms: the CLI's start, the submission, the task's states, the run's start, its
 * first instance created, its last ended, the run's end, the task's end and the CLI's exit. What lies
 * between the instances' phases and the CLI's figure.
 */
function timeline(
  task: TaskView,
  marks: readonly Marks[],
  cliStart: number,
  cliExit: number,
): [string, number][] {
  const run = task.runs[0];
  const stateAt = (state: string): number | undefined => {
    const found = task.states.find((entry) => entry.state === state);
    return found ? Date.parse(found.at) : undefined;
  };
  const extreme = (phase: PhaseName, pick: (a: number, b: number) => number): number | undefined =>
    marks
      .map((mark) => mark[phase])
      .filter((at): at is number => at !== undefined)
      .reduce<number | undefined>((best, at) => (best === undefined ? at : pick(best, at)), undefined);
  const points: [string, number | undefined][] = [
    ['CLI started', cliStart],
    ['task submitted', Date.parse(task.created_at)],
    ['task building', stateAt('building')],
    ['task running', stateAt('running')],
    ['run started (scheduled)', run?.started_at ? Date.parse(run.started_at) : undefined],
    ['first instance created', extreme('created', Math.min)],
    ['last instance created', extreme('created', Math.max)],
    ['last instance started', extreme('started', Math.max)],
    ['last instance ended', extreme('ended', Math.max)],
    ['run ended', run?.ended_at ? Date.parse(run.ended_at) : undefined],
    ['task ended', task.states.at(-1) ? Date.parse(task.states.at(-1)!.at) : undefined],
    ['CLI exited', cliExit],
  ];
  return points.filter((point): point is [string, number] => point[1] !== undefined);
}

function formatTimeline(points: readonly [string, number][], label: string): Figures {
  const figures: Figures = { [`  timeline (${label}): step | since the CLI started, ms`]: '' };
  points.forEach(([name, at], position) => {
    const previous = position === 0 ? at : points[position - 1]![1];
    figures[`    ${name} (${label})`] = `${(at - previous).toFixed(0)} | ${(at - points[0]![1]).toFixed(0)}`;
  });
  return figures;
}

/** p50/p95/p99/max of each phase over the instances that reached it. */
export function phaseTable(instances: readonly Marks[]): PhaseRow[] {
  return phaseNames.flatMap((phase, position) => {
    const steps: number[] = [];
    const since: number[] = [];
    for (const marks of instances) {
      const at = marks[phase];
      if (at === undefined) continue;
      const previous = phaseNames
        .slice(0, position)
        .map((name) => marks[name])
        .filter((mark): mark is number => mark !== undefined)
        .at(-1);
      steps.push(previous === undefined ? 0 : at - previous);
      if (marks.scheduled !== undefined) since.push(at - marks.scheduled);
    }
    if (steps.length === 0) return [];
    return [{ phase, count: steps.length, step: percentiles(steps), sinceScheduled: percentiles(since) }];
  });
}

export function formatPhaseTable(rows: readonly PhaseRow[], label: string): Figures {
  const figures: Figures = {
    [`  phases (${label}): step from the previous mark | since scheduled, ms`]: 'p50 / p95 / p99 / max',
  };
  const show = (values: Percentiles): string =>
    [values.p50, values.p95, values.p99, values.max].map((value) => value.toFixed(0)).join(' / ');
  for (const row of rows) {
    figures[`    ${row.phase} (${label}; ${row.count} instances)`] =
      row.phase === 'scheduled' ? '—' : `${show(row.step)} | ${show(row.sinceScheduled)}`;
  }
  return figures;
}

function percentiles(values: readonly number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  // Nearest rank, as the metrics summary computes them.
  const rank = (q: number): number => sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
  return { p50: rank(0.5), p95: rank(0.95), p99: rank(0.99), max: sorted.at(-1) ?? Number.NaN };
}

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

import { ApiError, apiJson } from './api.ts';
import { h, replaceChildren } from './dom.ts';
import { duration, number, percentChange } from './format.ts';
import { fetchRunMetrics } from './metric-plots.ts';
import { taskHref } from './router.ts';
import type { RunMetrics, RunView, TaskView } from './types.ts';

const stats = ['count', 'mean', 'p50', 'p90', 'p99', 'max'] as const;

const taskOf = (runId: string): string => runId.split('-')[0]!;

/** Two runs side by side: outcome and duration, then every metric's summary per group with the change in percent. */
export function comparePage(root: HTMLElement, a: string, b: string): () => void {
  replaceChildren(
    root,
    h('p', {}, h('a', { href: '#/' }, '← all tasks')),
    h('h1', {}, `Compare ${a} with ${b}`),
    h('p', {}, 'loading…'),
  );
  let stopped = false;
  Promise.all([load(a), load(b)])
    .then(([left, right]) => {
      if (!stopped) root.replaceChild(render(a, left, b, right), root.lastChild!);
    })
    .catch((error: unknown) => {
      if (!stopped)
        root.replaceChild(
          h('p', { class: 'error' }, error instanceof ApiError ? error.message : String(error)),
          root.lastChild!,
        );
    });
  return () => {
    stopped = true;
  };
}

interface Side {
  task: TaskView;
  run: RunView | undefined;
  metrics: RunMetrics | null;
}

async function load(runId: string): Promise<Side> {
  const [task, metrics] = await Promise.all([
    apiJson<TaskView>(`/tasks/${taskOf(runId)}`),
    fetchRunMetrics(runId, false),
  ]);
  return { task, run: task.runs.find((run) => run.id === runId) ?? task.runs[0], metrics };
}

function render(a: string, left: Side, b: string, right: Side): HTMLElement {
  const runDuration = (side: Side): string =>
    side.run?.started_at ? duration(side.run.started_at, side.run.ended_at) : '–';
  const rows: HTMLElement[] = [];
  const groups = new Set([
    ...Object.keys(left.metrics?.groups ?? {}),
    ...Object.keys(right.metrics?.groups ?? {}),
  ]);
  for (const group of [...groups].sort()) {
    const names = new Set([
      ...Object.keys(left.metrics?.groups[group] ?? {}),
      ...Object.keys(right.metrics?.groups[group] ?? {}),
    ]);
    for (const name of [...names].sort()) {
      const one = left.metrics?.groups[group]?.[name];
      const two = right.metrics?.groups[group]?.[name];
      for (const stat of stats) {
        const x = one?.[stat];
        const y = two?.[stat];
        const change = x !== undefined && y !== undefined ? percentChange(x, y) : '–';
        rows.push(
          h(
            'tr',
            { 'data-metric': `${group}/${name}/${stat}` },
            h('td', {}, group),
            h('td', {}, name, (one ?? two)?.unit ? ` (${(one ?? two)!.unit})` : ''),
            h('td', {}, stat),
            h('td', {}, x === undefined ? '–' : number(x)),
            h('td', {}, y === undefined ? '–' : number(y)),
            h('td', { class: change.startsWith('+') ? 'up' : change.startsWith('-') ? 'down' : '' }, change),
          ),
        );
      }
    }
  }
  return h(
    'div',
    { id: 'compare' },
    h(
      'table',
      { class: 'compare-head' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', {}, ''),
          h('th', {}, h('a', { href: taskHref(left.task.id) }, a)),
          h('th', {}, h('a', { href: taskHref(right.task.id) }, b)),
        ),
      ),
      h(
        'tbody',
        {},
        h(
          'tr',
          {},
          h('td', {}, 'plan / case'),
          h('td', {}, `${left.task.plan} / ${left.task.case}`),
          h('td', {}, `${right.task.plan} / ${right.task.case}`),
        ),
        h(
          'tr',
          {},
          h('td', {}, 'outcome'),
          h('td', {}, left.run?.outcome ?? left.task.state),
          h('td', {}, right.run?.outcome ?? right.task.state),
        ),
        h(
          'tr',
          {},
          h('td', {}, 'instances'),
          h('td', {}, left.run?.instances ?? 0),
          h('td', {}, right.run?.instances ?? 0),
        ),
        h('tr', {}, h('td', {}, 'duration'), h('td', {}, runDuration(left)), h('td', {}, runDuration(right))),
      ),
    ),
    rows.length
      ? h(
          'table',
          { class: 'compare-metrics' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['group', 'metric', 'stat', a, b, 'change'].map((name) => h('th', {}, name)),
            ),
          ),
          h('tbody', {}, rows),
        )
      : h('p', { class: 'muted' }, 'Neither run has metrics to compare.'),
  );
}

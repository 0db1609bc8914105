import { ApiError, apiJson, download } from './api.ts';
import { h, replaceChildren } from './dom.ts';
import { duration, when } from './format.ts';
import { logView } from './log-view.ts';
import { fetchRunMetrics, metricPlots } from './metric-plots.ts';
import { compareHref } from './router.ts';
import { timeline } from './timeline.ts';
import type { InstanceView, RunView, TaskList, TaskView } from './types.ts';

const refreshMs = 1000;
const terminal = new Set(['complete', 'canceled']);

/**
 * A task: its state and how it got there, and per run the group summary, every instance's outcome and
 * reason, the instance timeline, the metric plots, the outputs to download and a run to compare with; then
 * the live log and the composition as submitted. Refreshed every second until the task ends.
 */
export function taskPage(root: HTMLElement, id: string): () => void {
  const head = h('div', { class: 'task-head', id: 'task-head' }, 'loading…');
  const runs = h('div', { id: 'runs' });
  const log = logView(id);
  const composition = h('pre', { class: 'composition', id: 'composition' });
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let shownKey = '';

  replaceChildren(
    root,
    h('p', {}, h('a', { href: '#/' }, '← all tasks')),
    head,
    runs,
    log.element,
    h('details', { class: 'composition-box' }, h('summary', {}, 'Composition as submitted'), composition),
  );

  async function refresh(): Promise<void> {
    try {
      const task = await apiJson<TaskView>(`/tasks/${id}`);
      if (stopped) return;
      renderHead(head, task);
      const key = JSON.stringify([
        task.state,
        task.runs.map((run) => [run.state, run.outcome, run.ended_at]),
      ]);
      if (key !== shownKey) {
        shownKey = key;
        renderRuns(runs, task);
        composition.textContent = JSON.stringify(task.composition, null, 2);
      }
      if (terminal.has(task.state)) return;
    } catch (error) {
      replaceChildren(
        head,
        h(
          'p',
          { class: 'error' },
          error instanceof ApiError ? error.message : `cannot reach the daemon: ${String(error)}`,
        ),
      );
      if (error instanceof ApiError && error.status === 404) return;
    }
    if (!stopped) timer = setTimeout(() => void refresh(), refreshMs);
  }

  void refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
    log.dispose();
  };
}

function renderHead(head: HTMLElement, task: TaskView): void {
  const ended = task.states.find((entry) => terminal.has(entry.state))?.at ?? null;
  const meta = [task.metadata.repo, task.metadata.branch, task.metadata.commit?.slice(0, 12)].filter(Boolean);
  replaceChildren(
    head,
    h(
      'h1',
      {},
      `Task ${task.id} `,
      h('span', { class: `state state-${task.state}`, id: 'task-state' }, task.state),
      task.outcome
        ? h('span', { class: `outcome outcome-${task.outcome}`, id: 'task-outcome' }, task.outcome)
        : null,
    ),
    h(
      'p',
      {},
      `${task.plan} / ${task.case} · ${task.builder} → ${task.runner} · ${task.instances} instances · by ${task.created_by}`,
      meta.length ? ` · ${meta.join(' ')}` : '',
      ` · ${duration(task.created_at, ended)}`,
    ),
    task.error ? h('p', { class: 'error' }, task.error) : null,
    h(
      'ol',
      { class: 'states' },
      task.states.map((entry, index) =>
        h(
          'li',
          { class: `state-${entry.state}` },
          h('strong', {}, entry.state),
          ` ${when(entry.at)}`,
          index > 0
            ? h('span', { class: 'muted' }, ` (+${duration(task.states[index - 1]!.at, entry.at)})`)
            : null,
        ),
      ),
    ),
  );
}

function renderRuns(container: HTMLElement, task: TaskView): void {
  if (task.type === 'build') {
    replaceChildren(
      container,
      h('h2', {}, 'Artifacts'),
      h(
        'ul',
        {},
        task.artifacts.map((artifact) =>
          h('li', {}, `${artifact.group}: ${artifact.artifact} (${artifact.builder})`),
        ),
      ),
    );
    return;
  }
  replaceChildren(
    container,
    task.runs.map((run) => runSection(task, run)),
  );
}

function runSection(task: TaskView, run: RunView): HTMLElement {
  const ended = run.state === 'complete' || run.state === 'canceled';
  const instances: InstanceView[] = run.result?.instances ?? [];
  const metrics = h(
    'div',
    { class: 'metrics-box' },
    ended ? 'loading metrics…' : 'metrics appear when the run ends',
  );
  const downloadError = h('span', { class: 'error' });
  const section = h(
    'section',
    { class: 'run', 'data-run': run.id },
    h(
      'h2',
      {},
      `Run ${run.name} `,
      h('span', { class: `state state-${run.state}` }, run.state),
      run.outcome ? h('span', { class: `outcome outcome-${run.outcome}` }, run.outcome) : null,
      run.started_at ? h('span', { class: 'muted' }, ` ${duration(run.started_at, run.ended_at)}`) : null,
    ),
    run.error ? h('p', { class: 'error' }, run.error) : null,
    run.result ? h('p', {}, run.result.reason) : null,
    h(
      'div',
      { class: 'toolbar' },
      h(
        'button',
        {
          id: `download-${run.id}`,
          disabled: !ended || !run.started_at,
          onclick: () => {
            downloadError.textContent = '';
            download(`/runs/${run.id}/outputs`, `${run.id}.tgz`).catch((error: unknown) => {
              downloadError.textContent = String(error instanceof Error ? error.message : error);
            });
          },
        },
        'Download outputs',
      ),
      downloadError,
      ended ? comparePicker(task, run) : null,
    ),
    run.result ? groupTable(run) : null,
    instances.length ? h('h3', {}, 'Instance timeline') : null,
    instances.length ? timeline(instances) : null,
    h('h3', {}, 'Metrics'),
    metrics,
    instances.length ? instanceTable(instances) : null,
  );
  if (ended) {
    fetchRunMetrics(run.id, true)
      .then((found) => {
        replaceChildren(
          metrics,
          found ? metricPlots(found) : h('p', { class: 'muted' }, 'The daemon has no metrics for this run.'),
        );
      })
      .catch((error: unknown) => replaceChildren(metrics, h('p', { class: 'error' }, String(error))));
  }
  return section;
}

function groupTable(run: RunView): HTMLElement {
  const groups = Object.entries(run.result?.groups ?? {});
  return h(
    'table',
    { class: 'groups' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['group', 'ok', 'total', 'outcomes'].map((name) => h('th', {}, name)),
      ),
    ),
    h(
      'tbody',
      {},
      groups.map(([group, summary]) =>
        h(
          'tr',
          { class: summary.ok === summary.total ? 'row-success' : 'row-failure' },
          h('td', {}, group),
          h('td', {}, summary.ok),
          h('td', {}, summary.total),
          h(
            'td',
            {},
            Object.entries(summary.outcomes).map(([outcome, count]) =>
              h('span', { class: `outcome outcome-${outcome}` }, `${outcome} ${count}`),
            ),
          ),
        ),
      ),
    ),
  );
}

function instanceTable(instances: InstanceView[]): HTMLElement {
  return h(
    'details',
    { class: 'instances', open: instances.length <= 50 },
    h('summary', {}, `Instances (${instances.length})`),
    h(
      'table',
      {},
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['instance', 'outcome', 'reason', 'exit'].map((name) => h('th', {}, name)),
        ),
      ),
      h(
        'tbody',
        {},
        instances.map((instance) =>
          h(
            'tr',
            {},
            h('td', {}, `${instance.group}/${instance.index}`),
            h('td', {}, h('span', { class: `outcome outcome-${instance.outcome}` }, instance.outcome)),
            h(
              'td',
              {},
              instance.reason,
              instance.notes?.length
                ? h('span', { class: 'muted' }, ` (${instance.notes.join('; ')})`)
                : null,
            ),
            h('td', {}, instance.signal ?? instance.exitCode ?? ''),
          ),
        ),
      ),
    ),
  );
}

/** A list of the other ended runs of the same plan and case, to compare this one with. */
function comparePicker(task: TaskView, run: RunView): HTMLElement {
  const select = h('select', { id: `compare-${run.id}` }, h('option', { value: '' }, 'compare with…'));
  select.addEventListener('change', () => {
    if (select.value) location.hash = compareHref(select.value, run.id);
  });
  apiJson<TaskList>(`/tasks?plan=${encodeURIComponent(task.plan)}&limit=100`)
    .then((list) => {
      for (const other of list.tasks) {
        if (other.case !== task.case || other.type !== 'run' || other.ended_at === null) continue;
        if (other.id === task.id) continue;
        select.appendChild(
          h(
            'option',
            { value: other.id },
            `${other.id} (${when(other.created_at)}, ${other.outcome ?? other.state})`,
          ),
        );
      }
    })
    .catch(() => select.remove());
  return select;
}

import { ApiError, apiJson } from './api.ts';
import { h, replaceChildren } from './dom.ts';
import { duration, when } from './format.ts';
import { taskHref } from './router.ts';
import type { TaskList, TaskSummaryView } from './types.ts';

const refreshMs = 1000;
const taskStates = ['queued', 'building', 'running', 'complete', 'canceled'] as const;

/** Filters the page keeps in its address, so a filtered list can be shared as a link. */
interface Filters {
  state: string;
  plan: string;
  user: string;
  branch: string;
  limit: number;
}

/**
 * The task list: newest first, refreshed every second without a reload. State and plan filter on the
 * daemon; the user and branch filters on the page (the API has no such filters). Rows are kept per task id and only
 * their changed cells rewritten, so a refresh of 1,000 tasks does not rebuild the table.
 */
export function taskListPage(root: HTMLElement, query: URLSearchParams): () => void {
  const filters: Filters = {
    state: query.get('state') ?? '',
    plan: query.get('plan') ?? '',
    user: query.get('user') ?? '',
    branch: query.get('branch') ?? '',
    limit: Math.min(1000, Number(query.get('limit') ?? 200) || 200),
  };
  const status = h('span', { class: 'muted', id: 'list-status' }, 'loading…');
  const body = h('tbody', { id: 'task-rows' });
  const rows = new Map<string, HTMLTableRowElement>();
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const select = h(
    'select',
    { id: 'filter-state', onchange: () => setFilter('state', select.value) },
    h('option', { value: '' }, 'any state'),
    taskStates.map((state) => h('option', { value: state, selected: filters.state === state }, state)),
  );
  const textFilter = (name: 'plan' | 'user' | 'branch', placeholder: string): HTMLInputElement => {
    const input = h('input', { id: `filter-${name}`, placeholder, value: filters[name] });
    input.addEventListener('change', () => setFilter(name, input.value.trim()));
    return input;
  };

  replaceChildren(
    root,
    h(
      'div',
      { class: 'toolbar' },
      h('h1', {}, 'Tasks'),
      select,
      textFilter('plan', 'plan'),
      textFilter('user', 'user'),
      textFilter('branch', 'branch'),
      status,
    ),
    h(
      'table',
      { class: 'tasks' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          [
            'task',
            'plan / case',
            'runner',
            'instances',
            'user',
            'created',
            'duration',
            'state',
            'outcome',
          ].map((name) => h('th', {}, name)),
        ),
      ),
      body,
    ),
  );

  function setFilter(name: 'state' | 'plan' | 'user' | 'branch', value: string): void {
    const next = new URLSearchParams(query);
    if (value) next.set(name, value);
    else next.delete(name);
    const search = next.toString();
    location.hash = `#/${search ? `?${search}` : ''}`;
  }

  async function refresh(): Promise<void> {
    const params = new URLSearchParams({ limit: String(filters.limit) });
    if (filters.state) params.set('state', filters.state);
    if (filters.plan) params.set('plan', filters.plan);
    try {
      const started = performance.now();
      const list = await apiJson<TaskList>(`/tasks?${params}`);
      if (stopped) return;
      const fetched = performance.now();
      const tasks = list.tasks.filter(
        (task) =>
          (!filters.user || task.created_by === filters.user) &&
          (!filters.branch || task.metadata.branch === filters.branch),
      );
      render(tasks);
      // For `npm run bench`: what the last refresh cost, asking and drawing apart.
      root.dataset.fetchMs = (fetched - started).toFixed(1);
      root.dataset.renderMs = (performance.now() - fetched).toFixed(1);
      root.dataset.refreshes = String(Number(root.dataset.refreshes ?? 0) + 1);
      root.dataset.firstDrawnAt ??= performance.now().toFixed(0);
      status.textContent = `${tasks.length} task${tasks.length === 1 ? '' : 's'} · updated ${new Date().toLocaleTimeString()}`;
      status.className = 'muted';
    } catch (error) {
      status.textContent =
        error instanceof ApiError ? error.message : `cannot reach the daemon: ${String(error)}`;
      status.className = 'error';
    }
    if (!stopped) timer = setTimeout(() => void refresh(), refreshMs);
  }

  function render(tasks: TaskSummaryView[]): void {
    const seen = new Set<string>();
    let previous: HTMLTableRowElement | null = null;
    for (const task of tasks) {
      seen.add(task.id);
      let row = rows.get(task.id);
      if (!row) {
        row = h('tr', { 'data-task': task.id });
        rows.set(task.id, row);
      }
      fill(row, task);
      const expected: ChildNode | null = previous ? previous.nextSibling : body.firstChild;
      if (expected !== row) body.insertBefore(row, expected);
      previous = row;
    }
    for (const [id, row] of rows) {
      if (seen.has(id)) continue;
      row.remove();
      rows.delete(id);
    }
  }

  void refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** Writes a task's cells into its row, touching the DOM only when something shows differently. */
function fill(row: HTMLTableRowElement, task: TaskSummaryView): void {
  const lasted = duration(task.created_at, task.ended_at);
  const key = JSON.stringify([task.state, task.outcome, task.error, lasted]);
  if (row.dataset.key === key) return;
  const cells = [
    h('a', { href: taskHref(task.id) }, task.id),
    `${task.plan} / ${task.case}`,
    task.runner,
    task.instances,
    task.created_by,
    when(task.created_at),
    lasted,
    h('span', { class: `state state-${task.state}` }, task.state),
    task.outcome
      ? h('span', { class: `outcome outcome-${task.outcome}`, title: task.error ?? '' }, task.outcome)
      : '',
  ];
  row.dataset.key = key;
  row.dataset.state = task.state;
  row.className = task.outcome ? `row-${task.outcome}` : `row-${task.state}`;
  row.replaceChildren(...cells.map((cell) => h('td', {}, cell)));
}

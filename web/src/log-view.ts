import { apiFetch, readNdjson } from './api.ts';
import { h, replaceChildren } from './dom.ts';
import type { LogLine } from './types.ts';

const levels = ['info', 'warn', 'error'] as const;
type Level = (typeof levels)[number];
/** Lines kept in the page; a longer log keeps its newest (the full log stays on the daemon). */
const keptLines = 50_000;
/** Lines drawn at once: the newest that match the filters. */
const shownLines = 2_000;
const retryMs = 2_000;

/** How serious a line is, for the level filter: an instance's stderr and failures count as warnings and errors. */
function levelOf(line: LogLine): Level {
  switch (line.kind) {
    case 'log':
      return line.level;
    case 'output':
      return line.stream === 'stderr' ? 'warn' : 'info';
    case 'instance_end':
      return line.outcome === 'success' ? 'info' : 'error';
    case 'end':
      return line.outcome === undefined || line.outcome === 'success' ? 'info' : 'error';
    default:
      return 'info';
  }
}

function textOf(line: LogLine): string {
  switch (line.kind) {
    case 'log':
      return line.msg;
    case 'output':
      return line.line;
    case 'instance_end':
      return `ended: ${line.outcome} (${line.reason})`;
    case 'state':
      return `task is ${line.state}`;
    case 'progress':
      return `run ${line.run}: ${line.groups.map((group) => `${group.group} ${group.running} running`).join(', ')}`;
    case 'end':
      return `task ended ${line.state}${line.outcome ? `: ${line.outcome}` : ''}${line.error ? ` (${line.error})` : ''}`;
  }
}

const sourceOf = (line: LogLine): string =>
  line.kind === 'output' || line.kind === 'instance_end' ? `${line.group}/${line.instance}` : 'daemon';

/**
 * The task's log, followed while the task runs (NDJSON from /tasks/:id/logs?follow=true, resumed from the
 * last offset when the stream breaks), filtered by group, instance, level and a search text.
 */
export function logView(taskId: string): { element: HTMLElement; dispose: () => void } {
  const lines: LogLine[] = [];
  const groups = new Set<string>();
  const groupSelect = h('select', { id: 'log-group' }, h('option', { value: '' }, 'all groups'));
  const instanceInput = h('input', { id: 'log-instance', type: 'number', min: 0, placeholder: 'instance' });
  const levelSelect = h(
    'select',
    { id: 'log-level' },
    levels.map((level) => h('option', { value: level }, `${level} and above`)),
  );
  const search = h('input', { id: 'log-search', type: 'search', placeholder: 'search' });
  const follow = h('input', { type: 'checkbox', id: 'log-follow', checked: true });
  const status = h('span', { class: 'muted', id: 'log-status' });
  const output = h('pre', { class: 'log', id: 'log-lines' });
  const controller = new AbortController();
  let scheduled = false;

  for (const control of [groupSelect, instanceInput, levelSelect, search]) {
    control.addEventListener('input', () => draw());
  }

  function matches(line: LogLine): boolean {
    const group = groupSelect.value;
    const instance = instanceInput.value;
    // A group or instance filter shows that instance's lines only: the daemon's own lines have neither.
    const ofInstance = line.kind === 'output' || line.kind === 'instance_end';
    if (group !== '' && (!ofInstance || line.group !== group)) return false;
    if (instance !== '' && (!ofInstance || String(line.instance) !== instance)) return false;
    if (levels.indexOf(levelOf(line)) < levels.indexOf(levelSelect.value as Level)) return false;
    const text = search.value.trim().toLowerCase();
    return text === '' || textOf(line).toLowerCase().includes(text) || sourceOf(line).includes(text);
  }

  function draw(): void {
    scheduled = false;
    const shown: LogLine[] = [];
    for (let index = lines.length - 1; index >= 0 && shown.length < shownLines; index -= 1) {
      if (matches(lines[index]!)) shown.push(lines[index]!);
    }
    shown.reverse();
    replaceChildren(
      output,
      shown.map((line) =>
        h(
          'div',
          { class: `line level-${levelOf(line)} kind-${line.kind}` },
          h('span', { class: 'ts' }, line.ts.slice(11, 23)),
          h('span', { class: 'src' }, sourceOf(line)),
          textOf(line),
        ),
      ),
    );
    const hidden = lines.length - shown.length;
    status.textContent = `${lines.length} lines${hidden > 0 ? `, ${shown.length} shown` : ''}`;
    if (follow.checked) output.scrollTop = output.scrollHeight;
  }

  function add(line: LogLine): void {
    // A run's status, repeated as it changes: the task page shows it elsewhere, the log keeps to events.
    if (line.kind === 'progress') return;
    lines.push(line);
    if (lines.length > keptLines) lines.splice(0, lines.length - keptLines);
    if ((line.kind === 'output' || line.kind === 'instance_end') && !groups.has(line.group)) {
      groups.add(line.group);
      groupSelect.appendChild(h('option', { value: line.group }, line.group));
    }
    // Lines come in bursts: draw once per frame, not once per line.
    if (!scheduled) {
      scheduled = true;
      requestAnimationFrame(draw);
    }
  }

  async function stream(): Promise<void> {
    let offset: string | undefined;
    while (!controller.signal.aborted) {
      try {
        const query = new URLSearchParams({ follow: 'true' });
        if (offset) query.set('offset', offset);
        const response = await apiFetch(`/tasks/${taskId}/logs?${query}`, { signal: controller.signal });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        status.textContent = 'following';
        let ended = false;
        await readNdjson<LogLine>(response, (line) => {
          offset = line.offset;
          if (line.kind === 'end') ended = true;
          add(line);
        });
        if (ended) return;
      } catch (error) {
        if (controller.signal.aborted) return;
        status.textContent = `log stream broke (${String(error)}); resuming`;
      }
      await new Promise((resolve) => setTimeout(resolve, retryMs));
    }
  }

  void stream();
  const element = h(
    'section',
    { class: 'log-view' },
    h('h2', {}, 'Log'),
    h(
      'div',
      { class: 'toolbar' },
      groupSelect,
      instanceInput,
      levelSelect,
      search,
      h('label', {}, follow, ' follow'),
      status,
    ),
    output,
  );
  return { element, dispose: () => controller.abort() };
}

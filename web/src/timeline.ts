import { h } from './dom.ts';
import { formatMs } from './format.ts';
import type { InstanceView, Phase } from './types.ts';

const ticks = 8;

/** A bar's kind, from the mark that opens it: its colour, and its name in the legend. */
function kindOf(mark: string): string {
  if (mark === 'created') return 'starting';
  if (mark === 'started') return 'running';
  if (mark === 'network-initialized') return 'network-ready';
  if (mark.startsWith('stage-start:')) return 'stage';
  if (mark.startsWith('stage-end:')) return 'after-stage';
  return 'other';
}

function describe(from: Phase, to: Phase): string {
  const name = from.name.startsWith('stage-start:')
    ? `stage ${from.name.slice(12)}`
    : `${from.name} → ${to.name}`;
  return `${name}: ${formatMs(Date.parse(to.at) - Date.parse(from.at))}`;
}

/**
 * One row per instance with a bar between each two consecutive phase marks, rows grouped by group (each
 * group folds), coloured by phase, the row's label by the instance's outcome. A zoom widens the drawing
 * (it scrolls sideways); a run of 300 instances stays readable at 14 px a row.
 */
export function timeline(instances: InstanceView[]): HTMLElement {
  const timed = instances.filter((instance) => (instance.phases?.length ?? 0) > 0);
  if (timed.length === 0) {
    return h(
      'p',
      { class: 'muted timeline-empty' },
      "No instance phases in this run's result (daemons record them since the metrics release).",
    );
  }
  const times = timed.flatMap((instance) => instance.phases!.map((phase) => Date.parse(phase.at)));
  const start = Math.min(...times);
  const span = Math.max(1, Math.max(...times) - start);
  const left = (at: string): number => ((Date.parse(at) - start) / span) * 100;

  const canvas = h('div', { class: 'timeline-canvas' });
  const axis = h(
    'div',
    { class: 'timeline-axis' },
    Array.from({ length: ticks + 1 }, (_, index) =>
      h('span', { style: `left:${(index / ticks) * 100}%` }, formatMs((span * index) / ticks)),
    ),
  );
  canvas.appendChild(axis);

  const groups = new Map<string, InstanceView[]>();
  for (const instance of instances) {
    const list = groups.get(instance.group) ?? [];
    list.push(instance);
    groups.set(instance.group, list);
  }
  for (const [group, members] of groups) {
    members.sort((a, b) => a.index - b.index);
    const rows = members.map((instance) => {
      const phases = instance.phases ?? [];
      const bars = phases.slice(0, -1).map((from, index) => {
        const to = phases[index + 1]!;
        return h('span', {
          class: `bar phase-${kindOf(from.name)}`,
          style: `left:${left(from.at)}%;width:${Math.max(0.15, left(to.at) - left(from.at))}%`,
          title: `${instance.group}/${instance.index} ${describe(from, to)}`,
        });
      });
      return h(
        'div',
        { class: 'timeline-row', 'data-instance': `${instance.group}/${instance.index}` },
        h(
          'span',
          {
            class: `row-label outcome-${instance.outcome}`,
            title: `${instance.outcome}: ${instance.reason}`,
          },
          `${instance.group}/${instance.index}`,
        ),
        h('span', { class: 'row-bars' }, bars),
      );
    });
    canvas.appendChild(
      h(
        'details',
        { open: true, class: 'timeline-group' },
        h('summary', {}, `${group} (${members.length})`),
        rows,
      ),
    );
  }

  const zoom = h('input', { type: 'range', min: 1, max: 20, value: 1, id: 'timeline-zoom' });
  zoom.addEventListener('input', () => {
    canvas.style.width = `${Number(zoom.value) * 100}%`;
  });
  const legend = ['starting', 'running', 'network-ready', 'stage', 'after-stage'].map((kind) =>
    h('span', { class: 'legend-item' }, h('span', { class: `swatch phase-${kind}` }), kind),
  );
  return h(
    'div',
    { class: 'timeline', 'data-rows': timed.length },
    h(
      'div',
      { class: 'toolbar' },
      h('label', {}, 'zoom ', zoom),
      legend,
      h('span', { class: 'muted' }, `span ${formatMs(span)}`),
    ),
    h('div', { class: 'timeline-scroll' }, canvas),
  );
}

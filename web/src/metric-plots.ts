import uPlot from 'uplot';
import { ApiError, apiJson } from './api.ts';
import { h, replaceChildren } from './dom.ts';
import { number } from './format.ts';
import type { MetricPoint, MetricStats, RunMetrics } from './types.ts';

const palette = ['#2f6fde', '#e0702b', '#2aa876', '#c0399f', '#8a6d1f', '#5b5fc7', '#d43f3f', '#3aa0b5'];
const statNames = ['count', 'min', 'p50', 'p90', 'p99', 'max', 'mean'] as const;
const plotWidth = 520;
const plotHeight = 220;

/** The run's metrics, or null when the daemon has none for it (an older daemon, or a run without metrics). */
export async function fetchRunMetrics(runId: string, raw: boolean): Promise<RunMetrics | null> {
  try {
    return await apiJson<RunMetrics>(`/runs/${runId}/metrics${raw ? '?raw=true' : ''}`);
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 409)) return null;
    throw error;
  }
}

/**
 * Per metric: a table of its summary per group, and a plot: the distribution as a percentile curve per group
 * (histograms and counters), or the values over time (gauges and points, which carry timestamps).
 */
export function metricPlots(metrics: RunMetrics): HTMLElement {
  const names = new Map<string, MetricStats>();
  for (const byName of Object.values(metrics.groups)) {
    for (const [name, stats] of Object.entries(byName)) if (!names.has(name)) names.set(name, stats);
  }
  if (names.size === 0) return h('p', { class: 'muted' }, 'This run recorded no metrics.');
  const groupIds = Object.keys(metrics.groups).sort();
  const cards = [...names]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, first]) => {
      const plot = h('div', { class: 'plot' });
      const card = h(
        'div',
        { class: 'metric', 'data-metric': name },
        h(
          'h3',
          {},
          name,
          first.unit ? h('span', { class: 'muted' }, ` (${first.unit})`) : null,
          h('span', { class: 'tag' }, first.type),
        ),
        summaryTable(metrics, groupIds, name),
        plot,
      );
      const points = metrics.points?.filter((point) => point.name === name) ?? [];
      // Drawn once the card is in the document: uPlot measures its container.
      requestAnimationFrame(() => {
        if (first.type === 'gauge' || first.type === 'point') timeSeries(plot, groupIds, points, first.unit);
        else percentiles(plot, metrics, groupIds, name, points, first.unit);
      });
      return card;
    });
  return h('div', { class: 'metrics' }, cards);
}

function summaryTable(metrics: RunMetrics, groupIds: string[], name: string): HTMLElement {
  return h(
    'table',
    { class: 'stats' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', {}, 'group'),
        statNames.map((stat) => h('th', {}, stat)),
      ),
    ),
    h(
      'tbody',
      {},
      groupIds.map((group) => {
        const stats = metrics.groups[group]?.[name];
        return stats
          ? h(
              'tr',
              {},
              h('td', {}, group),
              statNames.map((stat) => h('td', {}, number(stats[stat]))),
            )
          : null;
      }),
    ),
  );
}

function series(groupIds: string[], unit: string | undefined, points: boolean): uPlot.Series[] {
  return [
    {},
    ...groupIds.map((group, index) => ({
      label: group,
      stroke: palette[index % palette.length]!,
      width: 1.5,
      value: (_plot: uPlot, value: number | null) =>
        value === null ? '–' : `${number(value)}${unit ? ` ${unit}` : ''}`,
      ...(points ? { paths: () => null, points: { show: true, size: 4 } } : {}),
    })),
  ];
}

/** The value at each percentile per group: from the raw points when there are some, else the summary's marks. */
function percentiles(
  element: HTMLElement,
  metrics: RunMetrics,
  groupIds: string[],
  name: string,
  points: MetricPoint[],
  unit: string | undefined,
): void {
  const marks = Array.from({ length: 101 }, (_, index) => index);
  const columns = groupIds.map((group): (number | null)[] => {
    const values = valuesOf(points.filter((point) => point.group === group)).sort((a, b) => a - b);
    if (values.length > 0) {
      // Nearest rank, as the daemon's summary computes them.
      return marks.map((mark) => values[Math.max(0, Math.ceil((mark / 100) * values.length) - 1)]!);
    }
    const stats = metrics.groups[group]?.[name];
    if (!stats) return marks.map(() => null);
    const known = new Map([
      [0, stats.min],
      [50, stats.p50],
      [90, stats.p90],
      [99, stats.p99],
      [100, stats.max],
    ]);
    return marks.map((mark) => known.get(mark) ?? null);
  });
  new uPlot(
    {
      width: plotWidth,
      height: plotHeight,
      title: 'percentiles',
      scales: { x: { time: false } },
      axes: [{ label: 'percentile' }, { label: unit ?? '' }],
      series: series(groupIds, unit, points.length === 0),
    },
    [marks, ...columns] as uPlot.AlignedData,
    element,
  );
}

function timeSeries(
  element: HTMLElement,
  groupIds: string[],
  points: MetricPoint[],
  unit: string | undefined,
): void {
  if (points.length === 0) {
    replaceChildren(element, h('p', { class: 'muted' }, 'no raw points for a time series'));
    return;
  }
  const tables = groupIds.map((group): uPlot.AlignedData => {
    const mine = points
      .filter((point) => point.group === group)
      .map((point) => [Date.parse(point.ts) / 1000, point.value] as const)
      .sort((a, b) => a[0] - b[0]);
    return [mine.map(([at]) => at), mine.map(([, value]) => value)];
  });
  new uPlot(
    {
      width: plotWidth,
      height: plotHeight,
      title: 'over time',
      axes: [{}, { label: unit ?? '' }],
      series: series(groupIds, unit, true),
    },
    uPlot.join(tables),
    element,
  );
}

/**
 * The values a distribution is drawn from: every recorded value, but for a counter its final value per
 * instance (the daemon's summary counts counters that way, so the plot and the table agree).
 */
function valuesOf(points: MetricPoint[]): number[] {
  if (points[0]?.type !== 'counter') return points.map((point) => point.value);
  const last = new Map<number, MetricPoint>();
  for (const point of points) {
    const seen = last.get(point.instance);
    if (!seen || Date.parse(point.ts) >= Date.parse(seen.ts)) last.set(point.instance, point);
  }
  return [...last.values()].map((point) => point.value);
}

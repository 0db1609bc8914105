/**
 * The run views issue 11 adds (instance timeline, metric plots, compare) in a real headless chromium, fed a
 * 300-instance run shaped exactly as the contract says (InstanceResult.phases, GET /runs/:id/metrics) through
 * the browser's own request routing: the page and its bundle are the built ones, only the API's answers are
 * the test's. dashboard.test.ts runs the page against a real daemon.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page, Route } from 'playwright-core';
import { repoRoot } from '../helpers/processes.ts';
import { buildDashboard, launchChromium, screenshotDir } from './browser.ts';

const origin = 'http://dashboard.test';
const groups = ['seeders', 'leechers', 'observers'];
const perGroup = 100;
const start = Date.parse('2026-11-30T10:00:00.000Z');
const iso = (offsetMs: number): string => new Date(start + offsetMs).toISOString();

/** A deterministic spread, so every run of the test draws the same picture. */
const jitter = (seed: number): number => ((seed * 7919) % 1000) / 1000;

function instance(group: string, index: number) {
  const seed = groups.indexOf(group) * perGroup + index;
  const created = jitter(seed) * 2_000;
  const started = created + 300 + jitter(seed + 1) * 500;
  const network = started + 200;
  const stageEnd = network + 1_000 + jitter(seed + 2) * 3_000;
  const failed = group === 'leechers' && index % 25 === 0;
  return {
    group,
    index,
    outcome: failed ? 'failure' : 'success',
    reason: failed ? 'recorded failure: peer unreachable' : 'recorded success and exited with code 0',
    exitCode: failed ? 1 : 0,
    signal: null,
    phases: [
      { name: 'created', at: iso(created) },
      { name: 'started', at: iso(started) },
      { name: 'network-initialized', at: iso(network) },
      { name: 'stage-start:transfer', at: iso(network + 50) },
      { name: 'stage-end:transfer', at: iso(stageEnd) },
      { name: 'ended', at: iso(stageEnd + 400) },
    ],
  };
}

function run(id: string, scale: number) {
  const instances = groups.flatMap((group) =>
    Array.from({ length: perGroup }, (_, index) => instance(group, index)),
  );
  const points = groups.flatMap((group) =>
    Array.from({ length: perGroup }, (_, index) => [
      {
        group,
        instance: index,
        name: 'latency',
        type: 'histogram',
        unit: 'ms',
        value: (10 + jitter(index) * 90) * scale,
        ts: iso(3_000 + index * 10),
      },
      {
        group,
        instance: index,
        name: 'throughput',
        type: 'point',
        unit: 'MiB/s',
        value: 50 + jitter(index + 3) * 20,
        ts: iso(2_000 + index * 30),
      },
    ]).flat(),
  );
  const summary = (values: number[], type: string, unit: string) => {
    const sorted = [...values].sort((a, b) => a - b);
    const rank = (p: number) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
    return {
      type,
      unit,
      count: sorted.length,
      min: sorted[0]!,
      p50: rank(50),
      p90: rank(90),
      p99: rank(99),
      max: sorted.at(-1)!,
      mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    };
  };
  const metrics = Object.fromEntries(
    groups.map((group) => {
      const mine = points.filter((point) => point.group === group);
      return [
        group,
        {
          latency: summary(
            mine.filter((p) => p.name === 'latency').map((p) => p.value),
            'histogram',
            'ms',
          ),
          throughput: summary(
            mine.filter((p) => p.name === 'throughput').map((p) => p.value),
            'point',
            'MiB/s',
          ),
        },
      ];
    }),
  );
  const result = {
    outcome: 'failure',
    reason: '296/300 instances succeeded',
    groups: Object.fromEntries(
      groups.map((group) => {
        const failures = instances.filter((i) => i.group === group && i.outcome === 'failure').length;
        return [
          group,
          {
            total: perGroup,
            ok: perGroup - failures,
            outcomes: failures ? { success: perGroup - failures, failure: failures } : { success: perGroup },
          },
        ];
      }),
    ),
    instances,
    metrics,
  };
  const task = {
    id,
    type: 'run',
    plan: 'benchmarks',
    case: 'latency',
    builder: 'exec:node',
    runner: 'local:exec',
    instances: 300,
    created_by: 'alice',
    created_at: iso(-1_000),
    state: 'complete',
    run_id: id,
    states: [
      { state: 'queued', at: iso(-1_000) },
      { state: 'running', at: iso(0) },
      { state: 'complete', at: iso(6_000) },
    ],
    outcome: 'failure',
    error: null,
    result,
    runs: [
      {
        id,
        name: 'default',
        instances: 300,
        state: 'complete',
        outcome: 'failure',
        error: null,
        result,
        started_at: iso(0),
        ended_at: iso(6_000),
      },
    ],
    artifacts: [],
    warnings: [],
    cancel_requested: false,
    metadata: {},
    supersedes: [],
    composition: { global: { plan: 'benchmarks', case: 'latency' } },
  };
  return { task, metrics: { run_id: id, task_id: id, groups: metrics, points } };
}

const runs = { aaa1: run('aaa1', 1), bbb2: run('bbb2', 1.5) };

async function serve(route: Route): Promise<void> {
  const url = new URL(route.request().url());
  const json = (body: unknown, status = 200) =>
    route.fulfill({ status, contentType: 'application/json', body: JSON.stringify(body) });
  const task = /^\/api\/v1\/tasks\/(\w+)$/.exec(url.pathname);
  const metrics = /^\/api\/v1\/runs\/(\w+)\/metrics$/.exec(url.pathname);
  if (task)
    return json(
      runs[task[1] as keyof typeof runs]?.task ?? {
        error: { code: 'not_found', message: 'no such task', details: [] },
      },
      task[1]! in runs ? 200 : 404,
    );
  if (metrics) {
    const found = runs[metrics[1] as keyof typeof runs]?.metrics;
    if (!found) return json({ error: { code: 'not_found', message: 'no such run', details: [] } }, 404);
    return json(url.searchParams.get('raw') === 'true' ? found : { ...found, points: undefined });
  }
  if (url.pathname === '/api/v1/tasks') {
    const summaries = Object.values(runs).map(({ task: t }) => ({
      ...t,
      ended_at: iso(6_000),
      links: { task: `/api/v1/tasks/${t.id}` },
    }));
    return json({ tasks: summaries, next_cursor: null });
  }
  if (url.pathname.startsWith('/api/v1/tasks/') && url.pathname.endsWith('/logs')) {
    return route.fulfill({
      status: 200,
      contentType: 'application/x-ndjson',
      body: `${JSON.stringify({ kind: 'end', ts: iso(6_000), offset: '1-0', state: 'complete', outcome: 'failure' })}\n`,
    });
  }
  const file = path.join(repoRoot, 'web/dist', url.pathname === '/' ? 'index.html' : url.pathname.slice(1));
  const type = file.endsWith('.js') ? 'text/javascript' : file.endsWith('.css') ? 'text/css' : 'text/html';
  return route.fulfill({ status: 200, contentType: type, body: await readFile(file) });
}

describe('the run views with a 300-instance run shaped as the contract says', () => {
  let chromium: Awaited<ReturnType<typeof launchChromium>>;
  let page: Page;

  before(async () => {
    buildDashboard();
    await mkdir(screenshotDir, { recursive: true });
    chromium = await launchChromium();
    page = await chromium.context.newPage();
    await page.route(`${origin}/**`, serve);
  });
  after(async () => {
    await chromium?.close();
  });

  it('draws a timeline row per instance, grouped, with a bar per phase, and zooms', async () => {
    await page.goto(`${origin}/#/tasks/aaa1`);
    const timeline = page.locator('.timeline');
    await timeline.waitFor();
    assert.equal(await page.locator('.timeline-row').count(), 300);
    assert.deepEqual(
      await page.locator('.timeline-group summary').allInnerTexts(),
      groups.map((g) => `${g} (${perGroup})`),
    );
    // Six marks make five bars.
    assert.equal(await page.locator('.timeline-row .bar').count(), 300 * 5);
    assert.equal(await page.locator('.timeline-row .row-label.outcome-failure').count(), 4);
    const box = await page.locator('.timeline-row').first().boundingBox();
    assert.ok(box && box.height <= 16, `rows stay compact at 300 instances: ${box?.height} px`);
    await page.screenshot({
      path: path.join(screenshotDir, 'timeline-300.png'),
      fullPage: false,
      clip: { x: 0, y: 0, width: 1280, height: 900 },
    });
    const before = await page.locator('.timeline-canvas').boundingBox();
    await page.locator('#timeline-zoom').fill('4');
    const zoomed = await page.locator('.timeline-canvas').boundingBox();
    assert.ok(
      before && zoomed && zoomed.width > before.width * 3,
      `zoom widens the drawing: ${before?.width} → ${zoomed?.width}`,
    );
  });

  it('plots each metric per group and tabulates its summary', async () => {
    const cards = page.locator('.metric');
    await page.locator('.metric canvas').first().waitFor();
    assert.deepEqual(await cards.evaluateAll((all) => all.map((card) => card.getAttribute('data-metric'))), [
      'latency',
      'throughput',
    ]);
    assert.equal(await page.locator('.metric .uplot').count(), 2);
    const latency = await page.locator('.metric[data-metric="latency"] table.stats tbody tr').count();
    assert.equal(latency, 3, 'a summary row per group');
    // A series per group in each plot's legend.
    const labels = await page
      .locator('.metric[data-metric="latency"] .u-legend .u-series .u-label')
      .allInnerTexts();
    for (const group of groups) assert.ok(labels.includes(group), `series for ${group}: ${labels.join(',')}`);
    await page.locator('.metric[data-metric="latency"]').scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(screenshotDir, 'metrics.png'), fullPage: true });
  });

  it('compares two runs with the change in percent', async () => {
    await page.goto(`${origin}/#/compare?a=aaa1&b=bbb2`);
    await page.locator('#compare table.compare-metrics').waitFor();
    const p50 = await page.locator('tr[data-metric="seeders/latency/p50"] td').allInnerTexts();
    assert.equal(p50.at(-1), '+50.0%', p50.join(' | '));
    const count = await page.locator('tr[data-metric="seeders/latency/count"] td').allInnerTexts();
    assert.equal(count.at(-1), '0.0%');
    await page.screenshot({ path: path.join(screenshotDir, 'compare.png'), fullPage: true });
  });
});

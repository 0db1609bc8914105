/**
 * `npm run bench -- dashboard`: the dashboard in headless chromium (Debian's, as the browser tests) against
 * the bench daemon with 1,000 tasks stored: first paint and the time to show all 1,000 rows, what a live
 * refresh of the list costs (asking, drawing), how soon a state change shows, and a 300-instance run's page
 * with its timeline. Next to them, the floor: the same 1,000-task listing fetched alone.
 */
import path from 'node:path';
import { Redis } from 'ioredis';
import type { RunResult } from '../core/run.ts';
import { TaskStore } from '../daemon/task-store.ts';
import type { Composition } from '../plan/composition.ts';
import { buildDashboard, launchChromium } from '../test/web/browser.ts';
import type { DaemonProcess } from '../test/helpers/processes.ts';
import { seed } from './bench-tasks.ts';

type Figures = Record<string, string | number>;

const storedTasks = 1_000;
const bigRun = { id: 'benchbig300', instances: 300, groups: ['a', 'b', 'c'] };
const median = (values: number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** A finished task of 300 instances whose result carries phases, as issue 11's runners record them. */
async function seedBigRun(store: TaskStore): Promise<void> {
  const start = Date.now() - 60_000;
  const at = (ms: number): string => new Date(start + ms).toISOString();
  const perGroup = bigRun.instances / bigRun.groups.length;
  const instances = bigRun.groups.flatMap((group) =>
    Array.from({ length: perGroup }, (_, index) => ({
      group,
      index,
      outcome: 'success' as const,
      reason: 'recorded success and exited with code 0',
      exitCode: 0,
      signal: null,
      phases: [
        'created',
        'started',
        'network-initialized',
        'stage-start:work',
        'stage-end:work',
        'ended',
      ].map((name, step) => ({ name, at: at(index * 10 + step * 500) })),
    })),
  );
  const result = {
    outcome: 'success',
    reason: `${bigRun.instances}/${bigRun.instances} instances succeeded`,
    groups: Object.fromEntries(
      bigRun.groups.map((group) => [
        group,
        { total: perGroup, ok: perGroup, outcomes: { success: perGroup } },
      ]),
    ),
    instances,
  } as unknown as RunResult;
  const runs = [{ id: bigRun.id, name: 'default', instances: bigRun.instances, outputsDir: '/outputs/big' }];
  await store.create({
    id: bigRun.id,
    plan: 'example',
    testCase: 'sync',
    builder: 'exec:node',
    runner: 'local:exec',
    instances: bigRun.instances,
    createdBy: 'bench',
    composition: { global: { plan: 'example', case: 'sync' } } as unknown as Composition,
    resolved: { plan: 'example', testCase: 'sync', builder: 'exec:node', runner: 'local:exec', runs: [] },
    runs,
    planDir: `/home/tasks/${bigRun.id}`,
  });
  await store.transition(bigRun.id, ['queued'], 'building');
  await store.transition(bigRun.id, ['building'], 'running');
  await store.transition(bigRun.id, ['running'], 'complete', {
    outcome: 'success',
    runs: [{ ...runs[0]!, state: 'complete', outcome: 'success', result }],
  });
}

export async function dashboardBench(daemon: DaemonProcess): Promise<Figures> {
  const redis = new Redis({ path: path.join(daemon.home, 'redis', 'redis.sock') });
  const store = new TaskStore(redis, process.env.TESTGROUND_REDIS_PREFIX ?? 'tg');
  const chromium = await launchChromium();
  try {
    // The tasks part may have stored them already (same ids): seed only what is missing.
    const listed = (await (await fetch(`${daemon.url}/api/v1/tasks?limit=1000`)).json()) as {
      tasks: unknown[];
    };
    if (listed.tasks.length < storedTasks) await seed(store, storedTasks);
    await seedBigRun(store);
    buildDashboard();

    const floorStarted = performance.now();
    await (await fetch(`${daemon.url}/api/v1/tasks?limit=1000`)).arrayBuffer();
    const floorMs = performance.now() - floorStarted;

    const page = await chromium.context.newPage();
    const app = page.locator('#app');
    await page.goto(`${daemon.url}/#/?limit=1000`);
    await page
      .locator('#task-rows tr')
      .nth(storedTasks - 1)
      .waitFor({ timeout: 60_000 });
    // Playwright runs these in the page; a string keeps the DOM's types out of this Node script.
    const firstPaint = (await page.evaluate(
      "({ fcp: performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN, rows: performance.now(), listAsked: performance.getEntriesByType('resource').find((entry) => entry.name.includes('/api/v1/tasks'))?.startTime ?? NaN })",
    )) as { fcp: number; rows: number; listAsked: number };
    const firstFetchMs = Number(await app.getAttribute('data-fetch-ms'));
    const firstRenderMs = Number(await app.getAttribute('data-render-ms'));
    const firstDrawnAt = Number(await app.getAttribute('data-first-drawn-at'));

    // Ten refreshes of the full list with nothing changed, then one with a change, timed from the change.
    const refreshes: { fetch: number; render: number }[] = [];
    let seen = Number(await app.getAttribute('data-refreshes'));
    while (refreshes.length < 10) {
      await page.waitForFunction(
        `Number(document.getElementById('app').dataset.refreshes) > ${seen}`,
        undefined,
        { timeout: 10_000 },
      );
      seen = Number(await app.getAttribute('data-refreshes'));
      refreshes.push({
        fetch: Number(await app.getAttribute('data-fetch-ms')),
        render: Number(await app.getAttribute('data-render-ms')),
      });
    }
    // A task seeded queued (every tenth is) and among the newest 1,000 (the 300-instance run is newer still).
    const queued = 'bench000990';
    const changed = performance.now();
    await store.transition(queued, ['queued'], 'building');
    await page.waitForSelector(`tr[data-task="${queued}"][data-state="building"]`, { timeout: 10_000 });
    const changeShownMs = performance.now() - changed;

    await page.goto(`${daemon.url}/#/tasks/${bigRun.id}`);
    const pageStarted = performance.now();
    await page
      .locator('.timeline-row')
      .nth(bigRun.instances - 1)
      .waitFor({ timeout: 60_000 });
    const bigPageMs = performance.now() - pageStarted;

    return {
      [`dashboard, task list of ${storedTasks} tasks: first contentful paint`]: `${firstPaint.fcp.toFixed(0)} ms`,
      [`  all ${storedTasks} rows drawn (from navigation)`]: `${firstDrawnAt.toFixed(0)} ms (seen by the test at ${firstPaint.rows.toFixed(0)} ms; list asked at ${firstPaint.listAsked.toFixed(0)} ms; GET ${firstFetchMs.toFixed(0)} ms, drawing ${firstRenderMs.toFixed(0)} ms)`,
      [`  a live refresh (median of ${refreshes.length}): GET /tasks?limit=1000 + redraw`]: `${median(refreshes.map((r) => r.fetch)).toFixed(1)} ms + ${median(refreshes.map((r) => r.render)).toFixed(1)} ms`,
      '  a state change shows in the list after (polled every 1 s)': `${changeShownMs.toFixed(0)} ms`,
      '  floor: GET /tasks?limit=1000 from Node alone': `${floorMs.toFixed(1)} ms`,
      [`dashboard, task page of a ${bigRun.instances}-instance run: timeline of ${bigRun.instances} rows shown`]: `${bigPageMs.toFixed(0)} ms`,
    };
  } finally {
    await chromium.close();
    redis.disconnect();
  }
}

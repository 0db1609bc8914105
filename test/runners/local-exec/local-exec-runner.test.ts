/**
 * LocalExecRunner with real processes and its real sync service: groups that ask for resources run
 * anyway, and the run says once that local:exec does not enforce them.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import type { ResolvedGroup } from '../../../core/run.ts';
import { LocalExecRunner } from '../../../runners/local-exec/local-exec-runner.ts';
import { SyncServiceBundle } from '../../../runners/sync-service-bundle.ts';
import { MemoryTaskLog } from '../../helpers/memory-task-log.ts';

let scratch: string;
let bundle: string;

before(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'tg-local-exec-runner-'));
  bundle = path.join(scratch, 'bundle.mjs');
  // The task runner makes the run's temp directory before it calls the runner.
  await mkdir(path.join(scratch, 'temp'));
  // Records success at once, in the event format the runner reads (CONTRACT §4).
  await writeFile(bundle, "console.log(JSON.stringify({ event: { type: 'finish', outcome: 'ok' } }));\n");
});

after(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

const group = (id: string, resources: ResolvedGroup['resources']): ResolvedGroup => ({
  id,
  instances: 2,
  builder: 'exec:node',
  buildConfig: {},
  resources,
  testParams: {},
  dependencies: [],
});

describe('LocalExecRunner', () => {
  it('runs groups that ask for resources, warning once per run that it does not enforce them', async () => {
    const runner = new LocalExecRunner({
      logger: pino({ level: 'silent' }),
      syncService: new SyncServiceBundle(path.join(scratch, 'sync-service')),
    });
    const groups = [
      group('limited', { cpus: 64, memoryBytes: 512 * 1024 ** 2 }),
      group('cpu-only', { cpus: 0.5 }),
      group('free', {}),
    ];
    const log = new MemoryTaskLog();
    const { instances } = await runner.run({
      runId: 'local-exec-resources',
      run: {
        id: 'default',
        plan: 'runner-test',
        testCase: 'case',
        builder: 'exec:node',
        runner: 'local:exec',
        totalInstances: 6,
        runConfig: {},
        timeoutMs: 60_000,
        disableMetrics: true,
        groups,
      },
      artifacts: new Map(groups.map((g) => [g.id, { kind: 'bundle', path: bundle, cached: false }])),
      outputsDir: path.join(scratch, 'outputs'),
      tempDir: path.join(scratch, 'temp'),
      startTime: new Date(),
      log,
      signal: new AbortController().signal,
    });
    assert.deepEqual(
      instances.map((instance) => instance.outcome),
      Array(6).fill('success'),
      log.text(),
    );
    assert.deepEqual(
      log.lines.filter((line) => line.startsWith('WARN')),
      [
        'WARN local:exec: resources are not enforced on this runner, instances run without limits: limited (cpu 64, memory 512 MiB), cpu-only (cpu 0.5); local:docker applies them',
      ],
    );
  });

  it('keeps the output and the exit of an instance that ends while its pid is being recorded', async () => {
    // Recording a pid takes a while (a slow disk): the instances finish before it is done. The runner must
    // already be listening, or their output is lost and their exit missed, and the run never ends.
    const recorded: number[] = [];
    const runner = new LocalExecRunner({
      logger: pino({ level: 'silent' }),
      syncService: new SyncServiceBundle(path.join(scratch, 'sync-service')),
      recordPid: async (_tempDir, pid) => {
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        recorded.push(pid);
      },
    });
    const quick = group('quick', {});
    const log = new MemoryTaskLog();
    const { instances } = await runner.run({
      runId: 'local-exec-slow-pids',
      run: {
        id: 'default',
        plan: 'runner-test',
        testCase: 'case',
        builder: 'exec:node',
        runner: 'local:exec',
        totalInstances: 2,
        runConfig: {},
        timeoutMs: 30_000,
        disableMetrics: true,
        groups: [quick],
      },
      artifacts: new Map([[quick.id, { kind: 'bundle', path: bundle, cached: false }]]),
      outputsDir: path.join(scratch, 'outputs-slow-pids'),
      tempDir: path.join(scratch, 'temp'),
      startTime: new Date(),
      log,
      signal: new AbortController().signal,
    });
    assert.deepEqual(
      instances.map((instance) => [instance.outcome, instance.reason]),
      Array(2).fill(['success', 'recorded success and exited with code 0']),
      log.text(),
    );
    assert.equal(recorded.length, 3, 'the sync service and both instances were recorded');
    assert.match(log.text(), /quick\[0\] stdout: .*"outcome":"ok"/, 'its output reached the log');
  });
});

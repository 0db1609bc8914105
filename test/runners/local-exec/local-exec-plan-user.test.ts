/**
 * LocalExecRunner with a plan user (root runs this test): the instance runs as nobody, cannot open the
 * daemon's /proc/<ppid>/environ, and a link it leaves where the daemon writes or reads (run.out) is never
 * followed, so a root-only file of the host is neither overwritten nor copied into the outputs.
 */
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { PlanUser, resolvePlanUser } from '../../../builders/plan-user.ts';
import type { ResolvedGroup } from '../../../core/run.ts';
import { LocalExecRunner } from '../../../runners/local-exec/local-exec-runner.ts';
import { SyncServiceBundle } from '../../../runners/sync-service-bundle.ts';
import { MemoryTaskLog } from '../../helpers/memory-task-log.ts';

let scratch: string;
const secret = `daemon-secret-${process.pid}`;

before(async () => {
  assert.equal(process.getuid?.(), 0, 'this test needs root: instances switch to nobody');
  scratch = await mkdtemp(path.join(os.tmpdir(), 'tg-local-exec-plan-user-'));
  await mkdir(path.join(scratch, 'temp'));
});

after(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('LocalExecRunner with a plan user', () => {
  it('runs instances as nobody, away from the daemon environment, and never follows a link they leave', async () => {
    const rootOnly = path.join(scratch, 'root-only.txt');
    await writeFile(rootOnly, 'root-only content\n', { mode: 0o600 });
    const bundle = path.join(scratch, 'bundle.mjs');
    // Reads its parent's environ, then leaves run.out as a link to a root-only file and writes only stdout.
    await writeFile(
      bundle,
      `import fs from 'node:fs';
import path from 'node:path';
let parent;
try { parent = fs.readFileSync('/proc/' + process.ppid + '/environ', 'utf8'); } catch (error) { parent = error.code; }
fs.symlinkSync(${JSON.stringify(rootOnly)}, path.join(process.env.TEST_OUTPUTS_PATH, 'run.out'));
console.log(JSON.stringify({ uid: process.getuid(), parent, sawSecret: JSON.stringify(process.env).includes(${JSON.stringify(secret)}) }));
console.log(JSON.stringify({ event: { type: 'finish', outcome: 'ok' } }));
`,
    );
    const saved = process.env.TESTGROUND_TOKEN;
    process.env.TESTGROUND_TOKEN = secret;
    try {
      const runner = new LocalExecRunner({
        logger: pino({ level: 'silent' }),
        syncService: new SyncServiceBundle(path.join(scratch, 'sync-service')),
        planUser: new PlanUser(resolvePlanUser('nobody'), { root: scratch }),
      });
      const group: ResolvedGroup = {
        id: 'single',
        instances: 1,
        builder: 'exec:node',
        buildConfig: {},
        resources: {},
        testParams: {},
        dependencies: [],
      };
      const log = new MemoryTaskLog();
      const outputsDir = path.join(scratch, 'outputs');
      const { instances } = await runner.run({
        runId: 'local-exec-plan-user',
        run: {
          id: 'default',
          plan: 'runner-test',
          testCase: 'case',
          builder: 'exec:node',
          runner: 'local:exec',
          totalInstances: 1,
          runConfig: {},
          timeoutMs: 60_000,
          disableMetrics: true,
          groups: [group],
        },
        artifacts: new Map([[group.id, { kind: 'bundle', path: bundle, cached: false }]]),
        outputsDir,
        tempDir: path.join(scratch, 'temp'),
        startTime: new Date(),
        log,
        signal: new AbortController().signal,
      });
      assert.deepEqual(
        instances.map((instance) => instance.outcome),
        ['success'],
        log.text(),
      );
      const runOut = path.join(outputsDir, 'single', '0', 'run.out');
      assert.equal((await lstat(runOut)).isFile(), true, 'the link was replaced by a file of the daemon');
      const captured = await readFile(runOut, 'utf8');
      assert.doesNotMatch(captured, /root-only content/);
      const report = JSON.parse(captured.split('\n')[0]!) as {
        uid: number;
        parent: string;
        sawSecret: boolean;
      };
      assert.deepEqual(report, { uid: 65534, parent: 'EACCES', sawSecret: false });
      assert.equal(
        await readFile(rootOnly, 'utf8'),
        'root-only content\n',
        'the root-only file is untouched',
      );
      assert.equal((await lstat(path.join(outputsDir, 'single', '0'))).uid, 0, 'outputs are taken back');
    } finally {
      if (saved === undefined) delete process.env.TESTGROUND_TOKEN;
      else process.env.TESTGROUND_TOKEN = saved;
    }
  });
});

/**
 * exec:node's cache deduplicated by content: a plan's copy in a bundle links to the content store, a task
 * snapshot gives its files to the store instead of being copied, and the retention collector never removes
 * a bundle a build in progress is reusing. Real builds (esbuild), real archives, real disk usage.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { ContentStore } from '../../builders/content-store.ts';
import { ExecNodeBuilder } from '../../builders/exec-node.ts';
import { packPlanDirectory } from '../../cli/pack-plan.ts';
import { diskUsage } from '../../daemon/disk-usage.ts';
import { RetentionCollector } from '../../daemon/retention-collector.ts';
import { TaskStore } from '../../daemon/task-store.ts';
import { extractPlanArchive } from '../../plan/plan-archive.ts';
import type { ResolvedTask } from '../../core/run.ts';
import { MemoryTaskLog } from '../helpers/memory-task-log.ts';
import { repoRoot, scratchDir } from '../helpers/processes.ts';
import { startTestRedis } from '../helpers/redis-server.ts';

const mib = 1024 * 1024;
const bigFileBytes = 48 * mib;

/** A plan of the placebo's code with a large, very compressible data file: a small upload, a big snapshot. */
async function writePlan(dir: string, extra = ''): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(
    path.join(dir, 'manifest.toml'),
    'name = "dedup"\n[defaults]\nbuilder = "exec:node"\nrunner = "local:exec"\n[[testcases]]\nname = "ok"\ninstances = { min = 1, max = 1, default = 1 }\n',
  );
  await writeFile(
    path.join(dir, 'package.json'),
    JSON.stringify({ name: 'dedup', private: true, type: 'module', main: 'index.ts' }),
  );
  await writeFile(
    path.join(dir, 'index.ts'),
    `import { invokeMap } from 'testground-sdk';\nawait invokeMap({ ok: async () => undefined });\n// ${extra}\n`,
  );
  await writeFile(path.join(dir, 'data.bin'), Buffer.alloc(bigFileBytes));
}

describe('exec:node cache deduplicated by content', () => {
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  before(async () => {
    scratch = await scratchDir('content-store');
  });
  after(async () => {
    await scratch?.remove();
  });

  /** A home as the daemon lays it out, and an upload extracted into it as a task snapshot. */
  const home = async (name: string, withContents: boolean) => {
    const root = path.join(scratch.dir, name);
    const dirs = {
      snapshots: path.join(root, 'tasks'),
      bundles: path.join(root, 'cache/exec-node'),
      contents: path.join(root, 'cache/contents'),
    };
    const contents = new ContentStore(dirs.contents);
    const builder = new ExecNodeBuilder({
      cacheDir: dirs.bundles,
      sdkEntry: path.join(repoRoot, 'sdk/index.ts'),
      ...(withContents ? { contents, snapshotsDir: dirs.snapshots } : {}),
    });
    const submit = async (planSource: string, taskId: string) => {
      const archive = path.join(root, `${taskId}.tar.gz`);
      const packed = await packPlanDirectory(planSource);
      await mkdir(root, { recursive: true });
      await writeFile(archive, packed);
      const { planDir } = await extractPlanArchive(archive, path.join(dirs.snapshots, taskId), {
        maxBytes: 128 * mib,
        maxEntries: 100,
      });
      return { planDir, uploadBytes: packed.length };
    };
    const build = (planDir: string) =>
      builder.build({
        planDir,
        planName: 'dedup',
        buildConfig: {},
        log: new MemoryTaskLog(),
        signal: new AbortController().signal,
      });
    const usage = async () => (await diskUsage(root)).bytes;
    return { root, dirs, contents, builder, submit, build, usage };
  };

  it('a snapshot and its bundle share the plan files: one copy on disk instead of two', async () => {
    const source = path.join(scratch.dir, 'plan-v1');
    await writePlan(source, 'v1');

    const copied = await home('copied', false);
    const { planDir: copiedPlan, uploadBytes } = await copied.submit(source, 'task1');
    await copied.build(copiedPlan);
    const linked = await home('linked', true);
    const { planDir } = await linked.submit(source, 'task1');
    const artifact = await linked.build(planDir);
    assert.equal(artifact.kind, 'bundle');

    const copiedBytes = await copied.usage();
    const linkedBytes = await linked.usage();
    // The upload is small; the plan it holds is not.
    assert.ok(uploadBytes < mib, `upload ${uploadBytes} bytes`);
    assert.ok(copiedBytes > 2 * bigFileBytes, `copied: ${copiedBytes}`);
    assert.ok(linkedBytes < 1.1 * bigFileBytes, `linked: ${linkedBytes}`);

    // One inode: the snapshot's file, the stored one and the bundle's copy.
    const bundleDir = path.dirname(artifact.kind === 'bundle' ? artifact.path : '');
    const inSnapshot = await stat(path.join(planDir, 'data.bin'));
    const inBundle = await stat(path.join(bundleDir, 'data.bin'));
    assert.equal(inSnapshot.ino, inBundle.ino);
    assert.equal(inBundle.nlink, 3);
    assert.equal(inBundle.mode & 0o777, 0o444, 'stored content is read-only');
    // The files a build rewrites are its own.
    assert.equal((await stat(path.join(bundleDir, 'package.json'))).nlink, 1);

    // A new version of the plan: its bundle stores only what changed.
    const source2 = path.join(scratch.dir, 'plan-v2');
    await writePlan(source2, 'v2');
    const { planDir: planDir2 } = await linked.submit(source2, 'task2');
    const before2 = await linked.usage();
    const artifact2 = await linked.build(planDir2);
    assert.notEqual(
      artifact2.kind === 'bundle' && artifact2.path,
      artifact.kind === 'bundle' && artifact.path,
    );
    const grown = (await linked.usage()) - before2;
    assert.ok(grown < 2 * mib, `the second bundle added ${grown} bytes`);

    // Snapshots and bundles gone, the stored content nothing links to goes too.
    const collector = new RetentionCollector({
      dirs: {
        outputs: path.join(linked.root, 'outputs'),
        snapshots: linked.dirs.snapshots,
        bundles: linked.dirs.bundles,
      },
      contents: linked.contents,
      tasks: { list: async () => [], states: async (ids) => ids.map(() => 'complete' as const) },
      isSubmitting: () => false,
      daemonId: 'test',
      policy: { outputs: {}, snapshots: { maxAgeMs: 1 }, cache: { maxAgeMs: 1 }, images: {} },
      logger: pino({ level: 'silent' }),
      now: () => new Date(Date.now() + 10_000),
    });
    const report = await collector.collect({ dryRun: false });
    assert.ok(
      report.removed.some((entry) => entry.reason === 'unreferenced'),
      JSON.stringify(report.removed),
    );
    // What is left: the two uploaded archives and empty directories.
    assert.ok((await linked.usage()) < mib, `left: ${await linked.usage()} bytes`);
  });

  it('never removes a bundle a build in progress is reusing', async (t) => {
    const redis = await startTestRedis();
    t.after(() => redis.close());
    const store = new TaskStore(redis.client, `cs${randomBytes(4).toString('hex')}`);
    const cache = await home('in-use', true);
    const reused = path.join(scratch.dir, 'plan-reused');
    const idle = path.join(scratch.dir, 'plan-idle');
    await writePlan(reused, 'reused');
    await writePlan(idle, 'idle');
    const reusedPlan = (await cache.submit(reused, 'old1')).planDir;
    const idlePlan = (await cache.submit(idle, 'old2')).planDir;
    const reusedBundle = await cache.build(reusedPlan);
    const idleBundle = await cache.build(idlePlan);
    const bundleDirOf = (artifact: typeof reusedBundle): string =>
      path.dirname(artifact.kind === 'bundle' ? artifact.path : '');
    // Both last used an hour ago.
    const hourAgo = new Date(Date.now() - 3_600_000);
    for (const artifact of [reusedBundle, idleBundle]) await utimes(bundleDirOf(artifact), hourAgo, hourAgo);

    // A task starts building and reuses one of them; its record does not name the bundle yet.
    const resolved = {
      plan: 'dedup',
      testCase: 'ok',
      runner: 'local:exec',
      builder: 'exec:node',
      runs: [],
    } as ResolvedTask;
    await store.create({
      id: 'building1',
      plan: 'dedup',
      testCase: 'ok',
      builder: 'exec:node',
      runner: 'local:exec',
      instances: 1,
      createdBy: 'test',
      composition: { global: {}, groups: [] } as never,
      resolved,
      runs: [],
      planDir: reusedPlan,
    });
    assert.ok(await store.transition('building1', ['queued'], 'building'));
    const again = await cache.build(reusedPlan);
    assert.equal(again.cached, true);

    const collector = new RetentionCollector({
      dirs: {
        outputs: path.join(cache.root, 'outputs'),
        snapshots: cache.dirs.snapshots,
        bundles: cache.dirs.bundles,
      },
      contents: cache.contents,
      tasks: store,
      isSubmitting: () => false,
      daemonId: 'test',
      // Any size is too much: only what a build in progress uses may stay.
      policy: { outputs: {}, snapshots: {}, cache: { maxBytes: 1 }, images: {} },
      logger: pino({ level: 'silent' }),
    });
    const report = await collector.collect({ dryRun: false });
    const idleId = `bundle:${path.basename(bundleDirOf(idleBundle))}`;
    const reusedId = `bundle:${path.basename(bundleDirOf(reusedBundle))}`;
    assert.deepEqual(
      report.removed.filter((entry) => entry.id.startsWith('bundle:')).map((entry) => entry.id),
      [idleId],
    );
    assert.ok(
      report.kept.some((entry) => entry.id === reusedId && entry.why === 'used by a build in progress'),
      JSON.stringify(report),
    );
    assert.ok(existsSync(path.join(bundleDirOf(reusedBundle), 'bundle.mjs')));
    assert.ok(!existsSync(bundleDirOf(idleBundle)));
  });
});

import { randomBytes } from 'node:crypto';
import { renameSync, statSync } from 'node:fs';
import { lstat, readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { parse as parseToml } from 'smol-toml';
import { ValidationError } from '../core/errors.ts';
import type { ContentStore } from '../builders/content-store.ts';
import { isTerminal, type TaskRecord, type TaskState } from '../core/task.ts';
import type { ImageClient } from '../docker/container-engine.ts';
import { daemonLabel, labelFilter, planLabel, roleLabel } from '../docker/labels.ts';
import { diskUsage } from './disk-usage.ts';
import {
  homeKinds,
  planRemovals,
  type RemovalReason,
  type RetentionCandidate as Candidate,
  type RetentionKind,
  type RetentionPolicy,
} from './retention-plan.ts';

/** One entry the collector removed (or, in a dry run, would remove). */
export interface CollectedEntry {
  kind: RetentionKind;
  /** A run id (outputs), a task id (snapshots), `bundle:<hash>` (cache), an image id (images), or a file. */
  id: string;
  /** Its share of the disk: a file linked from n places counts 1/n in each (see disk-usage.ts). */
  bytes: number;
  /** ISO 8601: its last write or use. */
  lastUsed: string;
  reason: RemovalReason;
}

export interface RetentionReport {
  dryRun: boolean;
  at: string;
  removed: CollectedEntry[];
  /** Measured before and after (a dry run: the shares of what would go, an estimate when files are shared). */
  freedBytes: number;
  /** Entries past retention that were kept because a queued or running task needs them, and why. */
  kept: { kind: RetentionKind; id: string; why: string }[];
  failures: { kind: RetentionKind; id: string; message: string }[];
  /** What each kind holds afterwards (in a dry run: now, less what would go). */
  usage: Record<RetentionKind, { entries: number; bytes: number }>;
  /** Outputs, snapshots and build caches together, afterwards. */
  homeBytes: number;
  /** Of `homeBytes`, what queued, building and running tasks need (tasks keep arriving during a collection). */
  neededBytes: number;
}

export interface RetentionCollectorDeps {
  dirs: {
    outputs: string;
    /** Task snapshots, `<dir>/<task id>/`. */
    snapshots: string;
    /** exec:node's bundle cache, `<dir>/<hash>/`. */
    bundles: string;
    /** Plan archives being uploaded; one still there an hour later was left by a request that died. */
    uploads?: string;
  };
  /** The files bundles and snapshots share; its unreferenced files are removed each round. */
  contents?: Pick<ContentStore, 'root' | 'unreferenced'>;
  tasks: {
    list(filter: { state?: TaskState; limit: number }): Promise<TaskRecord[]>;
    states(ids: readonly string[]): Promise<(TaskState | undefined)[]>;
  };
  /** Whether a task's snapshot is being extracted right now (its record comes next). */
  isSubmitting: (taskId: string) => boolean;
  /** Plan images; left alone when absent or when the engine cannot be reached. */
  images?: Pick<ImageClient, 'listImages' | 'removeImage'>;
  /** Records of removed artifacts are forgotten, so a composition naming one is refused at submit. */
  artifacts?: { forget(id: string): Promise<void> };
  daemonId: string;
  policy: RetentionPolicy;
  logger: Logger;
  now?: () => Date;
}

/** What an unfinished task holds on to. */
interface Needs {
  tasks: Map<string, TaskState>;
  bundles: Map<string, string>;
  images: Map<string, string>;
  /** Plans being built now: their images may be reused at any moment. */
  buildingPlans: Set<string>;
  /** When the oldest build in progress began (ms), Infinity when none is. */
  buildsSinceMs: number;
}

const leftoverGraceMs = 3_600_000;
// A size limit can need more than one pass: a snapshot's file shared with a bundle frees its disk only once
// the bundle (and then the stored copy) goes too.
const maxPasses = 5;

/**
 * Removes what is past retention: run outputs, task snapshots, exec:node bundles (and the stored contents
 * nothing links to any more) and plan images, by age and by size, least recently used first; run by the
 * daemon every `TESTGROUND_GC_INTERVAL` and on request (`testground gc [--dry-run]`).
 *
 * Never removed, whatever the limits: what a queued, building or running task needs — its snapshot, its
 * outputs, the bundles and images it was built or told to start from, the cache entries and images a build
 * in progress may be reusing (used since the oldest build began; images of a plan being built), and a
 * snapshot being extracted. A bundle is checked and moved aside in one synchronous step, so a build in this
 * process marking it used (exec-node.ts) either comes first and keeps it, or finds it gone and rebuilds.
 */
export class RetentionCollector {
  private readonly deps: RetentionCollectorDeps;
  private readonly now: () => Date;
  private tail: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;

  constructor(deps: RetentionCollectorDeps) {
    this.deps = deps;
    this.now = deps.now ?? (() => new Date());
  }

  /** One collection; collections never overlap (a second waits for the first). */
  collect(options: { dryRun: boolean }): Promise<RetentionReport> {
    const next = this.tail.then(() => this.collectNow(options.dryRun));
    this.tail = next.catch(() => undefined);
    return next;
  }

  /**
   * `testground build purge`: removes the caches one builder keeps of one plan, whatever their age — exec:node's
   * bundles of the plan, the docker builders' plan images (labelled with the plan; docker:node and
   * docker:generic share them) — except what an unfinished task needs, as a collection would. Runs in turn
   * with collections.
   *
   * @throws ValidationError naming the builder when it keeps no caches this can remove.
   */
  purge(options: { builder: string; plan: string }): Promise<BuildPurgeReport> {
    const cache = purgeableCaches[options.builder];
    if (cache === undefined) {
      throw new ValidationError(
        `builder ${JSON.stringify(options.builder)} keeps no caches to purge; accepted: ${Object.keys(purgeableCaches).join(', ')}`,
        [{ path: 'builder', message: `expected one of ${Object.keys(purgeableCaches).join(', ')}` }],
      );
    }
    const next = this.tail.then(() => this.purgeNow(options, cache));
    this.tail = next.catch(() => undefined);
    return next;
  }

  private async purgeNow(
    options: { builder: string; plan: string },
    cache: 'bundles' | 'images',
  ): Promise<BuildPurgeReport> {
    const report: BuildPurgeReport = { ...options, removed: [], kept: [], failures: [], freedBytes: 0 };
    const needs = await this.needs();
    // Builders see the plan's name with "/" folded to "-" (BuildInput.planName); either spelling matches.
    const names = new Set([options.plan, options.plan.replace(/\//g, '-')]);
    const candidates: Candidate[] = [];
    if (cache === 'bundles') {
      for (const entry of await this.cacheCandidates(needs)) {
        if (!entry.id.startsWith('bundle:') || entry.path === undefined) continue;
        const name = await bundlePlanName(entry.path);
        if (name !== undefined && names.has(name)) candidates.push(entry);
      }
    } else {
      candidates.push(...(await this.imageCandidates(needs, report, names)));
    }
    for (const entry of candidates) {
      if (entry.neededBy !== undefined) {
        report.kept.push({ kind: entry.kind, id: entry.id, why: entry.neededBy });
        continue;
      }
      const removed = await this.remove(entry, needs, report);
      if (removed) {
        report.removed.push({ kind: removed.kind, id: removed.id, bytes: removed.bytes });
        report.freedBytes += removed.bytes;
      }
    }
    this.deps.logger.info(
      {
        builder: options.builder,
        plan: options.plan,
        removed: report.removed.length,
        freedBytes: report.freedBytes,
      },
      `build purge: removed ${report.removed.length} cache entries of plan ${options.plan} (${options.builder})`,
    );
    return report;
  }

  /** Collects every `intervalMs` until `stop()`; a failed round is logged and the next one still runs. */
  start(intervalMs: number, onReport?: (report: RetentionReport) => void): void {
    if (intervalMs <= 0 || this.timer) return;
    let inProgress = false;
    this.timer = setInterval(() => {
      // A collection longer than the interval is not queued behind again and again: that tick is skipped.
      if (inProgress) return;
      inProgress = true;
      this.collect({ dryRun: false })
        .then(
          (report) => {
            if (report.removed.length > 0 || report.failures.length > 0) {
              this.deps.logger.info(
                {
                  removed: report.removed.length,
                  freedBytes: report.freedBytes,
                  failures: report.failures,
                  homeBytes: report.homeBytes,
                },
                `retention: removed ${report.removed.length} entries, ${report.freedBytes} bytes`,
              );
            }
            onReport?.(report);
          },
          (error: unknown) => this.deps.logger.error({ err: error }, 'retention: collection failed'),
        )
        .finally(() => (inProgress = false));
    }, intervalMs);
    this.timer.unref();
  }

  /** Stops the periodic collection and waits for a round in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.tail;
  }

  private async collectNow(dryRun: boolean): Promise<RetentionReport> {
    const report: RetentionReport = {
      dryRun,
      at: this.now().toISOString(),
      removed: [],
      freedBytes: 0,
      kept: [],
      failures: [],
      usage: { outputs: empty(), snapshots: empty(), cache: empty(), images: empty() },
      homeBytes: 0,
      neededBytes: 0,
    };
    // An entry that could not be removed is not tried again in a later pass of the same collection.
    const failed = new Set<string>();
    let initialBytes: number | undefined;
    for (let pass = 1; ; pass += 1) {
      const needs = await this.needs();
      const candidates = (await this.candidates(needs, report)).map((entry) =>
        failed.has(`${entry.kind} ${entry.id}`) ? { ...entry, neededBy: 'could not be removed' } : entry,
      );
      const total = candidates.reduce((sum, entry) => sum + entry.bytes, 0);
      initialBytes ??= total;
      const { remove, keep } = planRemovals(candidates, this.deps.policy, this.now().getTime());
      report.kept = keep
        .filter((entry) => !failed.has(`${entry.kind} ${entry.id}`))
        .map((entry) => ({ kind: entry.kind, id: entry.id, why: entry.neededBy ?? '' }));
      if (dryRun || remove.length === 0 || pass > maxPasses) {
        // A collection reports what it measured after its last removal; a dry run, what it plans.
        report.usage = usageOf(dryRun ? candidates.filter((entry) => !remove.includes(entry)) : candidates);
        report.homeBytes = homeKinds.reduce((sum, kind) => sum + report.usage[kind].bytes, 0);
        report.neededBytes = candidates
          .filter((entry) => homeKinds.includes(entry.kind) && entry.neededBy !== undefined)
          .filter((entry) => !entry.layout && !entry.id.startsWith('content:'))
          .reduce((sum, entry) => sum + entry.bytes, 0);
        if (dryRun) {
          report.removed = remove.map((entry) => collected(entry));
          report.freedBytes = remove.reduce((sum, entry) => sum + entry.bytes, 0);
        } else {
          report.freedBytes = Math.max(0, Math.round(initialBytes - total));
        }
        return report;
      }
      for (const entry of remove) {
        const removed = await this.remove(entry, needs, report);
        if (removed) report.removed.push(removed);
        else failed.add(`${entry.kind} ${entry.id}`);
      }
    }
  }

  /** What the unfinished tasks hold on to. */
  private async needs(): Promise<Needs> {
    const unfinished = [
      ...(await this.deps.tasks.list({ state: 'queued', limit: 100_000 })),
      ...(await this.deps.tasks.list({ state: 'building', limit: 100_000 })),
      ...(await this.deps.tasks.list({ state: 'running', limit: 100_000 })),
    ];
    const needs: Needs = {
      tasks: new Map(),
      bundles: new Map(),
      images: new Map(),
      buildingPlans: new Set(),
      buildsSinceMs: Number.POSITIVE_INFINITY,
    };
    for (const task of unfinished) {
      needs.tasks.set(task.id, task.state);
      const why = `task ${task.id} is ${task.state}`;
      const artifacts = [
        ...task.artifacts.map((entry) => entry.artifact),
        ...task.resolved.runs.flatMap((run) => run.groups.flatMap((group) => group.artifact ?? [])),
      ];
      for (const artifact of artifacts) {
        if (artifact.startsWith('bundle:')) needs.bundles.set(artifact.slice('bundle:'.length), why);
        else needs.images.set(artifact, why);
      }
      if (task.state === 'building') {
        needs.buildingPlans.add(task.plan);
        const since = task.states.find((entry) => entry.state === 'building')?.at;
        const sinceMs = since === undefined ? 0 : Date.parse(since);
        needs.buildsSinceMs = Math.min(needs.buildsSinceMs, sinceMs);
      }
    }
    return needs;
  }

  private async candidates(needs: Needs, report: RetentionReport): Promise<Candidate[]> {
    const { dirs } = this.deps;
    const runDirs: { id: string; path: string }[] = [];
    // The directories entries live in take disk too: counted in the totals, never removed.
    const layout: Candidate[] = [];
    const addLayout = async (kind: RetentionKind, dir: string): Promise<void> => {
      const info = await lstat(dir).catch(() => undefined);
      if (info)
        layout.push({
          kind,
          id: dir,
          bytes: info.blocks * 512,
          lastUsedMs: 0,
          neededBy: 'layout',
          layout: true,
        });
    };
    await addLayout('outputs', dirs.outputs);
    await addLayout('snapshots', dirs.snapshots);
    await addLayout('cache', dirs.bundles);
    if (this.deps.contents) await addLayout('cache', this.deps.contents.root);
    for (const runner of await subdirectories(dirs.outputs)) {
      await addLayout('outputs', runner.path);
      for (const plan of await subdirectories(runner.path)) {
        await addLayout('outputs', plan.path);
        runDirs.push(...(await subdirectories(plan.path)));
      }
    }
    const snapshots = await subdirectories(dirs.snapshots);
    // Run ids are `<task id>` or `<task id>-<run name>`; task ids have no `-`.
    const taskIds = [
      ...new Set([...runDirs.map((dir) => dir.id.split('-')[0]!), ...snapshots.map((dir) => dir.id)]),
    ];
    const states = new Map(
      (await this.deps.tasks.states(taskIds)).map((state, index) => [taskIds[index]!, state]),
    );
    const taskNeed = (taskId: string): string | undefined => {
      const state = needs.tasks.get(taskId) ?? states.get(taskId);
      if (state !== undefined && !isTerminal(state)) return `task ${taskId} is ${state}`;
      if (state === undefined && this.deps.isSubmitting(taskId)) return `task ${taskId} is being submitted`;
      return undefined;
    };

    const candidates: Candidate[] = [...layout];
    for (const dir of runDirs) {
      const usage = await diskUsage(dir.path);
      const neededBy = taskNeed(dir.id.split('-')[0]!);
      candidates.push({
        kind: 'outputs',
        id: dir.id,
        path: dir.path,
        bytes: usage.bytes,
        lastUsedMs: usage.newestMtimeMs,
        ...(neededBy ? { neededBy } : {}),
      });
    }
    for (const dir of snapshots) {
      const usage = await diskUsage(dir.path);
      const neededBy = taskNeed(dir.id);
      candidates.push({
        kind: 'snapshots',
        id: dir.id,
        path: dir.path,
        bytes: usage.bytes,
        lastUsedMs: usage.newestMtimeMs,
        ...(neededBy ? { neededBy } : {}),
      });
    }
    candidates.push(...(await this.leftoverUploads()));
    candidates.push(...(await this.cacheCandidates(needs)));
    candidates.push(...(await this.imageCandidates(needs, report)));
    return candidates;
  }

  private async leftoverUploads(): Promise<Candidate[]> {
    const dir = this.deps.dirs.uploads;
    if (dir === undefined) return [];
    const now = this.now().getTime();
    const candidates: Candidate[] = [];
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const info = await lstat(path.join(dir, name)).catch(() => undefined);
      if (!info?.isFile() || now - info.mtimeMs <= leftoverGraceMs) continue;
      candidates.push({
        kind: 'snapshots',
        id: `upload:${name}`,
        path: path.join(dir, name),
        bytes: info.blocks * 512,
        lastUsedMs: info.mtimeMs,
        garbage: true,
      });
    }
    return candidates;
  }

  private async cacheCandidates(needs: Needs): Promise<Candidate[]> {
    const candidates: Candidate[] = [];
    const now = this.now().getTime();
    for (const dir of await subdirectories(this.deps.dirs.bundles)) {
      const info = await stat(dir.path).catch(() => undefined);
      if (!info) continue;
      const usage = await diskUsage(dir.path);
      // `<hash>.tmp-…` is a build in progress, `.trash-…` a removal that did not finish: leftovers once old.
      if (dir.id.includes('.tmp-') || dir.id.startsWith('.trash-')) {
        if (now - info.mtimeMs > leftoverGraceMs) {
          candidates.push({
            kind: 'cache',
            id: dir.id,
            path: dir.path,
            bytes: usage.bytes,
            lastUsedMs: info.mtimeMs,
            garbage: true,
          });
        }
        continue;
      }
      const neededBy =
        needs.bundles.get(dir.id) ??
        (info.mtimeMs >= needs.buildsSinceMs ? 'used by a build in progress' : undefined);
      candidates.push({
        kind: 'cache',
        id: `bundle:${dir.id}`,
        path: dir.path,
        bytes: usage.bytes,
        lastUsedMs: info.mtimeMs,
        ...(neededBy ? { neededBy } : {}),
      });
    }
    const { contents } = this.deps;
    if (contents) {
      const garbage = new Set((await contents.unreferenced()).map((entry) => entry.path));
      for (const name of await readdir(contents.root).catch(() => [] as string[])) {
        const file = path.join(contents.root, name);
        const usage = await diskUsage(file);
        // Stored content still linked from a bundle or a snapshot counts toward the cache; it goes with them.
        candidates.push({
          kind: 'cache',
          id: `content:${name}`,
          path: file,
          bytes: usage.bytes,
          lastUsedMs: usage.newestMtimeMs,
          ...(garbage.has(file) ? { garbage: true } : { neededBy: 'linked from a bundle or a snapshot' }),
        });
      }
    }
    return candidates;
  }

  /** Plan images of this daemon; with `plans`, only those labelled with one of them. */
  private async imageCandidates(
    needs: Needs,
    report: Pick<RetentionReport, 'failures'>,
    plans?: ReadonlySet<string>,
  ): Promise<Candidate[]> {
    const { images } = this.deps;
    if (!images) return [];
    let found;
    try {
      found = await images.listImages(
        labelFilter({ [roleLabel]: 'plan-image', [daemonLabel]: this.deps.daemonId }),
      );
      if (plans) found = found.filter((image) => plans.has(image.labels[planLabel] ?? ''));
    } catch (error) {
      // No engine on this host: no plan images to collect either.
      if ((error as { code?: string }).code === 'dependency_unavailable') return [];
      report.failures.push({
        kind: 'images',
        id: '*',
        message: `could not list plan images: ${(error as Error).message}`,
      });
      return [];
    }
    return found.map((image) => {
      const createdMs = image.created === undefined ? 0 : Date.parse(image.created);
      const plan = image.labels[planLabel];
      const neededBy =
        needs.images.get(image.id) ??
        (plan !== undefined && needs.buildingPlans.has(plan) ? `plan ${plan} is being built` : undefined) ??
        (createdMs >= needs.buildsSinceMs ? 'built by a build in progress' : undefined);
      return {
        kind: 'images',
        id: image.id,
        bytes: image.size ?? 0,
        lastUsedMs: createdMs,
        ...(neededBy ? { neededBy } : {}),
      };
    });
  }

  private async remove(
    entry: Candidate,
    needs: Needs,
    report: Pick<RetentionReport, 'kept' | 'failures'>,
  ): Promise<CollectedEntry | undefined> {
    try {
      if (entry.kind === 'images') {
        await this.deps.images?.removeImage(entry.id);
        await this.deps.artifacts?.forget(entry.id);
      } else if (entry.kind === 'cache' && entry.id.startsWith('bundle:')) {
        // Checked and moved aside in one synchronous step: see the class comment.
        const mtimeMs = statSync(entry.path!, { throwIfNoEntry: false })?.mtimeMs;
        if (mtimeMs === undefined) return undefined;
        if (mtimeMs > entry.lastUsedMs || mtimeMs >= needs.buildsSinceMs) {
          report.kept.push({ kind: entry.kind, id: entry.id, why: 'used by a build since it was measured' });
          return undefined;
        }
        const trash = path.join(path.dirname(entry.path!), `.trash-${randomBytes(4).toString('hex')}`);
        renameSync(entry.path!, trash);
        await this.deps.artifacts?.forget(entry.id);
        await rm(trash, { recursive: true, force: true });
      } else {
        await rm(entry.path!, { recursive: true, force: true });
      }
      return collected(entry);
    } catch (error) {
      report.failures.push({ kind: entry.kind, id: entry.id, message: (error as Error).message });
      return undefined;
    }
  }
}

function collected(entry: Candidate): CollectedEntry {
  return {
    kind: entry.kind,
    id: entry.id,
    bytes: entry.bytes,
    lastUsed: new Date(entry.lastUsedMs).toISOString(),
    reason: entry.reason ?? 'age',
  };
}

function empty(): { entries: number; bytes: number } {
  return { entries: 0, bytes: 0 };
}

function usageOf(entries: readonly Candidate[]): RetentionReport['usage'] {
  const usage: RetentionReport['usage'] = {
    outputs: empty(),
    snapshots: empty(),
    cache: empty(),
    images: empty(),
  };
  for (const entry of entries) {
    usage[entry.kind].bytes += entry.bytes;
    if (!entry.id.startsWith('content:') && !entry.layout) usage[entry.kind].entries += 1;
  }
  return usage;
}

/** What `build purge` can remove, by builder: exec:node's bundle cache, the docker builders' plan images. */
const purgeableCaches: Record<string, 'bundles' | 'images'> = {
  'exec:node': 'bundles',
  'docker:node': 'images',
  'docker:generic': 'images',
};

/** What `build purge` did: removed regardless of age, kept only what an unfinished task needs. */
export interface BuildPurgeReport {
  builder: string;
  plan: string;
  removed: { kind: RetentionKind; id: string; bytes: number }[];
  kept: { kind: RetentionKind; id: string; why: string }[];
  failures: { kind: RetentionKind; id: string; message: string }[];
  freedBytes: number;
}

/** The plan name in a bundle's copy of the manifest; undefined when it cannot be read. */
async function bundlePlanName(bundleDir: string): Promise<string | undefined> {
  try {
    const manifest = parseToml(await readFile(path.join(bundleDir, 'manifest.toml'), 'utf8')) as {
      name?: unknown;
    };
    return typeof manifest.name === 'string' ? manifest.name : undefined;
  } catch {
    return undefined;
  }
}

async function subdirectories(dir: string): Promise<{ id: string; path: string }[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => ({ id: entry.name, path: path.join(dir, entry.name) }));
}

import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Builder } from '../builders/builder.ts';
import type { Artifact } from '../core/artifact.ts';
import { stableStringify } from '../core/stable-stringify.ts';
import { decideRunOutcome, decideTaskOutcome } from '../core/outcome.ts';
import type { Runner } from '../runners/runner.ts';
import { RunnerError, TestgroundError } from '../core/errors.ts';
import { SingleFlight } from '../core/single-flight.ts';
import type { RunProgress } from '../core/run-progress.ts';
import { RunProgressTracker } from './run-progress-tracker.ts';
import type { LogBus } from './log-bus.ts';
import type { TaskLog } from '../core/task-log.ts';
import type { TaskStore } from './task-store.ts';
import { artifactId, artifactOf, type ArtifactStore } from './artifact-store.ts';
import { cancelRuns, failRuns, notRunAfterError } from './run-records.ts';
import { defaultMaxMetricPoints, summarizeRunMetrics } from './metrics-reader.ts';
import type { ResolvedGroup, ResolvedRun, RunOutcome, RunResult } from '../core/run.ts';
import {
  isRunEnded,
  type GroupArtifact,
  type RunRecord,
  type TaskRecord,
  type TaskState,
} from '../core/task.ts';

export interface TaskRunnerDeps {
  store: TaskStore;
  logBus: LogBus;
  builders: ReadonlyMap<string, Builder>;
  runners: ReadonlyMap<string, Runner>;
  /** Where builds are recorded, and prebuilt artifacts looked up and checked. */
  artifacts: Pick<ArtifactStore, 'record' | 'get' | 'exists'>;
  /** Scratch space; each run gets a directory that is removed when it ends. */
  tempRoot: string;
  daemonId: string;
  logger: Logger;
  now?: () => Date;
  /** How often a run's progress is looked at (and at most published); 1000 ms unless given. */
  progressIntervalMs?: number;
}

/** Why a task was stopped before it ended by itself. */
type StopReason = 'canceled' | 'shutdown' | 'redis-lost';

const canceledReason = 'canceled on request';
const shutdownReason = 'the daemon stopped during the run';

/** A task being carried: its record as read, its runs as they progress, and what its builds produced. */
interface Carried {
  task: TaskRecord;
  runs: RunRecord[];
  artifacts: GroupArtifact[];
  log: TaskLog;
  logger: Logger;
  signal: AbortSignal;
  /** The latest progress of each run that has started, as the record keeps it. */
  progress: RunProgress[];
}

/**
 * Carries one task from `queued` to its end: build every distinct (builder, build config, dependencies) once
 * for all its runs, run them one after another, and record an honest outcome for each run and for the task.
 * Build or infrastructure trouble ends a run as `error` and the runs after it as `canceled`; a plan that
 * did not succeed ends its run as `failure` and the next run goes ahead; a cancel ends the current run and
 * the rest as `canceled`. The task's outcome is the worst of its runs'.
 */
export class TaskRunner {
  private readonly deps: TaskRunnerDeps;
  private readonly active = new Map<string, AbortController>();
  private readonly now: () => Date;
  private redisLossReason = 'Redis lost its data during the run';

  constructor(deps: TaskRunnerDeps) {
    this.deps = deps;
    this.now = deps.now ?? (() => new Date());
  }

  /** Asks a task this daemon is working on to stop; returns false when it is not running here. */
  stop(taskId: string, reason: StopReason): boolean {
    const controller = this.active.get(taskId);
    if (!controller) return false;
    controller.abort(reason);
    return true;
  }

  /** Stops every task in progress (daemon shutdown); they end as `error`, which is what happened. */
  stopAll(): void {
    for (const controller of this.active.values()) controller.abort('shutdown' satisfies StopReason);
  }

  /**
   * Redis came back without the data it held: every task in progress here ends as `error` with `reason`,
   * its record written anew from what this daemon holds, since the one in Redis is gone. Returns their ids.
   */
  endAllAfterRedisLoss(reason: string): string[] {
    this.redisLossReason = reason;
    for (const controller of this.active.values()) controller.abort('redis-lost' satisfies StopReason);
    return [...this.active.keys()];
  }

  /**
   * Ends tasks a previous process of this daemon left `building` or `running` (it was killed): nobody
   * is working on them any more, so they would otherwise stay "running" for ever.
   */
  async recoverInterrupted(): Promise<string[]> {
    const recovered: string[] = [];
    for (const task of await this.deps.store.listActive()) {
      if (task.daemonId !== this.deps.daemonId || this.active.has(task.id)) continue;
      if (await this.endAsInterrupted(task)) recovered.push(task.id);
    }
    return recovered;
  }

  async process(taskId: string): Promise<void> {
    const { store } = this.deps;
    const task = await store.get(taskId);
    if (!task) {
      this.deps.logger.warn({ taskId }, 'a queued job names a task that does not exist; dropping it');
      return;
    }
    if (task.state === 'building' || task.state === 'running') {
      // BullMQ hands a job out again when the worker that had it died mid-run, and also when its lock
      // could not be renewed (Redis was away for a while): a task still going here must be left alone.
      if (this.active.has(taskId)) return;
      await this.endAsInterrupted(task);
      return;
    }
    if (task.state !== 'queued' || task.cancelRequested) {
      if (task.state === 'queued') await this.finishCanceledBeforeStart(task);
      return;
    }
    // Registered before the transition: a cancel that loses the race for `queued` must find it here.
    const controller = new AbortController();
    this.active.set(taskId, controller);
    if (!(await store.transition(taskId, ['queued'], 'building', { daemonId: this.deps.daemonId }))) {
      this.active.delete(taskId);
      return;
    }
    const logger = this.deps.logger.child({ taskId });
    const carried: Carried = {
      task,
      runs: task.runs.map((run) => ({ ...run })),
      artifacts: [],
      log: this.deps.logBus.taskLog(taskId, (error) =>
        logger.warn({ err: error }, 'could not append to the task log'),
      ),
      logger,
      signal: controller.signal,
      progress: [],
    };
    try {
      await this.carry(carried);
    } catch (error) {
      if (carried.signal.aborted) return await this.finishStopped(carried);
      const message = this.explain(error, carried);
      if (task.type === 'build')
        return await this.finish(carried, 'complete', { outcome: 'error', error: message });
      carried.runs = failRuns(carried.runs, message, this.now());
      await this.finishRuns(carried);
    } finally {
      this.active.delete(taskId);
    }
  }

  /** Builds, then runs each run; an error thrown out of here ends the task as `error`. */
  private async carry(carried: Carried): Promise<void> {
    const { task, signal } = carried;
    await this.state(task.id, 'building');
    // A build that fails throws out of here: the task's first run carries the error, the others do not run.
    const built = await this.buildAll(carried);
    if (signal.aborted) return this.finishStopped(carried);
    if (task.type === 'build') return this.finish(carried, 'complete', { outcome: 'success' });

    if (!(await this.deps.store.transition(task.id, ['building'], 'running'))) return;
    await this.state(task.id, 'running');
    for (const run of carried.runs) {
      if (signal.aborted) break;
      const failed = await this.runOne(carried, run, built);
      if (failed !== undefined) {
        carried.runs = cancelRuns(carried.runs, notRunAfterError(run.name, failed), this.now());
        break;
      }
    }
    if (signal.aborted) return this.finishStopped(carried);
    return this.finishRuns(carried);
  }

  /**
   * Builds each distinct (builder, build config, dependencies) the task's runs need, once: runs share the
   * composition's groups, so a group's build serves every run that uses it. Groups that name a prebuilt
   * artifact are not built. Every artifact is recorded, so later tasks can start from it.
   */
  private async buildAll(carried: Carried): Promise<Map<string, Artifact>> {
    const { task, log, signal } = carried;
    // Kept for the whole task: groups are built one after another, so a later group must find the result.
    const builds = new SingleFlight<Artifact>({ retainSuccess: true });
    const built = new Map<string, Artifact>();
    for (const run of this.runsToCarry(carried)) {
      for (const group of run.groups) {
        if (group.artifact !== undefined) {
          const record = await this.deps.artifacts.get(group.artifact);
          this.noteArtifact(carried, {
            group: group.id,
            builder: record?.builder ?? group.builder,
            artifact: group.artifact,
          });
          continue;
        }
        const builder = this.deps.builders.get(group.builder);
        if (!builder) throw new Error(`builder ${group.builder} is not available on this daemon`);
        const key = buildKey(group);
        const artifact = await builds.run(key, async () => {
          log.info(`building group ${group.id} with ${group.builder}`);
          const made = await builder.build({
            planDir: task.planDir,
            planName: task.plan,
            buildConfig: group.buildConfig,
            dependencies: group.dependencies,
            log,
            signal,
          });
          const record = await this.deps.artifacts.record(made, {
            builder: group.builder,
            plan: task.plan,
            task: task.id,
          });
          log.info(`artifact ${record.id} (${group.builder})`);
          return made;
        });
        built.set(key, artifact);
        this.noteArtifact(carried, {
          group: group.id,
          builder: group.builder,
          artifact: artifactId(artifact),
        });
      }
    }
    await this.deps.store.progress(task.id, ['building'], { artifacts: carried.artifacts });
    return built;
  }

  /** The resolved runs this task carries out: the picked ones of a run task, every one of a build task. */
  private runsToCarry(carried: Carried): ResolvedRun[] {
    const { task } = carried;
    if (task.type === 'build') return task.resolved.runs;
    return carried.runs.map((run) => resolvedRunOf(task, run));
  }

  private noteArtifact(carried: Carried, entry: GroupArtifact): void {
    const known = carried.artifacts.some(
      (other) => other.group === entry.group && other.artifact === entry.artifact,
    );
    if (!known) carried.artifacts.push(entry);
  }

  /**
   * Runs one run to its end and records it. Returns the message of an error that must end the task (the
   * runner or the infrastructure broke), or undefined when the next run may go ahead.
   */
  private async runOne(
    carried: Carried,
    run: RunRecord,
    built: ReadonlyMap<string, Artifact>,
  ): Promise<string | undefined> {
    const { task, log, signal } = carried;
    const resolved = resolvedRunOf(task, run);
    Object.assign(run, {
      state: 'running',
      startedAt: this.now().toISOString(),
    } satisfies Partial<RunRecord>);
    await this.deps.store.progress(task.id, ['running'], { runs: carried.runs });
    log.info(`run ${run.name} (${run.id}) started: ${describeInstances(run.instances)}`);
    const tempDir = path.join(this.deps.tempRoot, run.id);
    const tracker = this.trackProgress(carried, run, resolved);
    let failed: string | undefined;
    try {
      const runner = this.deps.runners.get(task.runner);
      if (!runner) throw new Error(`runner ${task.runner} is not available on this daemon`);
      const artifacts = await this.artifactsFor(resolved, built);
      await mkdir(run.outputsDir, { recursive: true });
      await mkdir(tempDir, { recursive: true });
      const output = await runner.run({
        runId: run.id,
        run: resolved,
        artifacts,
        outputsDir: run.outputsDir,
        tempDir,
        startTime: this.now(),
        log: tracker.wrap(log),
        signal,
        progress: tracker,
      });
      await tracker.stop();
      const metrics = await this.runMetrics(carried, run);
      if (signal.aborted) {
        failed = this.endStopped(carried, run, output.instances, metrics);
      } else {
        const decided = decideRunOutcome(output.instances);
        const result: RunResult = {
          outcome: decided.outcome,
          reason: decided.reason,
          groups: decided.groups,
          instances: output.instances,
          ...(metrics === undefined ? {} : { metrics }),
        };
        this.endRun(run, decided.outcome, decided.outcome === 'success' ? undefined : decided.reason, result);
      }
    } catch (error) {
      if (signal.aborted) {
        failed = this.endStopped(carried, run, []);
      } else {
        failed = this.explain(error, carried);
        this.endRun(run, 'error', failed);
      }
    } finally {
      await tracker.stop();
      await rm(tempDir, { recursive: true, force: true });
    }
    log.info(
      `run ${run.name} (${run.id}) ended: ${run.outcome ?? run.state}${run.error ? ` (${run.error})` : ''}`,
    );
    await this.deps.store.progress(task.id, ['running'], { runs: carried.runs });
    return failed;
  }

  /**
   * Follows the run's progress while it runs: each change goes to the task's log as a `progress` line and
   * onto the record. Neither may fail the run: a write that fails is logged and the next change tries again.
   */
  private trackProgress(carried: Carried, run: RunRecord, resolved: ResolvedRun): RunProgressTracker {
    const { task } = carried;
    const tracker = new RunProgressTracker({
      runId: run.id,
      scope: { runId: run.id, plan: resolved.plan, testCase: resolved.testCase },
      groups: resolved.groups.map((group) => ({ id: group.id, instances: group.instances })),
      ...(this.deps.progressIntervalMs === undefined ? {} : { intervalMs: this.deps.progressIntervalMs }),
      now: this.now,
      publish: async (progress) => {
        const index = carried.progress.findIndex((other) => other.run === progress.run);
        if (index === -1) carried.progress.push(progress);
        else carried.progress[index] = progress;
        const { at, ...entry } = progress;
        try {
          await this.deps.logBus.append(task.id, { kind: 'progress', ts: at, ...entry });
          await this.deps.store.progress(task.id, ['running'], { progress: carried.progress });
        } catch (error) {
          carried.logger.warn({ err: error }, 'could not record the progress of a run');
        }
      },
    });
    tracker.start();
    return tracker;
  }

  /** The artifact of each group of the run: built by this task, or prebuilt and still where it was left. */
  private async artifactsFor(
    run: ResolvedRun,
    built: ReadonlyMap<string, Artifact>,
  ): Promise<Map<string, Artifact>> {
    const artifacts = new Map<string, Artifact>();
    for (const group of run.groups) {
      if (group.artifact === undefined) {
        const artifact = built.get(buildKey(group));
        if (!artifact) throw new Error(`group ${group.id} of run ${run.id} was not built`);
        artifacts.set(group.id, artifact);
        continue;
      }
      const record = await this.deps.artifacts.get(group.artifact);
      if (!record) {
        throw new RunnerError(
          `group ${group.id}: artifact ${group.artifact} is no longer known to this daemon; build it again ` +
            `("testground build") or leave run.artifact unset`,
        );
      }
      if (!(await this.deps.artifacts.exists(record))) {
        const where =
          record.kind === 'image'
            ? 'the Docker engine has no such image'
            : "its bundle is gone from the daemon's cache";
        throw new RunnerError(
          `group ${group.id}: artifact ${group.artifact} no longer exists (${where}); build it again ` +
            `("testground build") or leave run.artifact unset`,
        );
      }
      artifacts.set(group.id, artifactOf(record));
    }
    return artifacts;
  }

  private endRun(run: RunRecord, outcome: RunOutcome, error?: string, result?: RunResult): void {
    const state = outcome === 'canceled' ? 'canceled' : 'complete';
    Object.assign(run, {
      state,
      outcome,
      ...(error === undefined ? {} : { error }),
      ...(result === undefined ? {} : { result }),
      endedAt: this.now().toISOString(),
    } satisfies Partial<RunRecord>);
  }

  /**
   * What the run's instances recorded in metrics.out, summarised. A summary that cannot be made is said in
   * the log and left out: the metrics are a view of the run, never a reason for its outcome.
   */
  private async runMetrics(carried: Carried, run: RunRecord): Promise<RunResult['metrics']> {
    try {
      const { summary, dropped } = await summarizeRunMetrics(run.outputsDir);
      if (dropped > 0) {
        carried.log.warn(
          `run ${run.name} (${run.id}): ${dropped} metric points past the first ${defaultMaxMetricPoints} were left out of its summary`,
        );
      }
      return summary;
    } catch (error) {
      carried.log.warn(
        `run ${run.name} (${run.id}): its metrics could not be summarised: ${describeFailure(error)}`,
      );
      return undefined;
    }
  }

  /** Ends the run a stop interrupted; returns the error that ends the task when the daemon is stopping. */
  private endStopped(
    carried: Carried,
    run: RunRecord,
    instances: RunResult['instances'],
    metrics?: RunResult['metrics'],
  ): string | undefined {
    const stopReason = carried.signal.reason as StopReason;
    if (stopReason === 'shutdown' || stopReason === 'redis-lost') {
      const reason = stopReason === 'shutdown' ? shutdownReason : this.redisLossReason;
      this.endRun(run, 'error', reason);
      return reason;
    }
    const decided = decideRunOutcome(instances);
    this.endRun(run, 'canceled', canceledReason, {
      outcome: 'canceled',
      reason: canceledReason,
      groups: decided.groups,
      instances,
      ...(metrics === undefined ? {} : { metrics }),
    });
    return undefined;
  }

  /**
   * Explains an error in the task's words: our own errors as they are; anything else (a bug of ours, or
   * the host's trouble such as EACCES or ENOSPC) is logged with its stack, since only that explains it.
   */
  private explain(error: unknown, carried: Carried): string {
    const message = describeFailure(error);
    if (!(error instanceof TestgroundError))
      carried.logger.error({ err: error }, 'task failed with an unexpected error');
    carried.log.error(message);
    return message;
  }

  private async state(taskId: string, state: TaskState): Promise<void> {
    await this.deps.logBus.append(taskId, { kind: 'state', ts: this.now().toISOString(), state });
  }

  /** A stop: a cancel ends every run not ended as canceled; a shutdown is an error of the run in progress. */
  private async finishStopped(carried: Carried): Promise<void> {
    const stopReason = carried.signal.reason as StopReason;
    const shutdown = stopReason === 'shutdown' || stopReason === 'redis-lost';
    const errorReason = stopReason === 'redis-lost' ? this.redisLossReason : shutdownReason;
    if (carried.task.type === 'build') {
      return shutdown
        ? this.finish(carried, 'complete', { outcome: 'error', error: errorReason })
        : this.finish(carried, 'canceled', { outcome: 'canceled', error: canceledReason });
    }
    carried.runs = shutdown
      ? failRuns(carried.runs, errorReason, this.now())
      : cancelRuns(carried.runs, canceledReason, this.now());
    return this.finishRuns(carried);
  }

  /** The task's outcome is the worst of its runs'. */
  private finishRuns(carried: Carried): Promise<void> {
    const decided = decideTaskOutcome(carried.runs);
    return this.finish(carried, decided.outcome === 'canceled' ? 'canceled' : 'complete', decided);
  }

  private async finish(
    carried: Carried,
    state: 'complete' | 'canceled',
    decided: { outcome: RunOutcome; error?: string },
  ): Promise<void> {
    const { task } = carried;
    const patch = {
      outcome: decided.outcome,
      ...(decided.error === undefined ? {} : { error: decided.error }),
      runs: carried.runs,
      artifacts: carried.artifacts,
    };
    let applied = await this.deps.store.transition(task.id, ['building', 'running'], state, patch);
    if (!applied && (carried.signal.reason as StopReason) === 'redis-lost')
      applied = await this.deps.store.restoreEnded(task, state, patch);
    if (applied) {
      await this.deps.logBus.end(task.id, {
        state,
        outcome: decided.outcome,
        ...(decided.error === undefined ? {} : { error: decided.error }),
      });
    }
  }

  private async finishCanceledBeforeStart(task: TaskRecord): Promise<void> {
    const reason = 'canceled before it started';
    const applied = await this.deps.store.transition(task.id, ['queued'], 'canceled', {
      outcome: 'canceled',
      error: reason,
      runs: cancelRuns(task.runs, reason, this.now()),
    });
    if (applied)
      await this.deps.logBus.end(task.id, { state: 'canceled', outcome: 'canceled', error: reason });
  }

  private async endAsInterrupted(task: TaskRecord): Promise<boolean> {
    const message = 'daemon restarted during the run';
    for (const run of task.runs.filter((candidate) => !isRunEnded(candidate.state))) {
      const tempDir = path.join(this.deps.tempRoot, run.id);
      try {
        await this.deps.runners.get(task.runner)?.cleanupInterrupted(run.id, tempDir);
      } catch (error) {
        this.deps.logger.error(
          { err: error, taskId: task.id, runId: run.id },
          'could not clean up after an interrupted run',
        );
      }
      // One undeletable leftover must not stop the daemon from starting (nor the other runs' recovery).
      await rm(tempDir, { recursive: true, force: true }).catch((error: unknown) =>
        this.deps.logger.error(
          { err: error, taskId: task.id, runId: run.id },
          `could not remove ${tempDir} of an interrupted run; remove it by hand`,
        ),
      );
    }
    const runs = failRuns(task.runs, message, this.now());
    const decided =
      task.type === 'build' ? { outcome: 'error' as const, error: message } : decideTaskOutcome(runs);
    const applied = await this.deps.store.transition(task.id, ['building', 'running'], 'complete', {
      outcome: decided.outcome,
      ...(decided.error === undefined ? {} : { error: decided.error }),
      runs,
    });
    if (applied) {
      await this.deps.logBus.end(task.id, {
        state: 'complete',
        outcome: decided.outcome,
        ...(decided.error === undefined ? {} : { error: decided.error }),
      });
    }
    return applied;
  }
}

/** Two groups with the same builder, build config and dependencies (of the one plan of a task) build the same. */
function buildKey(group: ResolvedGroup): string {
  return `${group.builder}\0${stableStringify(group.buildConfig)}\0${stableStringify(group.dependencies)}`;
}

function resolvedRunOf(task: TaskRecord, run: RunRecord): ResolvedRun {
  const resolved = task.resolved.runs.find((candidate) => candidate.id === run.name);
  if (!resolved) throw new Error(`task ${task.id} has no resolved run named ${run.name}`);
  return resolved;
}

function describeInstances(count: number): string {
  return `${count} instance${count === 1 ? '' : 's'}`;
}

/** The task's `error` text: our own errors as they are, anything else marked as the daemon's or host's trouble. */
function describeFailure(error: unknown): string {
  if (error instanceof TestgroundError) return error.message;
  const message = error instanceof Error ? error.message : String(error);
  return `internal error: ${message}`;
}

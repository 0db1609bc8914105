import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Builder } from '../builders/builder.ts';
import type { Artifact } from '../core/artifact.ts';
import { stableStringify } from '../core/stable-stringify.ts';
import { decideRunOutcome } from '../core/outcome.ts';
import type { Runner } from '../runners/runner.ts';
import { TestgroundError } from '../core/errors.ts';
import { SingleFlight } from '../core/single-flight.ts';
import type { LogBus } from './log-bus.ts';
import type { TaskLog } from '../core/task-log.ts';
import type { TaskStore } from './task-store.ts';
import type { RunResult } from '../core/run.ts';
import type { TaskRecord, TaskState } from '../core/task.ts';

export interface TaskRunnerDeps {
  store: TaskStore;
  logBus: LogBus;
  builders: ReadonlyMap<string, Builder>;
  runners: ReadonlyMap<string, Runner>;
  /** Scratch space; each run gets a directory that is removed when it ends. */
  tempRoot: string;
  daemonId: string;
  logger: Logger;
  now?: () => Date;
}

/** Why a run was stopped before it ended by itself. */
type StopReason = 'canceled' | 'shutdown';

/**
 * Carries one task from `queued` to its end: build every distinct (builder, build config) once, run,
 * and record an honest outcome. Build or infrastructure trouble ends as `error`, a plan that did not
 * succeed as `failure`, a cancel as `canceled`.
 */
export class TaskRunner {
  private readonly deps: TaskRunnerDeps;
  private readonly active = new Map<string, AbortController>();
  private readonly now: () => Date;

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

  /** Stops every run in progress (daemon shutdown); they end as `error`, which is what happened. */
  stopAll(): void {
    for (const controller of this.active.values()) controller.abort('shutdown' satisfies StopReason);
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
      // could not be renewed (Redis was away for a while): a run still going here must be left alone.
      if (this.active.has(taskId)) return;
      await this.endAsInterrupted(task);
      return;
    }
    if (task.state !== 'queued' || task.cancelRequested) {
      if (task.state === 'queued') await this.finishCanceled(task.id, 'canceled before it started');
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
    const log = this.deps.logBus.taskLog(taskId, (error) =>
      logger.warn({ err: error }, 'could not append to the task log'),
    );
    const tempDir = path.join(this.deps.tempRoot, taskId);
    try {
      await this.state(taskId, 'building');
      const artifacts = await this.buildGroups(task, log, controller.signal);
      if (controller.signal.aborted)
        return await this.finishStopped(task, controller.signal.reason as StopReason);
      if (!(await store.transition(taskId, ['building'], 'running'))) return;
      await this.state(taskId, 'running');
      const runner = this.deps.runners.get(task.runner);
      if (!runner) throw new Error(`runner ${task.runner} is not available on this daemon`);
      await mkdir(task.outputsDir, { recursive: true });
      await mkdir(tempDir, { recursive: true });
      const output = await runner.run({
        runId: task.runId,
        run: task.resolved,
        artifacts,
        outputsDir: task.outputsDir,
        tempDir,
        startTime: this.now(),
        log,
        signal: controller.signal,
      });
      if (controller.signal.aborted)
        return await this.finishStopped(task, controller.signal.reason as StopReason, output.instances);
      const decided = decideRunOutcome(output.instances);
      const result: RunResult = {
        outcome: decided.outcome,
        reason: decided.reason,
        groups: decided.groups,
        instances: output.instances,
      };
      const finalState = decided.outcome === 'canceled' ? 'canceled' : 'complete';
      if (
        await store.transition(taskId, ['running'], finalState, {
          outcome: decided.outcome,
          result,
          ...(decided.outcome === 'success' ? {} : { error: decided.reason }),
        })
      ) {
        await this.deps.logBus.end(taskId, {
          state: finalState,
          outcome: decided.outcome,
          ...(decided.outcome === 'success' ? {} : { error: decided.reason }),
        });
      }
    } catch (error) {
      if (controller.signal.aborted)
        return await this.finishStopped(task, controller.signal.reason as StopReason);
      const message = describeFailure(error);
      // Only our own errors explain themselves; anything else (a bug of ours, or the host's trouble such as
      // EACCES or ENOSPC) needs its stack in the daemon's log to be understood.
      if (!(error instanceof TestgroundError))
        logger.error({ err: error }, 'task failed with an unexpected error');
      log.error(message);
      await this.finishError(taskId, message);
    } finally {
      this.active.delete(taskId);
      await rm(tempDir, { recursive: true, force: true });
    }
  }

  /** Builds each distinct (builder, build config) of the task once; groups that share one share its artifact. */
  private async buildGroups(
    task: TaskRecord,
    log: TaskLog,
    signal: AbortSignal,
  ): Promise<Map<string, Artifact>> {
    // Kept for the whole task: groups are built one after another, so a later group must find the result.
    const builds = new SingleFlight<Artifact>({ retainSuccess: true });
    const artifacts = new Map<string, Artifact>();
    for (const group of task.resolved.groups) {
      const builder = this.deps.builders.get(group.builder);
      if (!builder) throw new Error(`builder ${group.builder} is not available on this daemon`);
      const key = `${group.builder}\0${stableStringify(group.buildConfig)}\0${stableStringify(group.dependencies)}`;
      const artifact = await builds.run(key, () => {
        log.info(`building group ${group.id} with ${group.builder}`);
        return builder.build({
          planDir: task.planDir,
          planName: task.plan,
          buildConfig: group.buildConfig,
          dependencies: group.dependencies,
          log,
          signal,
        });
      });
      artifacts.set(group.id, artifact);
    }
    return artifacts;
  }

  private async state(taskId: string, state: TaskState): Promise<void> {
    await this.deps.logBus.append(taskId, { kind: 'state', ts: this.now().toISOString(), state });
  }

  private async finishStopped(
    task: TaskRecord,
    reason: StopReason,
    instances: RunResult['instances'] = [],
  ): Promise<void> {
    if (reason === 'shutdown') return this.finishError(task.id, 'the daemon stopped during the run');
    const decided = decideRunOutcome(instances);
    await this.finishCanceled(task.id, 'canceled on request', {
      outcome: 'canceled',
      reason: 'canceled on request',
      groups: decided.groups,
      instances,
    });
  }

  private async finishCanceled(taskId: string, reason: string, result?: RunResult): Promise<void> {
    const applied = await this.deps.store.transition(taskId, ['queued', 'building', 'running'], 'canceled', {
      outcome: 'canceled',
      error: reason,
      ...(result ? { result } : {}),
    });
    if (applied)
      await this.deps.logBus.end(taskId, { state: 'canceled', outcome: 'canceled', error: reason });
  }

  private async finishError(taskId: string, message: string): Promise<void> {
    if (
      await this.deps.store.transition(taskId, ['building', 'running'], 'complete', {
        outcome: 'error',
        error: message,
      })
    ) {
      await this.deps.logBus.end(taskId, { state: 'complete', outcome: 'error', error: message });
    }
  }

  private async endAsInterrupted(task: TaskRecord): Promise<boolean> {
    const message = 'daemon restarted during the run';
    const tempDir = path.join(this.deps.tempRoot, task.id);
    try {
      await this.deps.runners.get(task.runner)?.cleanupInterrupted(task.runId, tempDir);
    } catch (error) {
      this.deps.logger.error({ err: error, taskId: task.id }, 'could not clean up after an interrupted run');
    }
    await rm(tempDir, { recursive: true, force: true });
    const applied = await this.deps.store.transition(task.id, ['building', 'running'], 'complete', {
      outcome: 'error',
      error: message,
    });
    if (applied) await this.deps.logBus.end(task.id, { state: 'complete', outcome: 'error', error: message });
    return applied;
  }
}

/** The task's `error` text: our own errors as they are, anything else marked as the daemon's or host's trouble. */
function describeFailure(error: unknown): string {
  if (error instanceof TestgroundError) return error.message;
  const message = error instanceof Error ? error.message : String(error);
  return `internal error: ${message}`;
}

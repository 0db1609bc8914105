import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { parseComposition } from '../plan/composition.ts';
import type { Components } from '../plan/check-config.ts';
import { resolveComposition } from '../plan/resolve-composition.ts';
import type { TaskRunner } from './task-runner.ts';
import { ConflictError, NotFoundError, ValidationError } from '../core/errors.ts';
import type { LogBus } from './log-bus.ts';
import { parseManifest } from '../plan/manifest.ts';
import type { OutputsStore } from './outputs-store.ts';
import { extractPlanArchive } from '../plan/plan-archive.ts';
import { type TaskStore } from './task-store.ts';
import type { TaskQueue } from './task-queue.ts';
import { isTerminal, type TaskRecord } from '../core/task.ts';

export interface TaskServiceDeps {
  store: TaskStore;
  queue: Pick<TaskQueue, 'enqueue' | 'removeWaiting'>;
  logBus: LogBus;
  /** Stops a task this daemon is building or running. */
  taskRunner: Pick<TaskRunner, 'stop'>;
  outputs: OutputsStore;
  /** Where each task's plan snapshot is extracted: `<plansRoot>/<task id>/`. */
  plansRoot: string;
  /** This daemon's builders and runners, with the config keys each understands. */
  known: Components;
  archiveLimits: { maxBytes: number; maxEntries: number };
  logger: Logger;
  now?: () => Date;
}

export interface RunSubmission {
  compositionText: string;
  archivePath: string;
  createdBy: string;
}

/** What the API asks of the daemon: validate and queue runs, cancel tasks. */
export class TaskService {
  private readonly deps: TaskServiceDeps;
  private readonly now: () => Date;

  constructor(deps: TaskServiceDeps) {
    this.deps = deps;
    this.now = deps.now ?? (() => new Date());
  }

  /** Sortable by creation time, short enough to type, random enough never to collide in practice. */
  newTaskId(): string {
    return this.now().getTime().toString(36).padStart(9, '0') + randomBytes(3).toString('hex');
  }

  async submitRun(submission: RunSubmission): Promise<TaskRecord> {
    const composition = parseComposition(submission.compositionText);
    const id = this.newTaskId();
    const extractTo = path.join(this.deps.plansRoot, id);
    try {
      const { planDir } = await extractPlanArchive(
        submission.archivePath,
        extractTo,
        this.deps.archiveLimits,
      );
      const manifestText = await readFile(path.join(planDir, 'manifest.toml'), 'utf8');
      const manifest = parseManifest(manifestText);
      const { task: resolvedTask } = resolveComposition(composition, manifest, this.deps.known);
      // Several runs per task come with issue 7's task model; until then a task carries its first run.
      const resolved = resolvedTask.runs[0]!;
      const record = await this.deps.store.create({
        id,
        plan: resolved.plan,
        testCase: resolved.testCase,
        builder: resolved.builder,
        runner: resolved.runner,
        instances: resolved.totalInstances,
        createdBy: submission.createdBy,
        composition,
        resolved,
        planDir,
        outputsDir: this.deps.outputs.runDir(resolved.runner, resolved.plan, id),
      });
      await this.deps.logBus.append(id, { kind: 'state', ts: this.now().toISOString(), state: 'queued' });
      await this.deps.queue.enqueue(id);
      this.deps.logger.info(
        { taskId: id, plan: resolved.plan, testCase: resolved.testCase, instances: resolved.totalInstances },
        'run queued',
      );
      return record;
    } catch (error) {
      await rm(extractTo, { recursive: true, force: true });
      throw error;
    }
  }

  async get(id: string): Promise<TaskRecord> {
    assertTaskId(id);
    const task = await this.deps.store.get(id);
    if (!task)
      throw new NotFoundError(`no task with id ${JSON.stringify(id)}; list tasks with GET /api/v1/tasks`);
    return task;
  }

  /** Cancels a queued task at once, or stops a running one; a finished task is a conflict. */
  async cancel(id: string): Promise<TaskRecord> {
    const task = await this.get(id);
    if (isTerminal(task.state)) {
      throw new ConflictError(
        `task ${id} already ended (${task.state}, outcome ${task.outcome ?? 'none'}); nothing to cancel`,
      );
    }
    await this.deps.store.requestCancel(id);
    const reason = 'canceled on request';
    if (
      await this.deps.store.transition(id, ['queued'], 'canceled', { outcome: 'canceled', error: reason })
    ) {
      await this.deps.queue.removeWaiting(id);
      await this.deps.logBus.end(id, { state: 'canceled', outcome: 'canceled', error: reason });
    } else {
      this.deps.taskRunner.stop(id, 'canceled');
    }
    return this.get(id);
  }
}

function assertTaskId(id: string): void {
  if (!/^[a-z0-9]{1,64}$/.test(id)) {
    throw new ValidationError(
      `task id ${JSON.stringify(id)} is not valid: ids are lower-case letters and digits`,
      [{ path: 'id', message: `${JSON.stringify(id)} is not a task id` }],
    );
  }
}

import { randomBytes } from 'node:crypto';
import { readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { parseComposition, type Composition } from '../plan/composition.ts';
import type { Components } from '../plan/check-config.ts';
import { resolveComposition, type ResolvedComposition } from '../plan/resolve-composition.ts';
import type { Manifest } from '../plan/manifest.ts';
import type { TaskRunner } from './task-runner.ts';
import type { ArtifactStore } from './artifact-store.ts';
import { ConflictError, NotFoundError, ValidationError, type ProblemDetail } from '../core/errors.ts';
import type { ResolvedTask } from '../core/run.ts';
import type { LogBus } from './log-bus.ts';
import { parseManifest } from '../plan/manifest.ts';
import type { OutputsStore } from './outputs-store.ts';
import { extractPlanArchive } from '../plan/plan-archive.ts';
import type { NewRun, TaskStore } from './task-store.ts';
import type { TaskQueue } from './task-queue.ts';
import { isTerminal, type TaskMetadata, type TaskRecord, type TaskType } from '../core/task.ts';
import { cancelRuns } from './run-records.ts';
import { quotaUser, type Admission } from './admission.ts';

export interface TaskServiceDeps {
  store: TaskStore;
  queue: Pick<TaskQueue, 'enqueue' | 'removeWaiting'>;
  logBus: LogBus;
  /** Stops a task this daemon is building or running. */
  taskRunner: Pick<TaskRunner, 'stop'>;
  outputs: OutputsStore;
  /** Prebuilt artifacts a composition may name (`run.artifact`); checked at submit. */
  artifacts: Pick<ArtifactStore, 'get'>;
  /** Where each task's plan snapshot is extracted: `<plansRoot>/<task id>/`. */
  plansRoot: string;
  /** This daemon's builders and runners, with the config keys each understands. */
  known: Components;
  archiveLimits: { maxBytes: number; maxEntries: number };
  logger: Logger;
  now?: () => Date;
  /** The queue limits and the upload quota; none when absent. */
  admission?: Pick<Admission, 'admit' | 'release'>;
  /** `resolveComposition` unless given: tests hand over tasks of several runs through it. */
  resolve?: (composition: Composition, manifest: Manifest, known: Components) => ResolvedComposition;
}

export interface RunSubmission {
  compositionText: string;
  archivePath: string;
  createdBy: string;
  /** Run only these of the composition's runs, in this order (`--run-ids`); all of them when absent. */
  runIds?: readonly string[];
  /** Where the task comes from (CI: repository, branch, commit). */
  metadata?: TaskMetadata;
  /**
   * Cancel the older tasks still queued for the same repo, branch, plan and test case: in CI, a new push
   * makes the runs queued for the previous one pointless.
   */
  supersede?: boolean;
  /** Supersede other users' queued tasks too (an admin's submission); otherwise only the submitter's. */
  supersedeOthers?: boolean;
}

export type BuildSubmission = Omit<RunSubmission, 'runIds' | 'supersede' | 'supersedeOthers'>;

// A run's name ends up in its run id: a directory name, a container and network name, a URL path segment.
const runNamePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** What the API asks of the daemon: validate and queue runs, cancel tasks. */
export class TaskService {
  private readonly deps: TaskServiceDeps;
  private readonly now: () => Date;
  // Tasks whose snapshot is being extracted and whose record does not exist yet.
  private readonly submitting = new Set<string>();

  constructor(deps: TaskServiceDeps) {
    this.deps = deps;
    this.now = deps.now ?? (() => new Date());
  }

  /** Sortable by creation time, short enough to type, random enough never to collide in practice. */
  newTaskId(): string {
    return this.now().getTime().toString(36).padStart(9, '0') + randomBytes(3).toString('hex');
  }

  /** Validates a composition and its plan, and queues a task that builds what its runs need, then runs them. */
  submitRun(submission: RunSubmission): Promise<TaskRecord> {
    return this.submit('run', submission);
  }

  /** Validates like `submitRun`, and queues a task that only builds; its record lists the artifacts. */
  submitBuild(submission: BuildSubmission): Promise<TaskRecord> {
    return this.submit('build', submission);
  }

  /** Whether task `id` is being submitted right now: its snapshot exists, its record does not yet. */
  isSubmitting(id: string): boolean {
    return this.submitting.has(id);
  }

  private async submit(type: TaskType, submission: RunSubmission): Promise<TaskRecord> {
    const composition = parseComposition(submission.compositionText);
    const id = this.newTaskId();
    const extractTo = path.join(this.deps.plansRoot, id);
    const user = quotaUser(submission);
    const { admission } = this.deps;
    if (admission) await admission.admit(user, id, (await stat(submission.archivePath)).size);
    this.submitting.add(id);
    try {
      const { planDir } = await extractPlanArchive(
        submission.archivePath,
        extractTo,
        this.deps.archiveLimits,
      );
      const manifestText = await readFile(path.join(planDir, 'manifest.toml'), 'utf8');
      const manifest = parseManifest(manifestText);
      const resolve = this.deps.resolve ?? resolveComposition;
      const { task: resolvedTask, warnings } = resolve(composition, manifest, this.deps.known);
      checkRunNames(resolvedTask);
      const resolved = type === 'run' ? pickRuns(resolvedTask, submission.runIds) : resolvedTask;
      await this.checkArtifacts(composition, resolved);
      // Without [[runs]] the task is its one run, so clients that know only task ids keep working.
      const single = resolvedTask.runs.length === 1 && resolvedTask.runs[0]!.id === 'default';
      const runs: NewRun[] =
        type === 'build'
          ? []
          : resolved.runs.map((run) => {
              const runId = single ? id : `${id}-${run.id}`;
              return {
                id: runId,
                name: run.id,
                instances: run.totalInstances,
                outputsDir: this.deps.outputs.runDir(run.runner, run.plan, runId),
              };
            });
      const record = await this.deps.store.create({
        id,
        type,
        plan: resolved.plan,
        testCase: resolved.testCase,
        builder: resolved.builder,
        runner: resolved.runner,
        instances: runs.reduce((sum, run) => sum + run.instances, 0),
        createdBy: submission.createdBy,
        composition,
        resolved,
        runs,
        warnings,
        planDir,
        ...(submission.metadata ? { metadata: submission.metadata } : {}),
      });
      const ts = this.now().toISOString();
      await this.deps.logBus.append(id, { kind: 'state', ts, state: 'queued' });
      for (const warning of warnings) {
        await this.deps.logBus.append(id, {
          kind: 'log',
          ts,
          level: 'warn',
          msg: `${warning.path}: ${warning.message}`,
        });
      }
      await this.deps.queue.enqueue(id);
      const superseded = submission.supersede
        ? await this.supersede(record, submission.supersedeOthers ?? false)
        : [];
      this.deps.logger.info(
        {
          taskId: id,
          type,
          plan: resolved.plan,
          testCase: resolved.testCase,
          runs: runs.map((run) => run.name),
          instances: record.instances,
        },
        `${type} queued`,
      );
      return superseded.length === 0 ? record : { ...record, supersedes: superseded };
    } catch (error) {
      await rm(extractTo, { recursive: true, force: true });
      await admission
        ?.release(user, id)
        .catch((releaseError: unknown) =>
          this.deps.logger.warn({ err: releaseError, taskId: id }, 'could not release the queue slot'),
        );
      throw error;
    } finally {
      this.submitting.delete(id);
    }
  }

  /**
   * A group that names a prebuilt artifact is not built: the artifact must be one this daemon knows, of the
   * kind the runner starts. Whether it is still there is checked when its run starts.
   */
  private async checkArtifacts(composition: Composition, resolved: ResolvedTask): Promise<void> {
    const problems = new Map<string, ProblemDetail>();
    const accepts = this.deps.known.runners[resolved.runner]?.accepts;
    for (const run of resolved.runs) {
      for (const group of run.groups) {
        if (group.artifact === undefined) continue;
        const where = artifactPath(composition, run.id, group.id);
        const value = JSON.stringify(group.artifact);
        const record = await this.deps.artifacts.get(group.artifact);
        if (record === undefined) {
          problems.set(where, {
            path: where,
            message:
              `artifact ${value} (run.artifact, or --use-build) is not known to this daemon; use an id that ` +
              `"testground build" printed or a task's artifacts list, or leave it unset to build the group`,
          });
        } else if (accepts !== undefined && record.kind !== accepts) {
          const fitting = Object.entries(this.deps.known.builders)
            .filter(([, builder]) => builder.produces === accepts)
            .map(([builderId]) => builderId);
          problems.set(where, {
            path: where,
            message:
              `artifact ${value} is ${record.kind === 'image' ? 'an image' : 'a bundle'} (built by ${record.builder}), ` +
              `but runner ${JSON.stringify(resolved.runner)} starts ${accepts === 'image' ? 'images' : 'bundles'}; ` +
              `use an artifact built by ${fitting.join(', ') || 'a builder that makes them'}`,
          });
        }
      }
    }
    if (problems.size > 0) {
      const details = [...problems.values()];
      throw new ValidationError(
        `composition: ${details.map((problem) => `${problem.path}: ${problem.message}`).join('; ')}`,
        details,
      );
    }
  }

  /**
   * Cancels the tasks queued before `task` for the same repo, branch, plan and test case, and records them
   * on it. Only queued ones: a run already going is left to finish. Without a repo and a branch there is
   * nothing to match, so nothing is superseded. A user supersedes only their own tasks (canceling is
   * theirs alone); `others` (an admin) reaches everyone's.
   */
  private async supersede(task: TaskRecord, others: boolean): Promise<string[]> {
    const { repo, branch } = task.metadata;
    if (!repo || !branch) return [];
    const queued = await this.deps.store.list({ state: 'queued', plan: task.plan, limit: 10_000 });
    const older = queued.filter(
      (other) =>
        other.id !== task.id &&
        other.type === task.type &&
        (others || other.createdBy === task.createdBy) &&
        other.testCase === task.testCase &&
        other.metadata.repo === repo &&
        other.metadata.branch === branch &&
        other.createdAt <= task.createdAt,
    );
    const superseded: string[] = [];
    const reason = `superseded by task ${task.id} (same repo, branch, plan and case)`;
    for (const other of older) {
      if (await this.cancelQueued(other, reason)) superseded.push(other.id);
    }
    if (superseded.length > 0) {
      await this.deps.store.recordSupersedes(task.id, superseded);
      await this.deps.logBus.append(task.id, {
        kind: 'log',
        ts: this.now().toISOString(),
        level: 'info',
        msg: `superseded (canceled) the older queued task${superseded.length === 1 ? '' : 's'} ${superseded.join(', ')}`,
      });
    }
    return superseded;
  }

  async get(id: string): Promise<TaskRecord> {
    assertTaskId(id);
    const task = await this.deps.store.get(id);
    if (!task)
      throw new NotFoundError(
        `no task with id ${JSON.stringify(id)}; list tasks with "testground tasks" (GET /api/v1/tasks)`,
      );
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
    if (!(await this.cancelQueued(task, 'canceled on request'))) this.deps.taskRunner.stop(id, 'canceled');
    return this.get(id);
  }

  /** Ends a task still queued as canceled with `reason`; false when a worker took it first. */
  private async cancelQueued(task: TaskRecord, reason: string): Promise<boolean> {
    const applied = await this.deps.store.transition(task.id, ['queued'], 'canceled', {
      outcome: 'canceled',
      error: reason,
      runs: cancelRuns(task.runs, reason, this.now()),
    });
    if (!applied) return false;
    await this.deps.queue.removeWaiting(task.id);
    await this.deps.logBus.end(task.id, { state: 'canceled', outcome: 'canceled', error: reason });
    return true;
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

/** `--run-ids`: only the named runs, in the order named; an unknown name lists the known ones. */
function pickRuns(task: ResolvedTask, runIds: readonly string[] | undefined): ResolvedTask {
  if (runIds === undefined) return task;
  const known = task.runs.map((run) => run.id);
  const wanted = [...new Set(runIds)];
  const unknown = wanted.filter((name) => !known.includes(name));
  if (wanted.length === 0 || unknown.length > 0) {
    const message =
      wanted.length === 0
        ? `no run named; the composition's runs are: ${known.join(', ')}`
        : `${unknown.map((name) => JSON.stringify(name)).join(', ')} ${unknown.length === 1 ? 'is not a run' : 'are not runs'} ` +
          `of this composition; its runs are: ${known.join(', ')}`;
    throw new ValidationError(`run_ids: ${message}`, [{ path: 'run_ids', message }]);
  }
  return { ...task, runs: wanted.map((name) => task.runs.find((run) => run.id === name)!) };
}

function checkRunNames(task: ResolvedTask): void {
  const problems: ProblemDetail[] = [];
  task.runs.forEach((run, index) => {
    if (!runNamePattern.test(run.id)) {
      problems.push({
        path: `runs[${index}].id`,
        message:
          `${JSON.stringify(run.id)} cannot name a run: its id becomes part of directory and container names; ` +
          'use 1 to 64 letters, digits, "_", "." or "-", starting with a letter or digit',
      });
    }
  });
  if (problems.length > 0) {
    throw new ValidationError(
      `composition: ${problems.map((problem) => `${problem.path}: ${problem.message}`).join('; ')}`,
      problems,
    );
  }
}

/** Where a run's group names its artifact: `groups[i].run.artifact` of the [[groups]] entry it uses. */
function artifactPath(composition: Composition, runName: string, groupId: string): string {
  const run = composition.runs?.find((candidate) => candidate.id === runName);
  const reference = run?.groups.find((runGroup) => runGroup.id === groupId)?.group_id ?? groupId;
  const index = composition.groups.findIndex((group) => group.id === reference);
  return index === -1 ? 'groups' : `groups[${index}].run.artifact`;
}

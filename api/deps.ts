/**
 * What the API needs from the daemon, as narrow ports. The daemon's classes (TaskService, TaskStore,
 * LogBus, OutputsStore, RunnerMaintenance) satisfy them structurally and `daemon/main.ts` passes them in;
 * the API never imports daemon/, and a test can pass an object literal instead.
 */
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { TestgroundError } from '../core/errors.ts';
import type { MetricPoint } from '../core/metrics-summary.ts';
import type { LogEntryWithOffset } from '../core/task-log.ts';
import type { TaskMetadata, TaskRecord, TaskState, TaskSummaryPage } from '../core/task.ts';
import type { TokenSource } from './auth.ts';
import type {
  BuildPurgeReport,
  GcReport,
  Health,
  HealthcheckReport,
  ReportFormat,
  TerminateResult,
} from './schemas.ts';

export interface BuildSubmission {
  compositionText: string;
  /** The uploaded plan archive; the API removes it once the submission returns. */
  archivePath: string;
  createdBy: string;
  /** Where the task comes from (CI). */
  metadata?: TaskMetadata;
}

export interface RunSubmission extends BuildSubmission {
  /** Only these of the composition's runs, in this order; every run when absent. */
  runIds?: string[];
  /** Cancel the older tasks still queued for the same repo, branch, plan and case. */
  supersede?: boolean;
  /** Supersede other users' tasks too (admins); otherwise only the submitter's own. */
  supersedeOthers?: boolean;
}

/** Validates and queues runs and builds, finds and cancels tasks. Unknown ids are NotFoundErrors. */
export interface TaskSubmissionPort {
  submitRun(submission: RunSubmission): Promise<TaskRecord>;
  submitBuild(submission: BuildSubmission): Promise<TaskRecord>;
  get(id: string): Promise<TaskRecord>;
  cancel(id: string): Promise<TaskRecord>;
}

export interface TaskListPort {
  /** One page of summaries, newest first, after `cursor` (a previous page's `next`). */
  summaries(query: {
    state?: TaskState;
    plan?: string;
    limit: number;
    cursor?: string;
  }): Promise<TaskSummaryPage>;
}

export interface TaskLogPort {
  /** The lines after `offset` that are in the log now. */
  history(taskId: string, offset: string): AsyncIterable<LogEntryWithOffset>;
  /**
   * The lines after `offset` as they come, until the `end` line, or until `hasEnded` says so after a
   * quiet wait; aborting `signal` (the client went away) releases what the follower holds.
   */
  follow(
    taskId: string,
    offset: string,
    options: { signal: AbortSignal; hasEnded: () => Promise<boolean> },
  ): AsyncIterable<LogEntryWithOffset>;
}

export interface OutputsPort {
  /**
   * The runs' outputs as one .tgz stream, each under its run id; a NotFoundError when a run's directory no
   * longer exists.
   */
  archive(runs: readonly { runId: string; dir: string }[]): Promise<Readable>;
  /**
   * Every metric point the run's instances recorded in metrics.out, group by group, instance by instance;
   * a NotFoundError when the run's directory no longer exists.
   */
  metricPoints(runId: string, dir: string): Promise<MetricPoint[]>;
}

export interface MaintenancePort {
  healthcheck(runnerId: string, fix: boolean): Promise<HealthcheckReport>;
  terminate(runnerId: string): Promise<TerminateResult>;
}

/** A task's report in one of the formats CI reads; unknown ids are NotFoundErrors. */
export interface TaskReportPort {
  render(taskId: string, format: ReportFormat): Promise<{ contentType: string; body: string }>;
}

/**
 * Redis as the request paths see it: while it is away, requests fail at once with 503 `redis_unavailable`
 * instead of waiting for it to come back.
 */
export interface RedisAvailabilityPort {
  /** Throws a `redis_unavailable` error when Redis is not connected right now. */
  assertAvailable(): void;
  /** The `redis_unavailable` error for one Redis' client threw (timed out, not connected); else undefined. */
  explain(error: unknown): TestgroundError | undefined;
}

/** Removes what is past retention; a dry run only says what would go. */
export interface RetentionPort {
  collect(options: { dryRun: boolean }): Promise<GcReport>;
}

/** Removes one builder's caches of one plan, keeping what unfinished tasks need. */
export interface BuildCachePort {
  /** @throws ValidationError naming the builder when it keeps no caches that can be purged. */
  purge(options: { builder: string; plan: string }): Promise<BuildPurgeReport>;
}

export interface ApiDeps {
  tasks: TaskSubmissionPort;
  reports: TaskReportPort;
  taskList: TaskListPort;
  logs: TaskLogPort;
  outputs: OutputsPort;
  maintenance: MaintenancePort;
  /** `POST /gc`; the route is absent without it. */
  retention?: RetentionPort;
  /** `POST /builders/{id}/purge`; the route is absent without it. */
  buildCaches?: BuildCachePort;
  /** The daemon's own health: answered 200 when `ok`, else 503, without a token. */
  health: () => Promise<Health>;
  /**
   * When set, every route but health and the OpenAPI document needs `Authorization: Bearer <token>` of
   * one of its entries, and the token's user and role decide what the request may do. Absent only on a
   * daemon that trusts its network (loopback, no tokens).
   */
  auth?: TokenSource;
  /** When set, every route but health and the OpenAPI document answers 503 at once while Redis is away. */
  redis?: RedisAvailabilityPort;
  uploadDir: string;
  maxUploadBytes: number;
  logger: Logger;
}

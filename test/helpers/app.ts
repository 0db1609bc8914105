/**
 * The real HTTP API in-process: `createApp` over the real TaskService, TaskStore, LogBus, TaskQueue
 * (BullMQ) and task runner on a real redis-server of the test's own, with a FakeBuilder and a FakeRunner
 * behind the real interfaces. Drive `app` with supertest; nothing listens unless a test asks.
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { TestContext } from 'node:test';
import type { Express } from 'express';
import type { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import { createApp } from '../../api/app.ts';
import { packPlanDirectory } from '../../cli/pack-plan.ts';
import type { ApiDeps } from '../../api/deps.ts';
import type { Health } from '../../api/schemas.ts';
import { LogBus } from '../../daemon/log-bus.ts';
import { OutputsStore } from '../../daemon/outputs-store.ts';
import { RunnerMaintenance } from '../../daemon/runner-maintenance.ts';
import { TaskQueue } from '../../daemon/task-queue.ts';
import { TaskRunner } from '../../daemon/task-runner.ts';
import { TaskService } from '../../daemon/task-service.ts';
import { TaskReports } from '../../daemon/reports/task-reports.ts';
import { TaskStore } from '../../daemon/task-store.ts';
import { ArtifactStore } from '../../daemon/artifact-store.ts';
import { Admission, type AdmissionLimits } from '../../daemon/admission.ts';
import { RetentionCollector, type RetentionCollectorDeps } from '../../daemon/retention-collector.ts';
import type { RetentionPolicy } from '../../daemon/retention-plan.ts';
import type { TaskServiceDeps } from '../../daemon/task-service.ts';
import type { ProblemDetail } from '../../core/errors.ts';
import { hashToken, type Role, type TokenEntry } from '../../core/token-file.ts';
import { resolveComposition } from '../../plan/resolve-composition.ts';
import { componentsOf, FakeBuilder, FakeRunner } from './fake-components.ts';
import { repoRoot, scratchDir } from './processes.ts';
import { startTestRedis } from './redis-server.ts';

export interface TestAppOptions {
  /** One admin token of user `admin`, as the daemon's TESTGROUND_TOKEN is. */
  token?: string;
  /** Tokens with their users and roles, as a tokens file lists them (hashed). */
  tokens?: readonly { token: string; user: string; role: Role }[];
  /** 1 MiB unless given. */
  maxUploadBytes?: number;
  /** Replace ports of the real daemon with stand-ins (a failing health check, a throwing service). */
  overrides?: Partial<ApiDeps>;
  /** Resolves compositions instead of `resolveComposition` (to hand over tasks of several runs). */
  resolve?: TaskServiceDeps['resolve'];
  /** Images the artifact store finds in "the engine"; none unless given. */
  images?: ReadonlySet<string>;
  /** Queue limits and upload quota; none unless given. */
  admission?: AdmissionLimits;
  /** A retention collector over the app's home (`POST /gc`); none unless given. */
  retention?: { policy: RetentionPolicy; images?: RetentionCollectorDeps['images'] };
  /** Worker concurrency; 2 unless given. */
  concurrency?: number;
}

export interface TestApp {
  app: Express;
  /** A client of the app's redis-server, for looking behind the API. */
  redis: Redis;
  /** The key prefix of this app's data in Redis. */
  prefix: string;
  builder: FakeBuilder;
  runner: FakeRunner;
  store: TaskStore;
  logBus: LogBus;
  tasks: TaskService;
  artifacts: ArtifactStore;
  /** The collector over the app's home, when `retention` was given. */
  retention: RetentionCollector | undefined;
  /** `plans`: where task snapshots are extracted; `outputs`: the outputs root; `cache`: the fake bundles. */
  dirs: { home: string; uploads: string; plans: string; outputs: string; temp: string; cache: string };
  close(): Promise<void>;
}

/** Builds the app and closes it when the test `t` ends (fastify's `build(t)`). */
export async function buildTestApp(t: TestContext, options: TestAppOptions = {}): Promise<TestApp> {
  const testApp = await startTestApp(options);
  t.after(() => testApp.close());
  return testApp;
}

/** Builds the app; the caller closes it (in a suite's `after`). */
export async function startTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const scratch = await scratchDir('api');
  const home = path.join(scratch.dir, 'home');
  const dirs = {
    home,
    uploads: path.join(home, 'uploads'),
    plans: path.join(home, 'tasks'),
    outputs: path.join(home, 'outputs'),
    temp: path.join(home, 'temp'),
    cache: path.join(home, 'cache'),
  };
  for (const dir of Object.values(dirs)) await mkdir(dir, { recursive: true });
  const redis = await startTestRedis();
  const prefix = `api${randomBytes(4).toString('hex')}`;
  const logger: Logger = pino({ level: 'silent' });

  const store = new TaskStore(redis.client, prefix);
  // Short waits, so a follow whose end line is gone ends within a test's patience.
  const logBus = new LogBus(redis.client, prefix, { followBlockMs: 200 });
  const outputs = new OutputsStore(dirs.outputs);
  const builder = new FakeBuilder('exec:node', { bundleRoot: dirs.cache });
  const images = options.images ?? new Set<string>();
  const artifacts = new ArtifactStore({
    redis: redis.client,
    prefix,
    images: { imageExists: async (ref) => images.has(ref) },
  });
  const runner = new FakeRunner('local:exec');
  const queue = new TaskQueue({
    connection: { path: redis.server.socketPath, maxRetriesPerRequest: null },
    prefix,
    concurrency: options.concurrency ?? 2,
    logger,
  });
  const taskRunner = new TaskRunner({
    store,
    logBus,
    builders: new Map([[builder.id, builder]]),
    runners: new Map([[runner.id, runner]]),
    artifacts,
    tempRoot: dirs.temp,
    daemonId: 'test',
    logger,
  });
  const tasks = new TaskService({
    store,
    queue,
    logBus,
    taskRunner,
    outputs,
    artifacts,
    plansRoot: dirs.plans,
    known: componentsOf([builder], [runner]),
    archiveLimits: { maxBytes: 64 * 1024 * 1024, maxEntries: 20_000 },
    logger,
    ...(options.resolve ? { resolve: options.resolve } : {}),
    ...(options.admission
      ? {
          admission: new Admission({
            redis: redis.client,
            prefix,
            limits: options.admission,
            states: (ids) => store.states(ids),
          }),
        }
      : {}),
  });
  const retention = options.retention
    ? new RetentionCollector({
        dirs: { outputs: dirs.outputs, snapshots: dirs.plans, bundles: dirs.cache },
        tasks: store,
        isSubmitting: (taskId) => tasks.isSubmitting(taskId),
        ...(options.retention.images ? { images: options.retention.images } : {}),
        artifacts,
        daemonId: 'test',
        policy: options.retention.policy,
        logger,
      })
    : undefined;
  const maintenance = new RunnerMaintenance({ tasks, store, runners: new Map([[runner.id, runner]]) });
  const health = async (): Promise<Health> => {
    const reply = await redis.client.ping();
    return {
      ok: reply === 'PONG',
      checks: { redis: { ok: reply === 'PONG', message: reply } },
      version: 'test',
    };
  };
  await queue.startWorker((taskId) => taskRunner.process(taskId));

  const tokenEntries: TokenEntry[] = [
    ...(options.tokens ?? []).map(({ token, user, role }) => ({ hash: hashToken(token), user, role })),
    ...(options.token ? [{ hash: hashToken(options.token), user: 'admin', role: 'admin' as const }] : []),
  ];
  const auth = tokenEntries.length > 0 ? { entries: () => tokenEntries } : undefined;
  const app = createApp({
    tasks,
    reports: new TaskReports({ tasks }),
    taskList: store,
    logs: logBus,
    outputs,
    maintenance,
    ...(retention ? { retention, buildCaches: retention } : {}),
    health,
    ...(auth ? { auth } : {}),
    uploadDir: dirs.uploads,
    maxUploadBytes: options.maxUploadBytes ?? 1024 * 1024,
    logger,
    ...options.overrides,
  });

  let closing: Promise<void> | undefined;
  return {
    app,
    redis: redis.client,
    prefix,
    builder,
    runner,
    store,
    logBus,
    tasks,
    artifacts,
    retention,
    dirs,
    close: () =>
      (closing ??= (async () => {
        // Each step on its own, so one failing never leaves the others' processes behind.
        const steps = [
          async () => taskRunner.stopAll(),
          async () => retention?.stop(),
          () => queue.close(),
          () => redis.close(),
          () => scratch.remove(),
        ];
        const failures: unknown[] = [];
        for (const step of steps) await step().catch((error: unknown) => failures.push(error));
        if (failures.length > 0) throw new AggregateError(failures, 'closing the test app failed');
      })()),
  };
}

/** A composition of one `single` group running the placebo plan's `ok` case on the fakes. */
export function placeboComposition(
  global: Record<string, unknown> = {},
  groups: unknown[] = [{ id: 'single', instances: { count: 1 } }],
): string {
  return JSON.stringify({
    global: { plan: 'placebo', case: 'ok', builder: 'exec:node', runner: 'local:exec', ...global },
    groups,
  });
}

/** The real placebo plan directory, packed as the CLI packs it. */
export function packPlacebo(): Promise<Buffer> {
  return packPlanDirectory(path.join(repoRoot, 'plans/placebo'));
}

/** One run a test hands over through `resolveWithRuns`. */
export interface RunStub {
  /** Its name: a [[runs]] id, or `default`. */
  id: string;
  /** Instances of each of its groups; as the composition says when absent. */
  instances?: number;
  /** Laid over each group's params, as a [[runs]] entry's would be. */
  testParams?: Record<string, string>;
  /** Each group starts from this artifact instead of being built, as `run.artifact` says. */
  artifact?: string;
}

/**
 * A resolver that resolves the composition as the daemon does, then hands over one run per stub made from
 * the first run, and `warnings` beside the resolver's own. It stands in for the composition side of issue 7
 * (several [[runs]], `run.artifact`, warnings), so the task side can be tested with the real parser and
 * resolver around it.
 */
export function resolveWithRuns(
  stubs: readonly RunStub[],
  warnings: readonly ProblemDetail[] = [],
): NonNullable<TaskServiceDeps['resolve']> {
  return (composition, manifest, known) => {
    const resolved = resolveComposition(composition, manifest, known);
    const template = resolved.task.runs[0]!;
    const runs = stubs.map((stub) => {
      const groups = template.groups.map((group) => ({
        ...group,
        instances: stub.instances ?? group.instances,
        testParams: { ...group.testParams, ...stub.testParams },
        ...(stub.artifact === undefined ? {} : { artifact: stub.artifact }),
      }));
      return {
        ...template,
        id: stub.id,
        totalInstances: groups.reduce((sum, group) => sum + group.instances, 0),
        groups,
      };
    });
    return { task: { ...resolved.task, runs }, warnings: [...resolved.warnings, ...warnings] };
  };
}

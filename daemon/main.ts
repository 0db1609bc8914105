import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { createApp } from '../api/app.ts';
import type { Health } from '../api/schemas.ts';
import type { Builder } from '../builders/builder.ts';
import { DockerGenericBuilder } from '../builders/docker-generic.ts';
import { DockerNodeBuilder } from '../builders/docker-node.ts';
import { ExecNodeBuilder } from '../builders/exec-node.ts';
import { DockerEngine } from '../docker/docker-engine.ts';
import { RuntimeImageProvider } from '../builders/runtime-image.ts';
import { LocalDockerRunner } from '../runners/local-docker/local-docker-runner.ts';
import { SyncServiceBundle } from '../runners/sync-service-bundle.ts';
import { LocalExecRunner } from '../runners/local-exec/local-exec-runner.ts';
import { LinuxNetworkShaper } from '../runners/network/linux-network-shaper.ts';
import type { Runner } from '../runners/runner.ts';
import { loadDaemonConfig, splitListen, type DaemonConfig, type DaemonFlags } from './config.ts';
import { startEmbeddedRedis, type EmbeddedRedis } from './embedded-redis.ts';
import { TaskRunner } from './task-runner.ts';
import { runShutdownSteps } from './run-shutdown-steps.ts';
import { LogBus } from './log-bus.ts';
import { OutputsStore } from './outputs-store.ts';
import { connectRedis, redisOptions, type RedisTarget } from './redis-connection.ts';
import { TaskQueue } from './task-queue.ts';
import { RunnerMaintenance } from './runner-maintenance.ts';
import { TaskReports } from './reports/task-reports.ts';
import { TaskService } from './task-service.ts';
import { TaskStore } from './task-store.ts';
import { ArtifactStore } from './artifact-store.ts';
import { Admission } from './admission.ts';
import { RetentionCollector } from './retention-collector.ts';
import { ContentStore } from '../builders/content-store.ts';

export const version = '0.1.0';

export interface RunningDaemon {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * The composition root: the only place that creates Redis clients, the queue, builders, runners and
 * the HTTP server, and wires them together.
 */
export async function startDaemon(config: DaemonConfig, logger: Logger): Promise<RunningDaemon> {
  const dirs = {
    outputs: path.join(config.home, 'outputs'),
    // Each task's own copy of its plan; `<home>/plans/<name>` is left to users (the CLI looks there).
    snapshots: path.join(config.home, 'tasks'),
    uploads: path.join(config.home, 'uploads'),
    cache: path.join(config.home, 'cache'),
    temp: path.join(config.home, 'temp'),
    redis: path.join(config.home, 'redis'),
  };
  for (const dir of Object.values(dirs)) await mkdir(dir, { recursive: true });
  const daemonId = await readDaemonId(config.home);

  let embedded: EmbeddedRedis | undefined;
  let target: RedisTarget;
  if (config.redisUrl) {
    target = { url: config.redisUrl };
  } else {
    embedded = await startEmbeddedRedis(dirs.redis, logger.child({ component: 'redis' }));
    target = { socketPath: embedded.socketPath };
  }
  const redis = connectRedis(target);
  redis.on('error', (error) => logger.warn({ err: error }, 'redis connection error'));
  const store = new TaskStore(redis, config.redisPrefix);
  const logBus = new LogBus(redis, config.redisPrefix);
  const outputs = new OutputsStore(dirs.outputs);

  const sdkEntry = path.resolve(import.meta.dirname, '../sdk/index.ts');
  // The Docker engine is contacted lazily: a daemon without Docker still serves local:exec, and docker runs
  // end as `error` saying how to start the engine.
  const docker = new DockerEngine();
  const runtimeImages = new RuntimeImageProvider(docker, { daemonId });
  const artifacts = new ArtifactStore({ redis, prefix: config.redisPrefix, images: docker });
  const syncService = new SyncServiceBundle(path.join(dirs.cache, 'sync-service'));
  // One shaper for the daemon: it detects the host's network features once and keeps each namespace's
  // packet delayer; the features are probed on the first configuration a plan publishes, not at startup.
  const networkShaper = new LinuxNetworkShaper({
    buildDir: path.join(dirs.cache, 'packet-delayer'),
    onWarning: (message) => logger.warn({ component: 'network' }, message),
  });
  // The files exec:node's bundles and the task snapshots share, kept once by content.
  const contents = new ContentStore(path.join(dirs.cache, 'contents'));
  const builders = new Map<string, Builder>(
    [
      new ExecNodeBuilder({
        cacheDir: path.join(dirs.cache, 'exec-node'),
        sdkEntry,
        contents,
        snapshotsDir: dirs.snapshots,
      }),
      new DockerNodeBuilder({ engine: docker, runtimeImages, sdkEntry, tempDir: dirs.temp, daemonId }),
      new DockerGenericBuilder({ engine: docker, runtimeImages, daemonId }),
    ].map((b) => [b.id, b]),
  );
  const runners = new Map<string, Runner>(
    [
      new LocalExecRunner({
        logger: logger.child({ component: 'local:exec' }),
        syncService,
        daemonId,
        networkShaper,
      }),
      new LocalDockerRunner({
        engine: docker,
        runtime: runtimeImages,
        syncService,
        daemonId,
        logger: logger.child({ component: 'local:docker' }),
        networkShaper,
      }),
    ].map((r) => [r.id, r]),
  );

  const queue = new TaskQueue({
    connection: redisOptions(target),
    prefix: config.redisPrefix,
    concurrency: config.workerConcurrency,
    lockMs: config.jobLockMs,
    logger,
  });
  const taskRunner = new TaskRunner({
    store,
    logBus,
    builders,
    runners,
    artifacts,
    tempRoot: dirs.temp,
    daemonId,
    logger: logger.child({ component: 'task-runner' }),
  });
  const recovered = await taskRunner.recoverInterrupted();
  if (recovered.length > 0)
    logger.warn({ tasks: recovered }, 'ended tasks interrupted by a previous daemon process');
  await removeLeftovers(runners, logger);

  const tasks = new TaskService({
    store,
    queue,
    logBus,
    taskRunner,
    outputs,
    artifacts,
    plansRoot: dirs.snapshots,
    known: { builders: Object.fromEntries(builders), runners: Object.fromEntries(runners) },
    archiveLimits: { maxBytes: config.maxUploadBytes * 8, maxEntries: 20_000 },
    admission: new Admission({
      redis,
      prefix: config.redisPrefix,
      limits: config,
      states: (ids) => store.states(ids),
    }),
    logger,
  });
  const retention = new RetentionCollector({
    dirs: {
      outputs: dirs.outputs,
      snapshots: dirs.snapshots,
      bundles: path.join(dirs.cache, 'exec-node'),
      uploads: dirs.uploads,
    },
    contents,
    tasks: store,
    isSubmitting: (taskId) => tasks.isSubmitting(taskId),
    images: docker,
    artifacts,
    daemonId,
    policy: config.retention,
    logger: logger.child({ component: 'retention' }),
  });
  const health = async (): Promise<Health> => {
    const ping = await Promise.race([
      redis.ping().then(() => ({ ok: true, message: 'reachable' })),
      new Promise<{ ok: boolean; message: string }>((resolve) =>
        setTimeout(() => resolve({ ok: false, message: 'no answer within 1000 ms' }), 1_000),
      ),
    ]).catch((error: Error) => ({ ok: false, message: error.message }));
    return { ok: ping.ok, checks: { redis: ping }, version };
  };
  const maintenance = new RunnerMaintenance({ tasks, store, runners });
  const app = createApp({
    tasks,
    reports: new TaskReports({ tasks }),
    taskList: store,
    logs: logBus,
    outputs,
    maintenance,
    retention,
    health,
    ...(config.token ? { token: config.token } : {}),
    uploadDir: dirs.uploads,
    maxUploadBytes: config.maxUploadBytes,
    logger: logger.child({ component: 'api' }),
  });

  const { host, port } = splitListen(config.listen);
  const server = app.listen(port, host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const address = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
  await queue.startWorker((taskId) => taskRunner.process(taskId));
  retention.start(config.gcIntervalMs);
  logger.info(
    { url, home: config.home, redis: config.redisUrl ? 'REDIS_URL' : 'embedded', daemonId },
    `daemon listening on ${url}`,
  );

  let closing: Promise<void> | undefined;
  return {
    url,
    close: () =>
      (closing ??= (async () => {
        logger.info('daemon stopping');
        // Each step runs even when an earlier one failed: a queue that will not close must not leave the
        // embedded redis-server running after the daemon is gone.
        await runShutdownSteps(
          [
            { name: 'stop runs in progress', run: () => taskRunner.stopAll() },
            { name: 'stop the retention collector', run: () => retention.stop() },
            { name: 'close the HTTP server', run: () => closeServer(server) },
            { name: 'stop the packet delayers', run: () => networkShaper.close() },
            { name: 'close the task queue', run: () => queue.close() },
            { name: 'disconnect from Redis', run: () => redis.quit() },
            ...(embedded ? [{ name: 'stop the embedded redis-server', run: () => embedded.stop() }] : []),
          ],
          logger,
        );
        logger.info('daemon stopped');
      })()),
  };
}

/** Stops accepting connections and drops idle and in-flight ones (log followers would hold it open). */
function closeServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve, reject) =>
    server.close((error) => (error ? reject(error) : resolve())),
  );
  server.closeAllConnections();
  return closed;
}

/** `testground daemon`: start, then stop gracefully on SIGINT/SIGTERM. */
export async function runDaemonCommand(flags: DaemonFlags): Promise<number> {
  const config = loadDaemonConfig(process.env, flags);
  const logger = pino({ level: config.logLevel, base: { daemon: true } });
  // A long-running daemon outlives a dependency's stray rejection (a Redis client closing mid-request):
  // log it instead of dying with every run it carries.
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled rejection'));
  // Listening before start-up: a signal arriving while the daemon starts (or right after it says it is
  // listening) would otherwise kill it outright and leave its embedded redis-server behind.
  const stopRequested = new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  const daemon = await startDaemon(config, logger);
  await stopRequested;
  await daemon.close();
  return 0;
}

/** At start-up nothing of this daemon is running yet: whatever its runners find is left over. */
async function removeLeftovers(runners: ReadonlyMap<string, Runner>, logger: Logger): Promise<void> {
  for (const runner of runners.values()) {
    try {
      const removed = await runner.removeLeftovers(new Set());
      if (Object.values(removed).some((count) => count > 0))
        logger.warn({ runner: runner.id, removed }, 'removed leftovers of ended runs');
    } catch (error) {
      logger.warn({ runner: runner.id, err: error }, 'could not look for leftovers; is the engine running?');
    }
  }
}

async function readDaemonId(home: string): Promise<string> {
  const file = path.join(home, 'daemon-id');
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim();
  const id = randomBytes(6).toString('hex');
  await writeFile(file, id);
  return id;
}

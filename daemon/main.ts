import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import { DependencyError } from '../core/errors.ts';
import { createApp } from '../api/app.ts';
import type { Health } from '../api/schemas.ts';
import type { Builder } from '../builders/builder.ts';
import { DockerGenericBuilder } from '../builders/docker-generic.ts';
import { DockerNodeBuilder } from '../builders/docker-node.ts';
import { ExecNodeBuilder } from '../builders/exec-node.ts';
import { NpmSandbox } from '../builders/npm-sandbox.ts';
import { PlanUser } from '../builders/plan-user.ts';
import { DockerEngine } from '../docker/docker-engine.ts';
import { RuntimeImageProvider } from '../builders/runtime-image.ts';
import { PlanTypeChecker } from '../builders/plan-typecheck.ts';
import { SdkTypes } from '../builders/sdk-types.ts';
import { LocalDockerRunner } from '../runners/local-docker/local-docker-runner.ts';
import { ClusterSwarmRunner } from '../runners/cluster-swarm/cluster-swarm-runner.ts';
import { DockerSwarm } from '../docker/docker-swarm.ts';
import { RegistryClient } from '../docker/registry-client.ts';
import { SyncServiceBundle } from '../runners/sync-service-bundle.ts';
import { LocalExecRunner } from '../runners/local-exec/local-exec-runner.ts';
import { LinuxNetworkShaper } from '../runners/network/linux-network-shaper.ts';
import type { Runner } from '../runners/runner.ts';
import { installLastResortHandlers } from './last-resort.ts';
import {
  checkExposure,
  isLoopbackHost,
  loadDaemonConfig,
  splitListen,
  type DaemonConfig,
  type DaemonFlags,
} from './config.ts';
import { TokenRegistry } from './token-registry.ts';
import { startEmbeddedRedis, type EmbeddedRedis } from './embedded-redis.ts';
import { TaskRunner } from './task-runner.ts';
import { runShutdownSteps, type ShutdownStep } from './run-shutdown-steps.ts';
import { LogBus } from './log-bus.ts';
import { OutputsStore } from './outputs-store.ts';
import { connectRedis, redisOptions, requestPathOptions, type RedisTarget } from './redis-connection.ts';
import { RedisAvailability } from './redis-availability.ts';
import { RedisEpoch } from './redis-epoch.ts';
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
  // First of all: a daemon that would be open to its network stops before it creates anything.
  const tokens = await TokenRegistry.open({
    file: config.tokensFile ?? path.join(config.home, 'tokens'),
    required: config.tokensFile !== undefined,
    ...(config.token ? { legacyToken: config.token } : {}),
    logger: logger.child({ component: 'tokens' }),
  });
  try {
    checkExposure(config.listen, tokens !== undefined, config.insecureNoAuth);
  } catch (error) {
    tokens?.close();
    throw error;
  }
  if (tokens) logger.info(tokens.describe(), 'authentication on: every request but /health needs a token');
  else if (config.insecureNoAuth && !isLoopbackHost(splitListen(config.listen).host))
    logger.warn(
      { listen: config.listen },
      '--insecure-no-auth: no tokens, and anyone who reaches this address can run code on this host',
    );
  // What start-up has started so far, undone in reverse when a later step fails: a daemon that cannot
  // start must exit, not stay alive (held by its redis-server child and Redis clients) without listening.
  const undo: ShutdownStep[] = [{ name: 'stop watching the tokens file', run: async () => tokens?.close() }];
  try {
    return await assembleDaemon(config, logger, undo, tokens);
  } catch (error) {
    await runShutdownSteps([...undo].reverse(), logger);
    throw error;
  }
}

async function assembleDaemon(
  config: DaemonConfig,
  logger: Logger,
  undo: ShutdownStep[],
  tokens: TokenRegistry | undefined,
): Promise<RunningDaemon> {
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
  const planUser = PlanUser.fromConfig(config.planUser, {
    home: config.home,
    onWarning: (message) => logger.warn({ component: 'plan-user' }, message),
  });
  // Plan code reaches its bundle, outputs and temp directory (a home it cannot reach is refused here, with
  // the fix); never the plan snapshots, the uploads, or Redis's files and socket.
  for (const dir of [dirs.outputs, dirs.cache, dirs.temp]) await planUser.reach(dir);
  for (const dir of [dirs.snapshots, dirs.uploads, dirs.redis]) await planUser.keepPrivate(dir);
  if (planUser.isolated) logger.info({ planUser: planUser.identity }, planUser.describe());
  else logger.warn(planUser.describe());
  const npm = new NpmSandbox({ planUser, cacheDir: path.join(dirs.cache, 'npm') });

  let embedded: EmbeddedRedis | undefined;
  let target: RedisTarget;
  if (config.redisUrl) {
    target = { url: config.redisUrl };
  } else {
    embedded = await startEmbeddedRedis(dirs.redis, logger.child({ component: 'redis' }));
    const started = embedded;
    undo.push({ name: 'stop the embedded redis-server', run: () => started.stop() });
    target = { socketPath: embedded.socketPath };
  }
  const redis = connectRedis(target);
  redis.on('error', (error) => logger.warn({ err: error }, 'redis connection error'));
  undo.push({ name: 'disconnect from Redis', run: () => redis.disconnect() });
  // API requests use a client of their own that fails at once while Redis is away (503) instead of
  // queueing commands until it returns; the worker's client waits through a restart.
  const requestRedis = connectRedis(target, requestPathOptions(config.redisCommandTimeoutMs));
  requestRedis.on('error', () => undefined); // the worker's client logs the same trouble once
  undo.push({ name: 'disconnect the API from Redis', run: () => requestRedis.disconnect() });
  await untilReady(requestRedis, 30_000);
  const store = new TaskStore(redis, config.redisPrefix);
  const logBus = new LogBus(redis, config.redisPrefix, {
    budget: { instanceBytes: config.liveLogInstanceBytes, taskBytes: config.liveLogTaskBytes },
  });
  const requestStore = new TaskStore(requestRedis, config.redisPrefix);
  // Its blocking follow reads (1 s) must end within the client's command timeout.
  const requestLogBus = new LogBus(requestRedis, config.redisPrefix, {
    followBlockMs: Math.min(1_000, Math.floor(config.redisCommandTimeoutMs / 2)),
  });
  const redisAvailability = new RedisAvailability(requestRedis, config.redisCommandTimeoutMs);
  const outputs = new OutputsStore(dirs.outputs);

  const sdkEntry = path.resolve(import.meta.dirname, '../sdk/index.ts');
  // The Docker engine is contacted lazily: a daemon without Docker still serves local:exec, and docker runs
  // end as `error` saying how to start the engine.
  const docker = new DockerEngine();
  const runtimeImages = new RuntimeImageProvider(docker, {
    daemonId,
    pull: config.pull,
    onDecision: (summary) => logger.info({ component: 'runtime-image', pull: config.pull }, summary),
  });
  const artifacts = new ArtifactStore({ redis, prefix: config.redisPrefix, images: docker });
  const requestArtifacts = new ArtifactStore({
    redis: requestRedis,
    prefix: config.redisPrefix,
    images: docker,
  });
  const syncService = new SyncServiceBundle(path.join(dirs.cache, 'sync-service'));
  // One shaper for the daemon: it detects the host's network features once and keeps each namespace's
  // packet delayer; the features are probed on the first configuration a plan publishes, not at startup.
  const networkShaper = new LinuxNetworkShaper({
    buildDir: path.join(dirs.cache, 'packet-delayer'),
    ...(config.packetDelayer ? { delayerBinary: config.packetDelayer } : {}),
    onWarning: (message) => logger.warn({ component: 'network' }, message),
  });
  // TypeScript plans are type-checked against the SDK's declarations, generated once per SDK content.
  const typecheck = new PlanTypeChecker({
    sdkTypes: new SdkTypes(sdkEntry, path.join(dirs.cache, 'sdk-types')),
    cacheDir: path.join(dirs.cache, 'typecheck'),
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
        npm,
        typecheck,
      }),
      new DockerNodeBuilder({
        engine: docker,
        runtimeImages,
        sdkEntry,
        tempDir: dirs.temp,
        daemonId,
        npm,
        typecheck,
      }),
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
        planUser,
        outputQuotaBytes: config.outputQuotaBytes,
      }),
      new LocalDockerRunner({
        engine: docker,
        runtime: runtimeImages,
        syncService,
        daemonId,
        logger: logger.child({ component: 'local:docker' }),
        networkShaper,
        outputQuotaBytes: config.outputQuotaBytes,
      }),
      new ClusterSwarmRunner({
        engine: docker,
        runtime: runtimeImages,
        syncService,
        daemonId,
        logger: logger.child({ component: 'cluster:swarm' }),
        ...(config.swarmManager ? { manager: config.swarmManager } : {}),
        ...(config.registry ? { registry: config.registry } : {}),
        connect: (endpoint) => new DockerSwarm({ endpoint }),
        connectRegistry: (address) => new RegistryClient(address),
        outputQuotaBytes: config.outputQuotaBytes,
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
  undo.push({ name: 'close the task queue', run: () => queue.close() });
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
  const epoch = new RedisEpoch({
    redis,
    prefix: config.redisPrefix,
    file: path.join(config.home, `redis-epoch-${config.redisPrefix.replace(/:/g, '_')}`),
    logger: logger.child({ component: 'redis' }),
    onLost: (loss) => {
      const ended = taskRunner.endAllAfterRedisLoss(loss.message);
      if (ended.length > 0)
        logger.error({ tasks: ended }, 'ended the tasks in progress here as error: Redis lost their records');
    },
  });
  await epoch.check();
  // A Redis that comes back after a restart may have come back empty.
  redis.on('ready', () => {
    epoch.check().catch((error: unknown) => logger.warn({ err: error }, 'could not check the Redis epoch'));
  });
  const recovered = await taskRunner.recoverInterrupted();
  if (recovered.length > 0)
    logger.warn({ tasks: recovered }, 'ended tasks interrupted by a previous daemon process');
  await removeLeftovers(runners, logger);

  const tasks = new TaskService({
    store: requestStore,
    queue,
    logBus: requestLogBus,
    taskRunner,
    outputs,
    artifacts: requestArtifacts,
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
    // A flushed Redis answers pings as before: only its epoch tells (checked here too, not only on reconnect).
    if (ping.ok) await epoch.check().catch(() => undefined);
    const loss = epoch.lost;
    const data = loss
      ? { ok: false, message: `since ${loss.at}: ${loss.message}` }
      : { ok: true, message: `epoch ${epoch.current ?? 'unknown'}: the data this daemon wrote is there` };
    // `ok` is whether the daemon can serve: it can after a loss, and `redis_data` says what was lost.
    return { ok: ping.ok, checks: { redis: ping, redis_data: data }, version };
  };
  const maintenance = new RunnerMaintenance({ tasks, store: requestStore, runners });
  const app = createApp({
    tasks,
    reports: new TaskReports({ tasks }),
    taskList: requestStore,
    logs: requestLogBus,
    outputs,
    maintenance,
    retention,
    buildCaches: retention,
    health,
    redis: redisAvailability,
    ...(tokens ? { auth: tokens } : {}),
    uploadDir: dirs.uploads,
    maxUploadBytes: config.maxUploadBytes,
    logger: logger.child({ component: 'api' }),
  });

  const { host, port } = splitListen(config.listen);
  const server = app.listen(port, host);
  undo.push({ name: 'close the HTTP server', run: () => closeServer(server) });
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
            { name: 'stop runs in progress', run: () => taskRunner.stopAll(), timeoutMs: 120_000 },
            { name: 'stop the retention collector', run: () => retention.stop() },
            { name: 'close the HTTP server', run: () => closeServer(server) },
            { name: 'stop watching the tokens file', run: async () => tokens?.close() },
            { name: 'stop the packet delayers', run: () => networkShaper.close() },
            { name: 'close the task queue', run: () => queue.close() },
            { name: 'disconnect from Redis', run: () => redis.quit() },
            { name: 'disconnect the API from Redis', run: () => requestRedis.quit() },
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
  // Listening before start-up: a signal arriving while the daemon starts (or right after it says it is
  // listening) would otherwise kill it outright and leave its embedded redis-server behind.
  const stopRequested = new Promise<number>((resolve) => {
    process.once('SIGINT', () => resolve(0));
    process.once('SIGTERM', () => resolve(0));
    // An error that leaves the daemon's state in doubt stops it as a signal would, but exits non-zero.
    installLastResortHandlers(process, logger, () => resolve(1));
  });
  let daemon: RunningDaemon;
  try {
    daemon = await startDaemon(config, logger);
  } catch (error) {
    logger.fatal({ err: error }, `daemon could not start: ${(error as Error).message}`);
    // What start-up began is undone; should anything still hold the event loop, exit all the same.
    setTimeout(() => process.exit(process.exitCode || 1), 5_000).unref();
    throw error;
  }
  const code = await stopRequested;
  await daemon.close();
  return code;
}

/** Waits for a client without an offline queue to connect: before that, its commands would fail. */
async function untilReady(client: Redis, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', ready);
      reject(
        new DependencyError(
          `Redis did not accept a connection within ${timeoutMs} ms (status ${client.status}); is REDIS_URL right and Redis running?`,
        ),
      );
    }, timeoutMs);
    const ready = (): void => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', ready);
  });
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

import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { parseByteSize, parseDuration } from '../plan/units.ts';
import { ValidationError } from '../core/errors.ts';
import { defaultPullPolicy, pullPolicies } from '../builders/runtime-image.ts';

const listenPattern = /^(?<host>[^:]+|\[[^\]]+\]):(?<port>\d{1,5})$/;

const retentionLimitSchema = z.object({
  maxAgeMs: z.number().positive().optional(),
  maxBytes: z.number().int().positive().optional(),
});

const configSchema = z.object({
  listen: z.string().regex(listenPattern, 'expected host:port, like 127.0.0.1:8042'),
  home: z.string().min(1),
  redisUrl: z.string().url().optional(),
  redisPrefix: z.string().regex(/^[A-Za-z0-9:_-]+$/, 'letters, digits, ":", "_" and "-" only'),
  workerConcurrency: z.coerce.number().int().min(1).max(64),
  token: z.string().min(8, 'at least 8 characters').optional(),
  // Absent: `<home>/tokens` is used when it exists. Given: it must exist.
  tokensFile: z.string().min(1).optional(),
  insecureNoAuth: z.boolean(),
  maxUploadBytes: z.number().int().positive(),
  // BullMQ renews the lock while a run goes on; a shorter lock notices a silent worker sooner.
  jobLockMs: z.number().int().min(1_000, 'at least 1s').max(600_000, 'at most 10m'),
  // Request paths give up on a Redis that does not answer after this long (503 redis_unavailable).
  redisCommandTimeoutMs: z.number().int().min(100, 'at least 100ms').max(60_000, 'at most 60s'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  // A prebuilt packet delayer, for images that ship one instead of gcc and libnetfilter_queue's headers.
  packetDelayer: z.string().startsWith('/', 'an absolute path').optional(),
  /** Who plan code runs as when the daemon is root: a user name, `uid` or `uid:gid` (builders/plan-user.ts). */
  planUser: z.string().min(1).optional(),
  // What the daemon keeps of each instance's stdout and stderr on disk, and shows of it live.
  outputQuotaBytes: z.number().int().min(1024, 'at least 1KiB'),
  liveLogInstanceBytes: z.number().int().min(1024, 'at least 1KiB'),
  liveLogTaskBytes: z.number().int().min(1024, 'at least 1KiB'),
  retention: z.object({
    outputs: retentionLimitSchema,
    snapshots: retentionLimitSchema,
    cache: retentionLimitSchema,
    images: retentionLimitSchema,
    /** Outputs, snapshots and build caches together (plan images live in the engine, not the home). */
    homeMaxBytes: z.number().int().positive().optional(),
  }),
  /** How often the daemon collects what is past retention; 0 turns the periodic collector off. */
  gcIntervalMs: z.number().min(0),
  /** Unfinished (queued, building or running) tasks one user may have; 0 is no limit. */
  maxActivePerUser: z.coerce.number().int().min(0),
  /** Unfinished tasks of all users together; 0 is no limit. */
  maxActive: z.coerce.number().int().min(0),
  /** Bytes of plan archives one user may upload within `uploadQuotaWindowMs`; absent is no quota. */
  uploadQuotaBytes: z.number().int().positive().optional(),
  uploadQuotaWindowMs: z.number().int().min(1_000, 'at least 1s'),
  /** cluster:swarm's manager: the Docker engine of a manager node. */
  swarmManager: z
    .string()
    .regex(/^(unix|tcp):\/\/\S+$/, 'expected unix:///path/to/docker.sock or tcp://host:port')
    .optional(),
  /** The registry (host:port) cluster:swarm pushes plan images to and every node pulls from. */
  registry: z
    .string()
    .regex(/^[A-Za-z0-9.-]+(:\d+)?$/, 'expected host:port, like 10.0.0.1:5000')
    .optional(),
  /** When the daemon may pull a base image from a registry (builders/runtime-image.ts). */
  pull: z.enum(pullPolicies, { error: `expected one of ${pullPolicies.join(', ')}` }),
});

export type DaemonConfig = z.infer<typeof configSchema>;

/** Flags given to `testground daemon`; each overrides its environment variable. */
export interface DaemonFlags {
  listen?: string;
  home?: string;
  tokensFile?: string;
  /** Listen off loopback without tokens: anyone who reaches the port can run code on this host. */
  insecureNoAuth?: boolean;
}

/** Reads the daemon's configuration once at boot; every problem is reported with its variable name. */
export function loadDaemonConfig(env: NodeJS.ProcessEnv, flags: DaemonFlags = {}): DaemonConfig {
  const raw = {
    listen: flags.listen ?? env.TESTGROUND_LISTEN ?? '127.0.0.1:8042',
    home: path.resolve(flags.home ?? env.TESTGROUND_HOME ?? path.join(os.homedir(), '.testground')),
    redisUrl: env.REDIS_URL || undefined,
    redisPrefix: env.TESTGROUND_REDIS_PREFIX ?? 'tg',
    workerConcurrency: env.TESTGROUND_WORKER_CONCURRENCY ?? '2',
    token: env.TESTGROUND_TOKEN || undefined,
    tokensFile: resolvedPath(flags.tokensFile ?? env.TESTGROUND_TOKENS_FILE),
    insecureNoAuth: flags.insecureNoAuth ?? isTrue(env.TESTGROUND_INSECURE_NO_AUTH),
    maxUploadBytes: parseByteSize(env.TESTGROUND_MAX_UPLOAD ?? '64MiB', 'TESTGROUND_MAX_UPLOAD'),
    jobLockMs: parseDuration(env.TESTGROUND_JOB_LOCK ?? '30s', 'TESTGROUND_JOB_LOCK'),
    redisCommandTimeoutMs: parseDuration(
      env.TESTGROUND_REDIS_COMMAND_TIMEOUT ?? '1500ms',
      'TESTGROUND_REDIS_COMMAND_TIMEOUT',
    ),
    logLevel: env.LOG_LEVEL ?? 'info',
    packetDelayer: env.TESTGROUND_PACKET_DELAYER || undefined,
    planUser: env.TESTGROUND_PLAN_USER || undefined,
    outputQuotaBytes: parseByteSize(env.TESTGROUND_OUTPUT_QUOTA ?? '256MiB', 'TESTGROUND_OUTPUT_QUOTA'),
    liveLogInstanceBytes: parseByteSize(
      env.TESTGROUND_LIVE_LOG_INSTANCE_BUDGET ?? '4MiB',
      'TESTGROUND_LIVE_LOG_INSTANCE_BUDGET',
    ),
    liveLogTaskBytes: parseByteSize(
      env.TESTGROUND_LIVE_LOG_TASK_BUDGET ?? '32MiB',
      'TESTGROUND_LIVE_LOG_TASK_BUDGET',
    ),
    retention: {
      outputs: retentionLimit(env, 'OUTPUTS', '720h'),
      snapshots: retentionLimit(env, 'SNAPSHOTS', '168h'),
      cache: retentionLimit(env, 'CACHE', '720h'),
      images: retentionLimit(env, 'IMAGES', '720h'),
      ...optionalSize(env, 'TESTGROUND_RETAIN_HOME_SIZE', 'homeMaxBytes'),
    },
    gcIntervalMs: offValues.has((env.TESTGROUND_GC_INTERVAL ?? '10m').trim().toLowerCase())
      ? 0
      : parseDuration(env.TESTGROUND_GC_INTERVAL ?? '10m', 'TESTGROUND_GC_INTERVAL'),
    maxActivePerUser: env.TESTGROUND_MAX_ACTIVE_PER_USER ?? '200',
    maxActive: env.TESTGROUND_MAX_ACTIVE ?? '1000',
    ...optionalSize(env, 'TESTGROUND_UPLOAD_QUOTA', 'uploadQuotaBytes'),
    uploadQuotaWindowMs: parseDuration(
      env.TESTGROUND_UPLOAD_QUOTA_WINDOW ?? '24h',
      'TESTGROUND_UPLOAD_QUOTA_WINDOW',
    ),
    swarmManager: env.TESTGROUND_SWARM_MANAGER || undefined,
    registry: env.TESTGROUND_REGISTRY || undefined,
    pull: (env.TESTGROUND_PULL || defaultPullPolicy).trim().toLowerCase(),
  };
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const names: Record<string, string> = {
      listen: 'TESTGROUND_LISTEN / --listen',
      home: 'TESTGROUND_HOME / --home',
      redisUrl: 'REDIS_URL',
      redisPrefix: 'TESTGROUND_REDIS_PREFIX',
      workerConcurrency: 'TESTGROUND_WORKER_CONCURRENCY',
      token: 'TESTGROUND_TOKEN',
      tokensFile: 'TESTGROUND_TOKENS_FILE / --tokens-file',
      jobLockMs: 'TESTGROUND_JOB_LOCK',
      redisCommandTimeoutMs: 'TESTGROUND_REDIS_COMMAND_TIMEOUT',
      logLevel: 'LOG_LEVEL',
      packetDelayer: 'TESTGROUND_PACKET_DELAYER',
      planUser: 'TESTGROUND_PLAN_USER',
      outputQuotaBytes: 'TESTGROUND_OUTPUT_QUOTA',
      liveLogInstanceBytes: 'TESTGROUND_LIVE_LOG_INSTANCE_BUDGET',
      liveLogTaskBytes: 'TESTGROUND_LIVE_LOG_TASK_BUDGET',
      gcIntervalMs: 'TESTGROUND_GC_INTERVAL',
      maxActivePerUser: 'TESTGROUND_MAX_ACTIVE_PER_USER',
      maxActive: 'TESTGROUND_MAX_ACTIVE',
      uploadQuotaWindowMs: 'TESTGROUND_UPLOAD_QUOTA_WINDOW',
      swarmManager: 'TESTGROUND_SWARM_MANAGER',
      registry: 'TESTGROUND_REGISTRY',
      pull: 'TESTGROUND_PULL',
    };
    const details = parsed.error.issues.map((issue) => {
      const key = String(issue.path[0] ?? '');
      const value = (raw as Record<string, unknown>)[key];
      return { path: names[key] ?? key, message: `${JSON.stringify(value)}: ${issue.message}` };
    });
    throw new ValidationError(
      `invalid daemon configuration: ${details.map((d) => `${d.path} ${d.message}`).join('; ')}`,
      details,
    );
  }
  return parsed.data;
}

function resolvedPath(value: string | undefined): string | undefined {
  return value ? path.resolve(value) : undefined;
}

function isTrue(value: string | undefined): boolean {
  return value === '1' || value === 'true';
}

/** The addresses only this host reaches: 127.0.0.0/8, ::1 (also IPv4-mapped) and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare);
}

/**
 * Anyone who reaches the API can run code on this host (a plan is code): off loopback, a daemon without
 * tokens is refused unless `--insecure-no-auth` says that is meant.
 *
 * @throws ValidationError naming the listen address and the ways out.
 */
export function checkExposure(listen: string, authenticated: boolean, insecureNoAuth: boolean): void {
  const { host } = splitListen(listen);
  if (authenticated || insecureNoAuth || isLoopbackHost(host)) return;
  const message =
    `listening on ${listen} (not loopback) without tokens would let anyone who reaches the port run code on this host; ` +
    'add tokens ("testground token add <user> --role admin" writes <home>/tokens; or --tokens-file / TESTGROUND_TOKENS_FILE, or TESTGROUND_TOKEN), ' +
    'listen on 127.0.0.1, or pass --insecure-no-auth (TESTGROUND_INSECURE_NO_AUTH=1) if the network is trusted';
  throw new ValidationError(`refusing to start: ${message}`, [
    { path: 'TESTGROUND_LISTEN / --listen', message },
  ]);
}

/** `off` (or `0`) turns a limit off. */
const offValues = new Set(['off', 'none', '0', '']);

/**
 * `TESTGROUND_RETAIN_<KIND>_AGE` (a duration past which an entry is removed) and `…_SIZE` (the total the
 * kind may hold; the least recently used go first).
 */
function retentionLimit(
  env: NodeJS.ProcessEnv,
  kind: string,
  defaultAge: string,
): { maxAgeMs?: number; maxBytes?: number } {
  const ageName = `TESTGROUND_RETAIN_${kind}_AGE`;
  const age = (env[ageName] ?? defaultAge).trim().toLowerCase();
  return {
    ...(offValues.has(age) ? {} : { maxAgeMs: parseDuration(age, ageName) }),
    ...optionalSize(env, `TESTGROUND_RETAIN_${kind}_SIZE`, 'maxBytes'),
  };
}

function optionalSize<K extends string>(
  env: NodeJS.ProcessEnv,
  name: string,
  key: K,
): Partial<Record<K, number>> {
  const value = (env[name] ?? 'off').trim().toLowerCase();
  if (offValues.has(value)) return {};
  return { [key]: parseByteSize(value, name) } as Partial<Record<K, number>>;
}

export function splitListen(listen: string): { host: string; port: number } {
  const match = listenPattern.exec(listen);
  if (!match?.groups) throw new ValidationError(`listen address ${JSON.stringify(listen)} is not host:port`);
  return { host: match.groups.host!.replace(/^\[|\]$/g, ''), port: Number(match.groups.port) };
}

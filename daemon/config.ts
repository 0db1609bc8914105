import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { parseByteSize, parseDuration } from '../plan/units.ts';
import { ValidationError } from '../core/errors.ts';

const listenPattern = /^(?<host>[^:]+|\[[^\]]+\]):(?<port>\d{1,5})$/;

const configSchema = z.object({
  listen: z.string().regex(listenPattern, 'expected host:port, like 127.0.0.1:8042'),
  home: z.string().min(1),
  redisUrl: z.string().url().optional(),
  redisPrefix: z.string().regex(/^[A-Za-z0-9:_-]+$/, 'letters, digits, ":", "_" and "-" only'),
  workerConcurrency: z.coerce.number().int().min(1).max(64),
  token: z.string().min(8, 'at least 8 characters').optional(),
  maxUploadBytes: z.number().int().positive(),
  // BullMQ renews the lock while a run goes on; a shorter lock notices a silent worker sooner.
  jobLockMs: z.number().int().min(1_000, 'at least 1s').max(600_000, 'at most 10m'),
  // Request paths give up on a Redis that does not answer after this long (503 redis_unavailable).
  redisCommandTimeoutMs: z.number().int().min(100, 'at least 100ms').max(60_000, 'at most 60s'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
});

export type DaemonConfig = z.infer<typeof configSchema>;

/** Flags given to `testground daemon`; each overrides its environment variable. */
export interface DaemonFlags {
  listen?: string;
  home?: string;
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
    maxUploadBytes: parseByteSize(env.TESTGROUND_MAX_UPLOAD ?? '64MiB', 'TESTGROUND_MAX_UPLOAD'),
    jobLockMs: parseDuration(env.TESTGROUND_JOB_LOCK ?? '30s', 'TESTGROUND_JOB_LOCK'),
    redisCommandTimeoutMs: parseDuration(
      env.TESTGROUND_REDIS_COMMAND_TIMEOUT ?? '1500ms',
      'TESTGROUND_REDIS_COMMAND_TIMEOUT',
    ),
    logLevel: env.LOG_LEVEL ?? 'info',
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
      jobLockMs: 'TESTGROUND_JOB_LOCK',
      redisCommandTimeoutMs: 'TESTGROUND_REDIS_COMMAND_TIMEOUT',
      logLevel: 'LOG_LEVEL',
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

export function splitListen(listen: string): { host: string; port: number } {
  const match = listenPattern.exec(listen);
  if (!match?.groups) throw new ValidationError(`listen address ${JSON.stringify(listen)} is not host:port`);
  return { host: match.groups.host!.replace(/^\[|\]$/g, ''), port: Number(match.groups.port) };
}

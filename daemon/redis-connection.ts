import { Redis, type RedisOptions } from 'ioredis';

/** Where Redis is: a URL from REDIS_URL (`redis://`, `rediss://` or `unix:///path`), or the embedded server's socket. */
export type RedisTarget = { url: string } | { socketPath: string };

/**
 * Connection options shared by every client of the daemon. `maxRetriesPerRequest: null` is what BullMQ
 * requires, and it also makes ordinary commands wait through a Redis restart instead of failing fast.
 */
export function redisOptions(target: RedisTarget): RedisOptions {
  const common: RedisOptions = {
    maxRetriesPerRequest: null,
    enableAutoPipelining: true,
    retryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
  };
  if ('socketPath' in target) return { ...common, path: target.socketPath };
  const url = new URL(target.url);
  if (url.protocol === 'unix:') return { ...common, path: decodeURIComponent(url.pathname) };
  return {
    ...common,
    host: url.hostname,
    port: url.port ? Number(url.port) : 6379,
    username: url.username || undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
    db: url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0,
    tls: url.protocol === 'rediss:' ? {} : undefined,
  };
}

export function connectRedis(target: RedisTarget, overrides: RedisOptions = {}): Redis {
  return new Redis({ ...redisOptions(target), ...overrides });
}

/**
 * For the clients behind API requests: a command fails at once while Redis is away (no offline queue, no
 * retry of a command the dropped connection carried) and after `commandTimeoutMs` when Redis does not
 * answer, so a request answers 503 instead of hanging until Redis returns. The worker's clients keep
 * {@link redisOptions}: a run in progress should wait through a Redis restart.
 */
export function requestPathOptions(commandTimeoutMs: number): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    connectionName: 'testground-api',
  };
}

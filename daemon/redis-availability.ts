import type { Redis } from 'ioredis';
import { RedisUnavailableError } from '../core/errors.ts';

// What ioredis throws when Redis is away rather than when it refused a command: no connection and no
// offline queue, a connection dropped with the command in flight, no answer within the command timeout.
// Only ioredis' own wording: a file's ENOENT from a route must stay the internal error it is.
const unavailableMessages = [
  /^Stream isn't writeable and enableOfflineQueue options is false/,
  /^Connection is closed\.?$/,
  /^Command timed out$/,
];

/**
 * Redis as the API's request paths see it (the API's `RedisAvailabilityPort`): a request arriving while
 * the request client is not connected fails at once, and a Redis error a request met while it went away
 * reads as `redis_unavailable` (503) rather than an internal error.
 */
export class RedisAvailability {
  private readonly redis: Pick<Redis, 'status'>;
  private readonly commandTimeoutMs: number;

  constructor(redis: Pick<Redis, 'status'>, commandTimeoutMs: number) {
    this.redis = redis;
    this.commandTimeoutMs = commandTimeoutMs;
  }

  assertAvailable(): void {
    if (this.redis.status !== 'ready') throw this.unavailable(`connection ${this.redis.status}`);
  }

  explain(error: unknown): RedisUnavailableError | undefined {
    if (error instanceof RedisUnavailableError) return error;
    if (!(error instanceof Error)) return undefined;
    // A server still loading its data after a restart answers every command with LOADING.
    const loading = error.name === 'ReplyError' && error.message.startsWith('LOADING ');
    if (
      loading ||
      error.name === 'MaxRetriesPerRequestError' ||
      unavailableMessages.some((pattern) => pattern.test(error.message))
    ) {
      const detail = /^Command timed out/.test(error.message)
        ? `no answer within ${this.commandTimeoutMs} ms (TESTGROUND_REDIS_COMMAND_TIMEOUT)`
        : error.message;
      return this.unavailable(detail);
    }
    return undefined;
  }

  private unavailable(detail: string): RedisUnavailableError {
    return new RedisUnavailableError(
      `Redis is unavailable (${detail}); the daemon cannot read or change tasks until it is back: try again shortly`,
      [{ path: 'redis', message: detail }],
    );
  }
}

import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** What the daemon found when Redis no longer held the data it wrote. */
export interface RedisDataLoss {
  /** When the daemon noticed. */
  at: string;
  message: string;
}

export interface RedisEpochOptions {
  redis: Pick<Redis, 'get' | 'set'>;
  prefix: string;
  /** Where the daemon remembers the epoch across its own restarts (`<home>/redis-epoch`). */
  file: string;
  logger: Logger;
  /** Called once per loss, with its description, so the tasks in progress can be ended saying so. */
  onLost: (loss: RedisDataLoss) => Promise<void> | void;
  now?: () => Date;
}

/**
 * Tells a Redis that lost its data from one that merely went away. The first daemon to reach an empty
 * Redis writes `<prefix>:epoch`, a random value; each daemon remembers the value it saw (in memory and in
 * its home). A Redis that comes back without the key, or with another value, restarted without its
 * data, was flushed, or is another Redis: the tasks and queued jobs the daemon knew of are gone, and
 * without this check they would vanish silently (404s, queued tasks that never run).
 */
export class RedisEpoch {
  private readonly options: RedisEpochOptions;
  private known: string | undefined;
  private loss: RedisDataLoss | undefined;
  private checking: Promise<void> = Promise.resolve();

  constructor(options: RedisEpochOptions) {
    this.options = options;
  }

  private get key(): string {
    return `${this.options.prefix}:epoch`;
  }

  /** The last loss noticed, if any (reported on `/health` until the daemon restarts). */
  get lost(): RedisDataLoss | undefined {
    return this.loss;
  }

  /** The epoch this daemon works in, once checked. */
  get current(): string | undefined {
    return this.known;
  }

  /** Compares Redis' epoch with the one remembered; checks run one at a time. */
  check(): Promise<void> {
    const next = this.checking.then(() => this.checkOnce());
    this.checking = next.catch(() => undefined);
    return next;
  }

  private async checkOnce(): Promise<void> {
    const { redis, file } = this.options;
    const remembered = this.known ?? (await readRemembered(file));
    let current = await redis.get(this.key);
    if (current === null) {
      const fresh = `${new Date().toISOString()}/${randomBytes(6).toString('hex')}`;
      // NX: daemons sharing the Redis agree on the first value written.
      current = (await redis.set(this.key, fresh, 'NX')) === 'OK' ? fresh : await redis.get(this.key);
      if (current === null) throw new Error(`${this.key} vanished right after it was written`);
    }
    if (remembered !== undefined && current !== remembered) {
      const loss: RedisDataLoss = {
        at: (this.options.now?.() ?? new Date()).toISOString(),
        message: `Redis lost its data: it no longer holds epoch ${remembered} (${this.key}) this daemon wrote or saw before, but ${current}; it restarted without persistence, was flushed, or REDIS_URL points at another Redis. Tasks and queued jobs recorded before are gone`,
      };
      this.loss = loss;
      this.options.logger.error({ expected: remembered, found: current }, loss.message);
      await this.options.onLost(loss);
    }
    if (current !== this.known) {
      this.known = current;
      await writeFile(file, `${current}\n`);
    }
  }
}

async function readRemembered(file: string): Promise<string | undefined> {
  try {
    return (await readFile(file, 'utf8')).trim() || undefined;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

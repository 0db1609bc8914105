import type { Redis } from 'ioredis';
import type { LogEntry, LogEntryWithOffset, TaskLog } from '../core/task-log.ts';
import { defaultLiveLogBudget, TaskLogWriter, type LiveLogBudget } from './task-log-writer.ts';

const retainAfterEndSeconds = 7 * 24 * 3600;
const pageSize = 1000;

// A batch of entries in one command: per-command overhead, not Redis, bounds how fast a log is written.
const appendManyScript = `
for i = 1, #ARGV do redis.call('XADD', KEYS[1], '*', 'e', ARGV[i]) end
return #ARGV`;

interface AppendManyCommand {
  tgLogAppendMany(key: string, ...entries: string[]): Promise<number>;
}

export interface FollowOptions {
  /** Aborting it ends the iteration and closes the follower's connection at once, even mid-wait. */
  signal?: AbortSignal;
  /**
   * Asked after a wait that brought nothing: whether the task has ended anyway. The `end` entry may be
   * missing (Redis refused the append, or lost its data), and then the task record is the authority.
   */
  hasEnded?: () => Promise<boolean>;
}

export interface LogBusOptions {
  now?: () => Date;
  /**
   * How long a follower's blocking read waits before it asks `hasEnded`: short enough to notice a task
   * whose end entry is missing, long enough to cost nothing while idle. 2000 ms unless given.
   */
  followBlockMs?: number;
  /**
   * How much instance output each task's live log takes (what is past it is counted and said, and kept on
   * disk only): a chatty plan must not fill Redis. Nothing is ever trimmed from a stream.
   */
  budget?: LiveLogBudget;
}

/**
 * A task's live log as a Redis Stream (`<prefix>:log:<task>`), so any client of any daemon sharing the
 * Redis can follow it from any offset. The last entry of a finished task is always `end`.
 */
export class LogBus {
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly now: () => Date;
  private readonly followBlockMs: number;
  private readonly budget: LiveLogBudget;
  /**
   * The writer of each task carried here, until its end: every append of such a task goes through it,
   * so a state change or the end never overtakes output still waiting to be sent.
   */
  private readonly writers = new Map<string, TaskLogWriter>();

  constructor(redis: Redis, prefix: string, options: LogBusOptions = {}) {
    this.redis = redis;
    this.prefix = prefix;
    this.now = options.now ?? (() => new Date());
    this.followBlockMs = options.followBlockMs ?? 2_000;
    this.budget = options.budget ?? defaultLiveLogBudget;
    this.redis.defineCommand('tgLogAppendMany', { numberOfKeys: 1, lua: appendManyScript });
  }

  private key(taskId: string): string {
    return `${this.prefix}:log:${taskId}`;
  }

  append(taskId: string, entry: LogEntry): Promise<unknown> {
    const writer = this.writers.get(taskId);
    if (writer) return writer.appendNow(entry);
    return this.redis.xadd(this.key(taskId), '*', 'e', JSON.stringify(entry));
  }

  async end(taskId: string, entry: Omit<Extract<LogEntry, { kind: 'end' }>, 'kind' | 'ts'>): Promise<void> {
    try {
      await this.append(taskId, { kind: 'end', ts: this.now().toISOString(), ...entry });
    } finally {
      this.writers.delete(taskId);
    }
    await this.redis.expire(this.key(taskId), retainAfterEndSeconds);
  }

  /** At most `count` (default 1000) entries after `offset`, without waiting. */
  read(taskId: string, offset: string, options: { count?: number } = {}): Promise<LogEntryWithOffset[]> {
    return this.readWith(this.redis, taskId, offset, options.count ?? pageSize);
  }

  /** Every entry after `offset` that is in the log now, a page at a time. */
  async *history(taskId: string, offset: string): AsyncGenerator<LogEntryWithOffset> {
    for (let cursor = offset; ;) {
      const entries = await this.read(taskId, cursor);
      yield* entries;
      if (entries.length < pageSize) return;
      cursor = entries.at(-1)!.offset;
    }
  }

  /**
   * Entries after `offset` as they are appended, until the `end` entry (or `hasEnded` says the task
   * ended). Blocking reads need a connection of their own: it is opened here and closed when the
   * consumer stops iterating, the signal aborts, or the log ends.
   */
  async *follow(
    taskId: string,
    offset: string,
    options: FollowOptions = {},
  ): AsyncGenerator<LogEntryWithOffset> {
    const { signal } = options;
    if (signal?.aborted) return;
    const reader = this.redis.duplicate({
      // Fails fast instead of queueing when Redis goes away: the client resumes from its last offset.
      enableAutoPipelining: false,
      maxRetriesPerRequest: 1,
      // It connects on its first read, which must wait for that (the API's client has no offline queue).
      enableOfflineQueue: true,
      // Named, so `CLIENT LIST` shows who follows which task.
      connectionName: `${this.prefix}:log-follower:${taskId}`,
    });
    // Its failures reach the consumer as the rejected read; the event would only repeat them.
    reader.on('error', () => undefined);
    const close = (): void => reader.disconnect();
    signal?.addEventListener('abort', close, { once: true });
    try {
      for (let cursor = offset; !signal?.aborted;) {
        const entries = await this.readWith(reader, taskId, cursor, pageSize, this.followBlockMs);
        for (const entry of entries) {
          yield entry;
          cursor = entry.offset;
          if (entry.kind === 'end') return;
        }
        if (entries.length === 0 && (await options.hasEnded?.())) return;
      }
    } catch (error) {
      // Disconnecting rejects the pending read: that is how an abort interrupts a wait.
      if (!signal?.aborted) throw error;
    } finally {
      signal?.removeEventListener('abort', close);
      reader.disconnect();
    }
  }

  /**
   * The `TaskLog` builders and runners of a task write to, one per task until its end: appends are
   * batched (one round trip at a time, in order), instance output is held to the live-log budget, and
   * `backpressure()` tells producers that can wait when to.
   */
  taskLog(taskId: string, onError: (error: unknown) => void): TaskLog {
    let writer = this.writers.get(taskId);
    if (!writer) {
      const key = this.key(taskId);
      writer = new TaskLogWriter({
        send: async (entries) => {
          await (this.redis as unknown as AppendManyCommand).tgLogAppendMany(key, ...entries);
        },
        onError,
        budget: this.budget,
        now: this.now,
      });
      this.writers.set(taskId, writer);
    }
    return writer;
  }

  private async readWith(
    client: Redis,
    taskId: string,
    offset: string,
    count: number,
    blockMs?: number,
  ): Promise<LogEntryWithOffset[]> {
    const reply =
      blockMs === undefined
        ? await client.xread('COUNT', count, 'STREAMS', this.key(taskId), offset)
        : await client.xread('COUNT', count, 'BLOCK', blockMs, 'STREAMS', this.key(taskId), offset);
    const entries = reply?.[0]?.[1] ?? [];
    return entries.map(([id, fields]) => {
      const encoded = fields[fields.indexOf('e') + 1] ?? '{}';
      return { ...(JSON.parse(encoded) as LogEntry), offset: id };
    });
  }
}

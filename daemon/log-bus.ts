import type { Redis } from 'ioredis';
import type { TaskLog } from '../core/task-log.ts';

/** One line of a task's log, as stored and as served (NDJSON) with its stream offset. */
export type LogEntry =
  | { kind: 'log'; ts: string; level: 'info' | 'warn' | 'error'; msg: string }
  | { kind: 'output'; ts: string; group: string; instance: number; stream: 'stdout' | 'stderr'; line: string }
  | { kind: 'instance_end'; ts: string; group: string; instance: number; outcome: string; reason: string }
  | { kind: 'state'; ts: string; state: string }
  | { kind: 'end'; ts: string; state: string; outcome?: string; error?: string };

export type LogEntryWithOffset = LogEntry & { offset: string };

/** Offset meaning "from the beginning". Stream ids are `<ms>-<seq>`; reading after `0` returns all. */
export const logStart = '0';

// A chatty plan must not fill Redis: keep roughly the newest entries of each task.
const maxEntriesPerTask = 200_000;
const retainAfterEndSeconds = 7 * 24 * 3600;

/**
 * A task's live log as a Redis Stream (`<prefix>:log:<task>`), so any client of any daemon sharing the
 * Redis can follow it from any offset. The last entry of a finished task is always `end`.
 */
export class LogBus {
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly now: () => Date;

  constructor(redis: Redis, prefix: string, now: () => Date = () => new Date()) {
    this.redis = redis;
    this.prefix = prefix;
    this.now = now;
  }

  private key(taskId: string): string {
    return `${this.prefix}:log:${taskId}`;
  }

  append(taskId: string, entry: LogEntry): Promise<unknown> {
    return this.redis.xadd(
      this.key(taskId),
      'MAXLEN',
      '~',
      maxEntriesPerTask,
      '*',
      'e',
      JSON.stringify(entry),
    );
  }

  async end(taskId: string, entry: Omit<Extract<LogEntry, { kind: 'end' }>, 'kind' | 'ts'>): Promise<void> {
    await this.append(taskId, { kind: 'end', ts: this.now().toISOString(), ...entry });
    await this.redis.expire(this.key(taskId), retainAfterEndSeconds);
  }

  /**
   * Entries after `offset`. With `blockMs`, waits up to that long for new ones; blocking needs a
   * connection of its own, so the caller passes one (`reader`) it does not share.
   */
  async read(
    taskId: string,
    offset: string,
    options: { count?: number; blockMs?: number; reader?: Redis } = {},
  ): Promise<LogEntryWithOffset[]> {
    const count = options.count ?? 1000;
    const client = options.reader ?? this.redis;
    const reply =
      options.blockMs === undefined
        ? await client.xread('COUNT', count, 'STREAMS', this.key(taskId), offset)
        : await client.xread('COUNT', count, 'BLOCK', options.blockMs, 'STREAMS', this.key(taskId), offset);
    const entries = reply?.[0]?.[1] ?? [];
    return entries.map(([id, fields]) => {
      const encoded = fields[fields.indexOf('e') + 1] ?? '{}';
      return { ...(JSON.parse(encoded) as LogEntry), offset: id };
    });
  }

  /** A `TaskLog` for builders and runners; appends are fire-and-forget but never lose their order. */
  taskLog(taskId: string, onError: (error: unknown) => void): TaskLog {
    const ts = (): string => this.now().toISOString();
    const send = (entry: LogEntry): void => {
      this.append(taskId, entry).catch(onError);
    };
    return {
      info: (msg) => send({ kind: 'log', ts: ts(), level: 'info', msg }),
      warn: (msg) => send({ kind: 'log', ts: ts(), level: 'warn', msg }),
      error: (msg) => send({ kind: 'log', ts: ts(), level: 'error', msg }),
      output: (group, instance, stream, line) =>
        send({ kind: 'output', ts: ts(), group, instance, stream, line }),
      instanceEnd: (group, instance, outcome, reason) =>
        send({ kind: 'instance_end', ts: ts(), group, instance, outcome, reason }),
    };
  }
}

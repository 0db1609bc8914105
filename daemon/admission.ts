import type { Redis } from 'ioredis';
import { TooLargeError, TooManyRequestsError } from '../core/errors.ts';
import { isTerminal, type TaskState } from '../core/task.ts';

/**
 * Whose limits a submission counts against. The one place that says who a submission belongs to for
 * quotas: the creator recorded on the task (once tokens name users, the token's user).
 */
export function quotaUser(submission: { createdBy: string }): string {
  return submission.createdBy;
}

export interface AdmissionLimits {
  /** Unfinished tasks one user may have; 0 is no limit. */
  maxActivePerUser: number;
  /** Unfinished tasks of all users together; 0 is no limit. */
  maxActive: number;
  /** Bytes of plan archives one user may upload within `uploadQuotaWindowMs`; no quota when absent. */
  uploadQuotaBytes?: number;
  uploadQuotaWindowMs: number;
}

export interface AdmissionDeps {
  redis: Redis;
  prefix: string;
  limits: AdmissionLimits;
  /** Each task's state (undefined: no record); the task store's. */
  states: (ids: readonly string[]) => Promise<(TaskState | undefined)[]>;
  now?: () => Date;
}

// A full queue frees a slot when a task ends, which no one can predict: clients are asked to come back
// after a while rather than at once.
const queueRetryAfterMs = 30_000;
// A reservation whose task never got a record is a submission that failed without releasing it (its daemon
// died mid-submit); a real submission creates its record well within this.
const orphanReservationMs = 600_000;

/**
 * Decides whether a submission may be queued: the queue limit per user and in total (unfinished tasks:
 * queued, building or running), and the upload quota per user over a sliding window. A refusal is a 429
 * with `Retry-After`; an archive larger than the whole quota is a 413, since waiting cannot help.
 *
 * Counts live in Redis (sorted sets of task ids by submit time), so daemons sharing a Redis share the
 * limits. A task is reserved before it is counted, so two submissions racing for the last slot can both
 * be refused but never both admitted; ended tasks are pruned from the sets as they are counted.
 */
export class Admission {
  private readonly deps: AdmissionDeps;
  private readonly now: () => Date;

  constructor(deps: AdmissionDeps) {
    this.deps = deps;
    this.now = deps.now ?? (() => new Date());
  }

  private activeKey(user?: string): string {
    return user === undefined
      ? `${this.deps.prefix}:active`
      : `${this.deps.prefix}:active:${encodeURIComponent(user)}`;
  }

  private uploadsKey(user: string): string {
    return `${this.deps.prefix}:uploads:${encodeURIComponent(user)}`;
  }

  /** Admits task `taskId` of `user` with an archive of `uploadBytes`, or throws saying which limit and when to retry. */
  async admit(user: string, taskId: string, uploadBytes: number): Promise<void> {
    const { limits } = this.deps;
    const at = this.now().getTime();
    await this.deps.redis
      .multi()
      .zadd(this.activeKey(user), at, taskId)
      .zadd(this.activeKey(), at, taskId)
      .exec();
    try {
      await this.checkActive(
        this.activeKey(user),
        limits.maxActivePerUser,
        (count) =>
          `user ${JSON.stringify(user)} has ${count} unfinished tasks (queued, building or running), the most one ` +
          `user may have (TESTGROUND_MAX_ACTIVE_PER_USER=${limits.maxActivePerUser}); wait for some to end or ` +
          `cancel them, then submit again`,
      );
      await this.checkActive(
        this.activeKey(),
        limits.maxActive,
        (count) =>
          `the daemon has ${count} unfinished tasks (queued, building or running), the most it takes ` +
          `(TESTGROUND_MAX_ACTIVE=${limits.maxActive}); submit again once some have ended`,
      );
      await this.checkUploads(user, taskId, uploadBytes, at);
    } catch (error) {
      await this.release(user, taskId);
      throw error;
    }
  }

  /** Gives back what `admit` took, for a submission that failed after it (a bad plan, a bad composition). */
  async release(user: string, taskId: string): Promise<void> {
    const uploads = await this.deps.redis.zrange(this.uploadsKey(user), 0, -1);
    const mine = uploads.filter((member) => member.startsWith(`${taskId}:`));
    const transaction = this.deps.redis
      .multi()
      .zrem(this.activeKey(user), taskId)
      .zrem(this.activeKey(), taskId);
    if (mine.length > 0) transaction.zrem(this.uploadsKey(user), ...mine);
    await transaction.exec();
  }

  /** Counts the set's unfinished tasks (this one included), dropping ended ones; throws when over `limit`. */
  private async checkActive(key: string, limit: number, explain: (count: number) => string): Promise<void> {
    if (limit === 0) return;
    const entries = await this.deps.redis.zrange(key, 0, -1, 'WITHSCORES');
    const ids: string[] = [];
    const scores: number[] = [];
    for (let index = 0; index + 1 < entries.length; index += 2) {
      ids.push(entries[index]!);
      scores.push(Number(entries[index + 1]));
    }
    const states = await this.deps.states(ids);
    const now = this.now().getTime();
    const ended = ids.filter((_id, index) => {
      const state = states[index];
      return state === undefined ? now - scores[index]! > orphanReservationMs : isTerminal(state);
    });
    if (ended.length > 0) await this.deps.redis.zrem(key, ...ended);
    const count = ids.length - ended.length;
    if (count > limit) {
      throw new TooManyRequestsError(explain(count - 1), queueRetryAfterMs, [
        { path: 'queue', message: `${count - 1} unfinished tasks, limit ${limit}` },
      ]);
    }
  }

  private async checkUploads(user: string, taskId: string, bytes: number, at: number): Promise<void> {
    const quota = this.deps.limits.uploadQuotaBytes;
    if (quota === undefined) return;
    const windowMs = this.deps.limits.uploadQuotaWindowMs;
    const hint = `(TESTGROUND_UPLOAD_QUOTA=${quota} bytes per ${windowMs / 1000} s)`;
    if (bytes > quota) {
      throw new TooLargeError(
        `the plan archive is ${bytes} bytes, more than the whole upload quota ${hint}; leave build outputs and data out of the plan (.testgroundignore)`,
        [{ path: 'plan', message: `${bytes} bytes, quota ${quota}` }],
      );
    }
    const key = this.uploadsKey(user);
    await this.deps.redis
      .multi()
      .zremrangebyscore(key, '-inf', at - windowMs)
      .zadd(key, at, `${taskId}:${bytes}`)
      .pexpire(key, windowMs)
      .exec();
    const entries = await this.deps.redis.zrange(key, 0, -1, 'WITHSCORES');
    const uploads: { bytes: number; at: number }[] = [];
    for (let index = 0; index + 1 < entries.length; index += 2) {
      const member = entries[index]!;
      uploads.push({
        bytes: Number(member.slice(member.lastIndexOf(':') + 1)),
        at: Number(entries[index + 1]),
      });
    }
    let total = uploads.reduce((sum, upload) => sum + upload.bytes, 0);
    if (total <= quota) return;
    // When enough of the oldest uploads leave the window for this one to fit.
    const others = uploads.filter((upload) => !(upload.at === at && upload.bytes === bytes));
    let freeAt = at;
    for (const upload of others) {
      if (total <= quota) break;
      total -= upload.bytes;
      freeAt = upload.at + windowMs;
    }
    const used = uploads.reduce((sum, upload) => sum + upload.bytes, 0) - bytes;
    throw new TooManyRequestsError(
      `user ${JSON.stringify(user)} uploaded ${used} bytes of plans in the last ${windowMs / 1000} s; ${bytes} more would exceed the upload quota ${hint}`,
      Math.max(1_000, freeAt - this.now().getTime()),
      [{ path: 'plan', message: `${used} + ${bytes} bytes exceed the quota of ${quota}` }],
    );
  }
}

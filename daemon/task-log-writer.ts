import type { InstanceOutcome } from '../core/run.ts';
import type { LogEntry, TaskLog } from '../core/task-log.ts';
import { formatBytes } from '../runners/local-docker/host-resource-clamp.ts';

/** How much instance output a task's live log takes; what is past it stays on disk only. */
export interface LiveLogBudget {
  /** Bytes of output entries one instance adds to the live log in one run. */
  instanceBytes: number;
  /** Bytes of output entries all instances of one task add together, over all its runs. */
  taskBytes: number;
}

export const defaultLiveLogBudget: LiveLogBudget = {
  instanceBytes: 4 * 1024 * 1024,
  taskBytes: 32 * 1024 * 1024,
};

// What an output entry costs beyond its line: the JSON envelope, the stream id and Redis's own overhead.
const entryOverheadBytes = 120;
// Builders and runners log a few lines per instance; a loop that logs without end is cut here.
const maxLogEntries = 50_000;
// Entries waiting for Redis: past the high mark producers are asked to wait, below the low mark they resume.
const highWaterBytes = 1024 * 1024;
const lowWaterBytes = 256 * 1024;
// A producer waits at most this long for a round trip: the live log is not worth stalling a plan.
const maxWaitMs = 1_000;
// Past this much waiting, instance output is left out (and counted) until Redis catches up.
const hardCapBytes = 8 * 1024 * 1024;
// One round trip carries at most this much.
const maxBatchEntries = 1_000;
const maxBatchBytes = 512 * 1024;

interface InstanceUsage {
  bytes: number;
  /** Why its lines stopped reaching the live log, once they did. */
  cut?: 'instance' | 'task';
  droppedLines: number;
  droppedBytes: number;
}

interface Queued {
  encoded: string;
  seq: number;
}

interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export interface TaskLogWriterOptions {
  /** Appends entries (JSON text) to the task's stream in this order, in one round trip. */
  send: (entries: readonly string[]) => Promise<void>;
  /** A batch Redis refused; its entries are lost, the log goes on. */
  onError: (error: unknown) => void;
  budget?: LiveLogBudget;
  now?: () => Date;
}

/**
 * The writing side of one task's live log: entries go to Redis in batches, one round trip at a time and in
 * order; instance output is admitted within the live-log budget and counted when it is not, and the log
 * says what it left out (once when a budget is reached, and per instance when that instance ends). State
 * changes and other entries the daemon appends (`appendNow`) are never dropped and never trimmed.
 */
export class TaskLogWriter implements TaskLog {
  private readonly options: TaskLogWriterOptions;
  private readonly budget: LiveLogBudget;
  private readonly now: () => Date;
  private readonly usage = new Map<string, InstanceUsage>();
  private readonly queue: Queued[] = [];
  private readonly waiters: Waiter[] = [];
  private readonly drainWaiters: (() => void)[] = [];
  private queuedBytes = 0;
  private nextSeq = 0;
  private pumping = false;
  private taskBytes = 0;
  private taskCutNoted = false;
  private behindNoted = false;
  /** When the round trip in flight started. */
  private sendingSince: number | undefined;
  private logEntries = 0;
  private lastTs = { ms: Number.NaN, text: '' };

  constructor(options: TaskLogWriterOptions) {
    this.options = options;
    this.budget = options.budget ?? defaultLiveLogBudget;
    this.now = options.now ?? (() => new Date());
  }

  info(msg: string): void {
    this.log('info', msg);
  }

  warn(msg: string): void {
    this.log('warn', msg);
  }

  error(msg: string): void {
    this.log('error', msg);
  }

  output(group: string, instance: number, stream: 'stdout' | 'stderr', line: string): void {
    const usage = this.usageOf(group, instance);
    // Checked before anything is encoded: past its budget an instance's line costs a comparison.
    const cost = line.length + group.length + entryOverheadBytes;
    if (usage.cut === undefined) {
      if (usage.bytes + cost > this.budget.instanceBytes) {
        usage.cut = 'instance';
        this.enqueue({
          kind: 'log',
          ts: this.ts(),
          level: 'warn',
          msg:
            `${group}[${instance}]: live log budget of ${formatBytes(this.budget.instanceBytes)} per instance reached; ` +
            'its further output is not shown live (run.out and run.err in the outputs keep it, up to the output quota)',
        });
      } else if (this.taskBytes + cost > this.budget.taskBytes) {
        usage.cut = 'task';
        if (!this.taskCutNoted) {
          this.taskCutNoted = true;
          this.enqueue({
            kind: 'log',
            ts: this.ts(),
            level: 'warn',
            msg:
              `live log budget of ${formatBytes(this.budget.taskBytes)} per task reached; instances' further output ` +
              'is not shown live (run.out and run.err in the outputs keep it, up to the output quota)',
          });
        }
      }
    }
    const behind = usage.cut === undefined && this.queuedBytes > hardCapBytes;
    if (behind && !this.behindNoted) {
      this.behindNoted = true;
      this.enqueue({
        kind: 'log',
        ts: this.ts(),
        level: 'warn',
        msg:
          `the live log fell ${formatBytes(hardCapBytes)} behind (Redis is slow or away); instance output is ` +
          'left out of it until it catches up (run.out and run.err in the outputs keep it, up to the output quota)',
      });
    }
    if (usage.cut !== undefined || behind) {
      usage.droppedLines += 1;
      usage.droppedBytes += line.length + 1;
      return;
    }
    usage.bytes += cost;
    this.taskBytes += cost;
    this.enqueue({ kind: 'output', ts: this.ts(), group, instance, stream, line });
  }

  instanceEnd(group: string, instance: number, outcome: InstanceOutcome, reason: string): void {
    const key = usageKey(group, instance);
    const usage = this.usage.get(key);
    // The same group and index come back in the task's next run, with a budget of their own.
    this.usage.delete(key);
    if (usage && usage.droppedLines > 0) {
      const budget =
        usage.cut === 'instance'
          ? `budget ${formatBytes(this.budget.instanceBytes)} per instance`
          : usage.cut === 'task'
            ? `budget ${formatBytes(this.budget.taskBytes)} per task`
            : 'the live log fell behind';
      this.enqueue({
        kind: 'log',
        ts: this.ts(),
        level: 'warn',
        msg:
          `${group}[${instance}]: ${usage.droppedLines} output lines (${formatBytes(usage.droppedBytes)}) were not ` +
          `shown in the live log (${budget}); run.out and run.err in the outputs keep them, up to the output quota`,
      });
    }
    this.enqueue({ kind: 'instance_end', ts: this.ts(), group, instance, outcome, reason });
  }

  backpressure(): Promise<void> | undefined {
    if (this.queuedBytes <= highWaterBytes) return undefined;
    // A round trip that has not come back for a while: Redis is away, and waiting would stall the plan.
    // Producers go on; what does not fit under the hard cap is left out of the live log and counted.
    const waitedMs = this.sendingSince === undefined ? 0 : Date.now() - this.sendingSince;
    if (waitedMs >= maxWaitMs) return undefined;
    return new Promise((resolve) => {
      this.drainWaiters.push(resolve);
      setTimeout(resolve, maxWaitMs - waitedMs).unref();
    });
  }

  /** Appends an entry that must not be lost (a state change, the end); resolves once Redis has it. */
  appendNow(entry: LogEntry): Promise<void> {
    const seq = this.enqueue(entry);
    return new Promise((resolve, reject) => this.waiters.push({ seq, resolve, reject }));
  }

  private log(level: 'info' | 'warn' | 'error', msg: string): void {
    if (this.logEntries >= maxLogEntries) return;
    this.logEntries += 1;
    if (this.logEntries === maxLogEntries) {
      this.enqueue({
        kind: 'log',
        ts: this.ts(),
        level: 'warn',
        msg: `the task logged ${maxLogEntries} messages; further builder and runner messages are not shown live`,
      });
      return;
    }
    this.enqueue({ kind: 'log', ts: this.ts(), level, msg });
  }

  private usageOf(group: string, instance: number): InstanceUsage {
    const key = usageKey(group, instance);
    let usage = this.usage.get(key);
    if (!usage) {
      usage = { bytes: 0, droppedLines: 0, droppedBytes: 0 };
      this.usage.set(key, usage);
    }
    return usage;
  }

  /** Formatting a date costs more than the rest of an entry: lines of the same millisecond share it. */
  private ts(): string {
    const now = this.now();
    const ms = now.getTime();
    if (ms !== this.lastTs.ms) this.lastTs = { ms, text: now.toISOString() };
    return this.lastTs.text;
  }

  private enqueue(entry: LogEntry): number {
    const encoded = JSON.stringify(entry);
    const seq = this.nextSeq++;
    this.queue.push({ encoded, seq });
    this.queuedBytes += encoded.length;
    if (!this.pumping) void this.pump();
    return seq;
  }

  /** Sends what is queued, a batch per round trip; entries queued meanwhile form the next batch. */
  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.queue.length > 0) {
        let bytes = 0;
        let count = 0;
        while (count < this.queue.length && count < maxBatchEntries && bytes < maxBatchBytes) {
          bytes += this.queue[count]!.encoded.length;
          count += 1;
        }
        const batch = this.queue.splice(0, count);
        let failure: unknown;
        this.sendingSince = Date.now();
        try {
          await this.options.send(batch.map((queued) => queued.encoded));
        } catch (error) {
          failure = error;
          this.options.onError(error);
        }
        this.sendingSince = undefined;
        this.queuedBytes -= bytes;
        this.settle(batch.at(-1)!.seq, failure);
        if (this.queuedBytes <= lowWaterBytes) {
          for (const resolve of this.drainWaiters.splice(0)) resolve();
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  private settle(sentUpTo: number, failure: unknown): void {
    let kept = 0;
    for (const waiter of this.waiters) {
      if (waiter.seq > sentUpTo) {
        this.waiters[kept++] = waiter;
      } else if (failure === undefined) {
        waiter.resolve();
      } else {
        waiter.reject(failure);
      }
    }
    this.waiters.length = kept;
  }
}

function usageKey(group: string, instance: number): string {
  return `${group}\0${instance}`;
}

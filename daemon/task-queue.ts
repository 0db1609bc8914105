import { Queue, Worker, type Job } from 'bullmq';
import type { RedisOptions } from 'ioredis';
import type { Logger } from 'pino';

const queueName = 'tasks';

export interface TaskQueueOptions {
  connection: RedisOptions;
  /** Key prefix in Redis, so several deployments (or tests) can share one server. */
  prefix: string;
  concurrency: number;
  /**
   * How long a worker's claim on a job lasts without renewal (default 30 s). BullMQ renews it while the
   * run goes on; a worker silent for this long (its daemon killed, Redis away) has its job handed out again.
   */
  lockMs?: number;
  logger: Logger;
}

export type TaskProcessor = (taskId: string) => Promise<void>;

/**
 * The only place BullMQ objects are created. A job carries only the task id; everything else lives on
 * the task record, so a job is cheap to remove and a worker always reads the current record.
 */
export class TaskQueue {
  private readonly queue: Queue;
  private readonly options: TaskQueueOptions;
  private worker: Worker | undefined;
  private closed: Promise<void> | undefined;

  constructor(options: TaskQueueOptions) {
    this.options = options;
    this.queue = new Queue(queueName, { connection: options.connection, prefix: `${options.prefix}:bull` });
    this.queue.on('error', (error) => options.logger.warn({ err: error }, 'task queue: redis error'));
  }

  async enqueue(taskId: string): Promise<void> {
    await this.queue.add(
      'run',
      { taskId },
      { jobId: taskId, attempts: 1, removeOnComplete: true, removeOnFail: 1000 },
    );
  }

  /** Removes a job that no worker has taken yet; returns false when it is already being worked on. */
  async removeWaiting(taskId: string): Promise<boolean> {
    const job = await this.queue.getJob(taskId);
    if (!job) return false;
    try {
      await job.remove();
      return true;
    } catch {
      return false;
    }
  }

  /** Starts taking jobs; resolves once the queue and the worker are connected. */
  async startWorker(process: TaskProcessor): Promise<void> {
    if (this.worker) throw new Error('the task worker is already running');
    this.worker = new Worker(queueName, async (job: Job<{ taskId: string }>) => process(job.data.taskId), {
      connection: this.options.connection,
      prefix: `${this.options.prefix}:bull`,
      concurrency: this.options.concurrency,
      // A run can take far longer than a lock; BullMQ renews the lock while the processor is alive.
      lockDuration: this.options.lockMs ?? 30_000,
      // Look for stalled jobs as often as a lock lasts (BullMQ's defaults are 30 s for both).
      stalledInterval: this.options.lockMs ?? 30_000,
      maxStalledCount: 1,
    });
    this.worker.on('error', (error) => this.options.logger.warn({ err: error }, 'task worker: redis error'));
    this.worker.on('failed', (job, error) =>
      this.options.logger.error({ err: error, taskId: job?.data.taskId }, 'task processor threw'),
    );
    // Closing a queue whose connections are still being set up leaves rejections nobody handles.
    await Promise.all([this.queue.waitUntilReady(), this.worker.waitUntilReady()]);
  }

  async counts(): Promise<Record<string, number>> {
    return this.queue.getJobCounts('waiting', 'active', 'delayed');
  }

  /** Stops taking jobs, lets running ones finish, and closes connections; safe to call twice. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      await this.worker?.close();
      await this.queue.close();
    })();
    return this.closed;
  }
}

/**
 * Watches the tasks of a run's services through the manager: one list of the run's tasks and one of the
 * nodes per tick, however many instances there are (the lesson of clusters whose API broke under one
 * watch per instance). Waiters ask for a service's {@link TaskFate} to reach a kind they name.
 */
import { RunnerError } from '../../core/errors.ts';
import type { NodeSummary, SwarmClient, TaskState } from '../../docker/swarm-client.ts';
import { taskFate, type TaskFate } from './task-fate.ts';

export interface TaskWatcherOptions {
  swarm: Pick<SwarmClient, 'listTasks' | 'listNodes' | 'endpoint'>;
  /** Time between two lists; default 500 ms. */
  intervalMs?: number;
  /** How long a task may stay pending with a scheduling error before it counts as unschedulable; default 10 s. */
  unschedulableGraceMs?: number;
  /** How long the manager may fail to answer before every waiter fails; default 30 s. */
  managerGraceMs?: number;
}

interface Waiter {
  serviceId: string;
  wanted: (fate: TaskFate) => boolean;
  resolve: (fate: TaskFate) => void;
  reject: (error: Error) => void;
}

export class TaskWatcher {
  private readonly options: Required<Omit<TaskWatcherOptions, 'swarm'>> & Pick<TaskWatcherOptions, 'swarm'>;
  private readonly services = new Set<string>();
  private readonly tasks = new Map<string, TaskState>();
  private readonly nodes = new Map<string, NodeSummary>();
  private readonly unschedulableSince = new Map<string, number>();
  /** Services whose task was listed once and is no more. */
  private readonly vanished = new Set<string>();
  /** Services the run stopped (scaled to 0): swarm deletes a scaled-down task once it stopped. */
  private readonly stopped = new Set<string>();
  private readonly waiters = new Set<Waiter>();
  private timer: NodeJS.Timeout | undefined;
  private lastAnswer = Date.now();
  private closed = false;

  constructor(options: TaskWatcherOptions) {
    this.options = {
      intervalMs: 500,
      unschedulableGraceMs: 10_000,
      managerGraceMs: 30_000,
      ...options,
    };
    this.schedule(0);
  }

  /** Starts following the service's task. */
  watch(serviceId: string): void {
    this.services.add(serviceId);
  }

  /** Resolves at the first list where the service's fate is one `wanted` accepts. */
  until(serviceId: string, wanted: (fate: TaskFate) => boolean): Promise<TaskFate> {
    this.watch(serviceId);
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(new RunnerError('the task watcher was closed'));
        return;
      }
      this.waiters.add({ serviceId, wanted, resolve, reject });
    });
  }

  /** Says the run is stopping the service's task, so that its task vanishing is that stop, not a loss. */
  stopping(serviceId: string): void {
    this.stopped.add(serviceId);
  }

  /** The service's task as last listed. */
  task(serviceId: string): TaskState | undefined {
    return this.tasks.get(serviceId);
  }

  /** The node as last listed. */
  node(nodeId: string): NodeSummary | undefined {
    return this.nodes.get(nodeId);
  }

  /** Stops listing; waiters still waiting fail. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.failAll(new RunnerError('the task watcher was closed'));
  }

  private schedule(delayMs: number): void {
    if (this.closed) return;
    this.timer = setTimeout(() => void this.tick(), delayMs);
  }

  private async tick(): Promise<void> {
    if (this.waiters.size > 0) {
      try {
        await this.refresh();
        this.lastAnswer = Date.now();
        this.settle();
      } catch (error) {
        const silentMs = Date.now() - this.lastAnswer;
        if (silentMs >= this.options.managerGraceMs) {
          this.failAll(
            new RunnerError(
              `the swarm manager at ${this.options.swarm.endpoint} has not answered for ${Math.round(silentMs / 1000)} s: ${(error as Error).message}`,
            ),
          );
        }
      }
    } else {
      this.lastAnswer = Date.now();
    }
    this.schedule(this.options.intervalMs);
  }

  private async refresh(): Promise<void> {
    const [tasks, nodes] = await Promise.all([
      this.options.swarm.listTasks([...this.services]),
      this.options.swarm.listNodes(),
    ]);
    this.nodes.clear();
    for (const node of nodes) this.nodes.set(node.id, node);
    const now = Date.now();
    const listed = new Set(tasks.map((task) => task.serviceId));
    for (const serviceId of this.tasks.keys()) {
      if (!listed.has(serviceId)) this.vanished.add(serviceId);
    }
    for (const task of tasks) {
      if (!this.services.has(task.serviceId)) continue;
      // One replica that is never restarted: the newest task is the instance's.
      const known = this.tasks.get(task.serviceId);
      if (known === undefined || known.id === task.id || task.updatedAt >= known.updatedAt) {
        this.tasks.set(task.serviceId, task);
      }
      if (task.state === 'pending' && task.error !== '') {
        if (!this.unschedulableSince.has(task.serviceId)) this.unschedulableSince.set(task.serviceId, now);
      } else {
        this.unschedulableSince.delete(task.serviceId);
      }
    }
  }

  private fateOf(serviceId: string): TaskFate {
    const task = this.tasks.get(serviceId);
    if (this.vanished.has(serviceId)) {
      if (!this.stopped.has(serviceId)) {
        return {
          kind: 'ended',
          ending: {
            kind: 'lost',
            reason: 'its task was removed from the swarm while it ran (not by this run)',
          },
        };
      }
      // Stopped by the run and deleted by swarm before a list saw it end: it ran, or it never did.
      return task?.containerId
        ? { kind: 'ended', ending: { kind: 'exited', exitCode: task.exitCode, signal: 'SIGKILL' } }
        : { kind: 'ended', ending: { kind: 'never-started' } };
    }
    const since = this.unschedulableSince.get(serviceId);
    return taskFate({
      task,
      node: task?.nodeId ? this.nodes.get(task.nodeId) : undefined,
      unschedulableForMs: since === undefined ? 0 : Date.now() - since,
      unschedulableGraceMs: this.options.unschedulableGraceMs,
    });
  }

  private settle(): void {
    for (const waiter of this.waiters) {
      const fate = this.fateOf(waiter.serviceId);
      if (waiter.wanted(fate)) {
        this.waiters.delete(waiter);
        waiter.resolve(fate);
      }
    }
  }

  private failAll(error: Error): void {
    for (const waiter of this.waiters) waiter.reject(error);
    this.waiters.clear();
  }
}

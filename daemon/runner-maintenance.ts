import type { HealthcheckCheck, NotRemoved, Runner } from '../runners/runner.ts';
import { ConflictError, NotFoundError } from '../core/errors.ts';
import type { TaskService } from './task-service.ts';
import { type TaskStore } from './task-store.ts';
import { isTerminal } from '../core/task.ts';

export interface HealthcheckReport {
  runner: string;
  ok: boolean;
  checks: HealthcheckCheck[];
}

/** What `terminate` did: tasks canceled, cancels that failed (and why), leftovers removed by kind. */
export interface TerminateReport {
  runner: string;
  canceled: string[];
  failed: { task: string; reason: string }[];
  removed: Record<string, number>;
  /** What could not be removed, and why; named as the API names it. */
  not_removed: NotRemoved[];
}

/** Runner maintenance: what `testground healthcheck` and `testground terminate` ask for. */
export class RunnerMaintenance {
  private readonly tasks: Pick<TaskService, 'cancel'>;
  private readonly store: TaskStore;
  private readonly runners: ReadonlyMap<string, Runner>;

  constructor(deps: {
    tasks: Pick<TaskService, 'cancel'>;
    store: TaskStore;
    runners: ReadonlyMap<string, Runner>;
  }) {
    this.tasks = deps.tasks;
    this.store = deps.store;
    this.runners = deps.runners;
  }

  async healthcheck(runnerId: string, fix: boolean): Promise<HealthcheckReport> {
    const runner = this.runner(runnerId);
    const checks = await runner.healthcheck({ fix, activeRunIds: await this.activeRunIds() });
    // A check fixed by --fix counts as healthy now.
    return { runner: runnerId, ok: checks.every((check) => check.ok || check.fix !== undefined), checks };
  }

  /**
   * Cancels every task of the runner that has not ended, then removes what ended runs left behind. A
   * cancel or a removal that fails is reported with its reason and the others still go ahead: terminate
   * reports, it does not fail (an unreachable engine is reported as what could not be removed).
   */
  async terminate(runnerId: string): Promise<TerminateReport> {
    const runner = this.runner(runnerId);
    const open = (await this.store.list({ limit: 10_000 })).filter(
      (task) => task.runner === runnerId && !isTerminal(task.state),
    );
    const canceled: string[] = [];
    const failed: TerminateReport['failed'] = [];
    for (const task of open) {
      try {
        await this.tasks.cancel(task.id);
        canceled.push(task.id);
      } catch (error) {
        // It ended by itself between the listing and the cancel: what terminate wanted.
        if (error instanceof ConflictError) continue;
        failed.push({ task: task.id, reason: error instanceof Error ? error.message : String(error) });
      }
    }
    const notRemoved: NotRemoved[] = [];
    let removed: Record<string, number> = {};
    try {
      removed = await runner.removeLeftovers(await this.activeRunIds(), (item) => notRemoved.push(item));
    } catch (error) {
      notRemoved.push({
        kind: 'leftovers',
        name: runnerId,
        reason: `could not look for them: ${error instanceof Error ? error.message : String(error)}`,
      });
    }
    return { runner: runnerId, canceled, failed, removed, not_removed: notRemoved };
  }

  private runner(runnerId: string): Runner {
    const runner = this.runners.get(runnerId);
    if (!runner) {
      throw new NotFoundError(
        `no runner ${JSON.stringify(runnerId)}; this daemon has ${[...this.runners.keys()].join(', ')}`,
        [
          {
            path: 'runner',
            message: `${JSON.stringify(runnerId)} is not one of ${[...this.runners.keys()].join(', ')}`,
          },
        ],
      );
    }
    return runner;
  }

  private async activeRunIds(): Promise<Set<string>> {
    return new Set((await this.store.listActive()).flatMap((task) => task.runs.map((run) => run.id)));
  }
}

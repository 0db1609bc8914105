/**
 * What a runner does with the network controller's refusals (the failure rule in network-controller.ts):
 * the refused instance is told in its own output and ends as `failure` with the controller's reason, and
 * the whole run is stopped at the first refusal, since the other instances would wait for the refused
 * one's callback until the run timeout. Written once for every runner that serves its instances through a
 * {@link NetworkController}.
 */
import type { InstanceEvent } from '../../core/contract/events.ts';
import type { TaskLog } from '../../core/task-log.ts';
import type { InstanceEnding } from '../instance-lifecycle.ts';
import type { NetworkRefusal } from './network-controller.ts';

export interface RunRefusalsOptions {
  /** Names the runner in the task log: `local:exec`. */
  runner: string;
  log: TaskLog;
  /** Stops every instance of the run; called once, at the first refusal. */
  stopRun: () => void;
}

/** How an instance ended, for {@link RunRefusals.failureOf}. */
export interface RefusalContext {
  label: string;
  ending: InstanceEnding;
  terminal: InstanceEvent | undefined;
  /** Whether it had ended by itself before any refusal stopped the run. */
  endedBeforeRefusal: boolean;
}

/** The refusals of one run. */
export class RunRefusals {
  private readonly options: RunRefusalsOptions;
  private readonly byInstance = new Map<string, NetworkRefusal>();
  private firstRefusal: NetworkRefusal | undefined;

  constructor(options: RunRefusalsOptions) {
    this.options = options;
  }

  /** The first refusal of the run: once there is one, no further instance should be started. */
  get first(): NetworkRefusal | undefined {
    return this.firstRefusal;
  }

  /**
   * The `onRefused` of one instance's {@link ControlledInstance}: writes the reason to the instance's
   * stderr (where its user looks first), records it, and stops the run at the first refusal.
   */
  onRefused(writeStderr: (chunk: Buffer) => void): (refusal: NetworkRefusal) => void {
    return (refusal) => {
      writeStderr(Buffer.from(`testground: ${refusal.reason}\n`));
      this.byInstance.set(refusal.label, refusal);
      if (this.firstRefusal !== undefined) return;
      this.firstRefusal = refusal;
      this.options.log.warn(
        `${this.options.runner}: stopping the run: ${refusal.label}'s network configuration was refused`,
      );
      this.options.stopRun();
    };
  }

  /**
   * The `failure` an instance's outcome takes from the refusals (instance-lifecycle.ts): the refused
   * instance fails with the controller's reason; one still running (or never started) when the run was
   * stopped for another fails naming it; one that had ended by itself, or succeeded, keeps its outcome.
   */
  failureOf(instance: RefusalContext): { failure?: string } {
    const own = this.byInstance.get(instance.label);
    if (own !== undefined) return { failure: own.reason };
    const first = this.firstRefusal;
    if (first === undefined || instance.endedBeforeRefusal) return {};
    const { ending, terminal } = instance;
    if (terminal?.kind === 'success' && ending.kind === 'exited' && ending.exitCode === 0) return {};
    if (ending.kind === 'never-started') {
      return {
        failure: `never started: the run was stopped because ${first.label}'s network configuration was refused`,
      };
    }
    return {
      failure: `stopped because ${first.label}'s network configuration was refused (${first.reason})`,
    };
  }
}

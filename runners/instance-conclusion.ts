/**
 * The end of an instance whose output a container runner captured (local:docker, cluster:swarm), written
 * once: the output is finished, a failure to keep it stops the run, and the outcome is decided from its
 * terminal event, its ending, the run's stop and the run's network refusals.
 */
import { RunnerError } from '../core/errors.ts';
import type { InstanceResult } from '../core/run.ts';
import type { TaskLog } from '../core/task-log.ts';
import { concludeInstance, type InstanceEnding, type StopReason } from './instance-lifecycle.ts';
import type { InstanceOutput } from './instance-output.ts';
import type { RunRefusals } from './network/run-refusals.ts';

export interface CapturedInstanceEnd {
  group: string;
  index: number;
  /** Names the instance in messages: `peers[3]`. */
  label: string;
  output: InstanceOutput;
  ending: InstanceEnding;
  stopped: StopReason | undefined;
  /** Whether it had ended by itself before any network refusal stopped the run. */
  endedBeforeRefusal: boolean;
  refusals: Pick<RunRefusals, 'failureOf'>;
  timeoutMs: number;
  log: TaskLog;
  /** When the runner saw it end; absent: now. */
  endedAt: Date | undefined;
}

/** @throws RunnerError when the instance's output could not be written (the run was stopped for it). */
export async function concludeCapturedInstance(end: CapturedInstanceEnd): Promise<InstanceResult> {
  const { output, label, ending } = end;
  await output.finish();
  if (output.failure) {
    throw new RunnerError(
      `instance ${label}: could not write its output: ${output.failure.message}; the run was stopped`,
    );
  }
  const result = concludeInstance({
    group: end.group,
    index: end.index,
    terminal: output.terminal,
    ending,
    stopped: end.stopped,
    timeoutMs: end.timeoutMs,
    log: end.log,
    phases: output.phases,
    ...(end.endedAt === undefined ? {} : { endedAt: end.endedAt }),
    ...end.refusals.failureOf({
      label,
      ending,
      terminal: output.terminal,
      endedBeforeRefusal: end.endedBeforeRefusal,
    }),
  });
  return output.notes.length > 0 ? { ...result, notes: [...output.notes] } : result;
}

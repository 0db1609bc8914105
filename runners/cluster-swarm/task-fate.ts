/**
 * What a swarm task's state means for the instance it runs, decided in one place: still waiting, running,
 * ended (and how), or impossible to place. Pure, so every state swarm can report is tested in-process.
 */
import type { NodeSummary, TaskState } from '../../docker/swarm-client.ts';
import type { InstanceEnding } from '../instance-lifecycle.ts';

export type TaskFate =
  /** Not placed yet, or being prepared (image pull, container creation). */
  | { kind: 'waiting' }
  | { kind: 'running' }
  /** The scheduler has found no node for it for longer than the grace period; `reason` is swarm's. */
  | { kind: 'unschedulable'; reason: string }
  | { kind: 'ended'; ending: InstanceEnding };

/** States of a task that has not run yet. */
const preparing = new Set(['new', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting']);

export interface TaskFateInput {
  /** The instance's task as last listed; absent until swarm made one. */
  task: TaskState | undefined;
  /** The node the task was placed on, as last listed. */
  node: NodeSummary | undefined;
  /** How long the task has been pending with a scheduling error (0 when it is not). */
  unschedulableForMs: number;
  /** How long a scheduling error may last before the instance counts as unschedulable. */
  unschedulableGraceMs: number;
}

export function taskFate({ task, node, unschedulableForMs, unschedulableGraceMs }: TaskFateInput): TaskFate {
  if (task === undefined) return { kind: 'waiting' };
  const nodeDown = node !== undefined && node.state !== 'ready';
  if (preparing.has(task.state) || task.state === 'running') {
    if (nodeDown) return { kind: 'ended', ending: { kind: 'lost', reason: lostReason(node) } };
    if (task.state === 'running') return { kind: 'running' };
    if (task.state === 'pending' && task.error !== '' && unschedulableForMs >= unschedulableGraceMs) {
      return { kind: 'unschedulable', reason: task.error };
    }
    return { kind: 'waiting' };
  }
  switch (task.state) {
    case 'complete':
      return exited(task.exitCode ?? 0);
    case 'failed':
      return task.exitCode === null
        ? { kind: 'ended', ending: { kind: 'failed-to-start', reason: failedReason(task, node) } }
        : exited(task.exitCode);
    case 'rejected':
      return { kind: 'ended', ending: { kind: 'failed-to-start', reason: failedReason(task, node) } };
    case 'shutdown':
      // Stopped by us (the run's timeout or cancel scaled its service to 0): it ran or it never did.
      return task.exitCode === null
        ? { kind: 'ended', ending: { kind: 'never-started' } }
        : exited(task.exitCode);
    case 'orphaned':
      return { kind: 'ended', ending: { kind: 'lost', reason: lostReason(node) } };
    default:
      return {
        kind: 'ended',
        ending: {
          kind: 'lost',
          reason: `swarm reports its task ${task.id} as ${task.state}: ${task.error || task.message}`,
        },
      };
  }
}

function exited(exitCode: number): TaskFate {
  return { kind: 'ended', ending: { kind: 'exited', exitCode, signal: null } };
}

function nodeName(node: NodeSummary | undefined): string {
  return node === undefined ? 'an unknown node' : `node ${node.hostname} (${node.address || node.id})`;
}

function lostReason(node: NodeSummary | undefined): string {
  const why = node?.message ? `: ${node.message}` : '';
  return `its ${nodeName(node)} went ${node?.state ?? 'away'}${why}; its end was never seen`;
}

function failedReason(task: TaskState, node: NodeSummary | undefined): string {
  return `swarm could not start it on ${nodeName(node)}: ${task.error || task.message || task.state}`;
}

import type { RunRecord, TaskRecord, TaskSummary } from '../core/task.ts';
import type { RunView, Submitted, TaskSummaryView, TaskView } from './schemas.ts';

/** The JSON clients see for a task: snake_case like the rest of the API, internals (paths) left out. */
export function taskView(task: TaskRecord): TaskView {
  return {
    ...taskHead(task),
    run_id: task.runId,
    states: task.states,
    outcome: task.outcome ?? null,
    error: task.error ?? null,
    result: task.result ?? null,
    runs: task.runs.map(runView),
    artifacts: task.artifacts,
    warnings: task.warnings,
    cancel_requested: task.cancelRequested,
    metadata: task.metadata,
    supersedes: task.supersedes,
    composition: task.composition,
    progress: task.progress ?? [],
  };
}

export function runView(run: RunRecord): RunView {
  return {
    id: run.id,
    name: run.name,
    instances: run.instances,
    state: run.state,
    outcome: run.outcome ?? null,
    error: run.error ?? null,
    result: run.result ?? null,
    started_at: run.startedAt ?? null,
    ended_at: run.endedAt ?? null,
  };
}

/** The answer to a submission: where to follow the task, and what it was accepted with. */
export function submittedView(task: TaskRecord): Submitted {
  const base = `/api/v1/tasks/${task.id}`;
  return {
    task_id: task.id,
    run_id: task.runId,
    type: task.type,
    state: task.state,
    runs: task.runs.map((run) => ({ id: run.id, name: run.name })),
    links: {
      task: base,
      logs: `${base}/logs?follow=true`,
      cancel: `${base}/cancel`,
      ...(task.type === 'run' ? { outputs: `/api/v1/runs/${task.id}/outputs` } : {}),
    },
    warnings: task.warnings,
    superseded: task.supersedes,
  };
}

/** A task in a listing: plain fields only, so a page of them is cheap to read and to send. */
export function taskSummaryView(task: TaskSummary): TaskSummaryView {
  return {
    ...taskHead(task),
    ended_at: task.endedAt ?? null,
    outcome: task.outcome ?? null,
    error: task.error ?? null,
    cancel_requested: task.cancelRequested,
    metadata: task.metadata,
    links: { task: `/api/v1/tasks/${task.id}` },
  };
}

/** The fields a task's view and its summary share (`taskHeadFields` in schemas.ts). */
function taskHead(
  task: TaskSummary,
): Pick<
  TaskSummaryView,
  'id' | 'type' | 'plan' | 'case' | 'builder' | 'runner' | 'instances' | 'created_by' | 'created_at' | 'state'
> {
  return {
    id: task.id,
    type: task.type,
    plan: task.plan,
    case: task.testCase,
    builder: task.builder,
    runner: task.runner,
    instances: task.instances,
    created_by: task.createdBy,
    created_at: task.createdAt,
    state: task.state,
  };
}

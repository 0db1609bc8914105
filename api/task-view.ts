import type { TaskRecord } from '../core/task.ts';
import type { TaskView } from './schemas.ts';

/** The JSON clients see for a task: snake_case like the rest of the API, internals (paths) left out. */
export function taskView(task: TaskRecord): TaskView {
  return {
    id: task.id,
    run_id: task.runId,
    type: task.type,
    plan: task.plan,
    case: task.testCase,
    builder: task.builder,
    runner: task.runner,
    instances: task.instances,
    created_by: task.createdBy,
    created_at: task.createdAt,
    state: task.state,
    states: task.states,
    outcome: task.outcome ?? null,
    error: task.error ?? null,
    result: task.result ?? null,
    cancel_requested: task.cancelRequested,
    composition: task.composition,
  };
}

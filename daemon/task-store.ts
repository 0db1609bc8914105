import type { Redis } from 'ioredis';
import type { ProblemDetail } from '../core/errors.ts';
import type { ResolvedRun, ResolvedTask, RunOutcome } from '../core/run.ts';
import {
  taskStates,
  type GroupArtifact,
  type TaskMetadata,
  type RunRecord,
  type TaskRecord,
  type TaskState,
  type TaskType,
} from '../core/task.ts';
import type { Composition } from '../plan/composition.ts';

/** A run as submission knows it; the store adds its state. */
export type NewRun = Pick<RunRecord, 'id' | 'name' | 'outputsDir' | 'instances'>;

/** What submission knows of a task; the store adds its state and timestamps. */
export type NewTask = Pick<
  TaskRecord,
  'id' | 'plan' | 'testCase' | 'builder' | 'runner' | 'instances' | 'createdBy' | 'resolved' | 'planDir'
> & {
  composition: Composition;
  /** `run` unless given. */
  type?: TaskType;
  /** In the order they run; none for a build task. */
  runs: NewRun[];
  warnings?: ProblemDetail[];
  metadata?: TaskMetadata;
};

export interface TaskFilter {
  state?: TaskState;
  plan?: string;
  limit: number;
}

/** Fields written with a change; `undefined` values are left as they were. */
export interface ProgressPatch {
  /** Every run, as the worker carrying the task sees them now. */
  runs?: RunRecord[];
  artifacts?: GroupArtifact[];
}

/** Fields written on a transition; `undefined` values are left as they were. */
export interface TransitionPatch extends ProgressPatch {
  outcome?: RunOutcome;
  error?: string;
  daemonId?: string;
}

// Writes the fields only while the task is in one of the allowed states (ARGV[1]), in one step: a transition
// passes its new state among them, so a cancel and the worker finishing can never both win.
const writeIfStateScript = `
local current = redis.call('HGET', KEYS[1], 'state')
if not current then return -1 end
for allowed in string.gmatch(ARGV[1], '[^,]+') do
  if allowed == current then
    redis.call('HSET', KEYS[1], unpack(ARGV, 2))
    return 1
  end
end
return 0`;

/**
 * Task records as Redis hashes (`<prefix>:task:<id>`) plus an index sorted by creation time. Plain
 * fields, not one JSON blob, so a state change is a single atomic script without decoding JSON in Lua.
 */
export class TaskStore {
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly now: () => Date;

  constructor(redis: Redis, prefix: string, now: () => Date = () => new Date()) {
    this.redis = redis;
    this.prefix = prefix;
    this.now = now;
    this.redis.defineCommand('tgWriteIfState', { numberOfKeys: 1, lua: writeIfStateScript });
  }

  private key(id: string): string {
    return `${this.prefix}:task:${id}`;
  }

  private get indexKey(): string {
    return `${this.prefix}:tasks`;
  }

  async create(task: NewTask): Promise<TaskRecord> {
    const at = this.now();
    const runs: RunRecord[] = task.runs.map((run) => ({ ...run, state: 'pending' }));
    const fields: Record<string, string> = {
      id: task.id,
      type: task.type ?? 'run',
      plan: task.plan,
      testCase: task.testCase,
      builder: task.builder,
      runner: task.runner,
      instances: String(task.instances),
      createdBy: task.createdBy,
      createdAt: at.toISOString(),
      state: 'queued',
      'at:queued': at.toISOString(),
      cancelRequested: '0',
      composition: JSON.stringify(task.composition),
      resolved: JSON.stringify(task.resolved),
      runs: JSON.stringify(runs),
      warnings: JSON.stringify(task.warnings ?? []),
      artifacts: '[]',
      metadata: JSON.stringify(task.metadata ?? {}),
      supersedes: '[]',
      planDir: task.planDir,
    };
    await this.redis
      .multi()
      .hset(this.key(task.id), fields)
      .zadd(this.indexKey, at.getTime(), task.id)
      .exec();
    const record = await this.get(task.id);
    if (!record) throw new Error(`task ${task.id} vanished right after it was created`);
    return record;
  }

  async get(id: string): Promise<TaskRecord | undefined> {
    const fields = await this.redis.hgetall(this.key(id));
    return fields.id ? decode(fields) : undefined;
  }

  /** Each task's state, in the order asked; undefined for a task with no record. One round trip. */
  async states(ids: readonly string[]): Promise<(TaskState | undefined)[]> {
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hget(this.key(id), 'state');
    const replies = (await pipeline.exec()) ?? [];
    return ids.map((_id, index) => {
      const [error, state] = replies[index] ?? [];
      if (error) throw error;
      return typeof state === 'string' ? (state as TaskState) : undefined;
    });
  }

  async list(filter: TaskFilter): Promise<TaskRecord[]> {
    const found: TaskRecord[] = [];
    const pageSize = Math.max(filter.limit * 2, 50);
    for (let start = 0; found.length < filter.limit; start += pageSize) {
      const ids = await this.redis.zrevrange(this.indexKey, start, start + pageSize - 1);
      if (ids.length === 0) break;
      const pipeline = this.redis.pipeline();
      for (const id of ids) pipeline.hgetall(this.key(id));
      const replies = (await pipeline.exec()) ?? [];
      for (const [, fields] of replies) {
        const record =
          fields && (fields as Record<string, string>).id
            ? decode(fields as Record<string, string>)
            : undefined;
        if (!record) continue;
        if (filter.state && record.state !== filter.state) continue;
        if (filter.plan && record.plan !== filter.plan) continue;
        found.push(record);
        if (found.length === filter.limit) break;
      }
    }
    return found;
  }

  /**
   * Moves a task to `to` only when it is in one of `from`; returns false when it was not (someone else
   * moved it first), so callers never overwrite a terminal state.
   */
  async transition(
    id: string,
    from: readonly TaskState[],
    to: TaskState,
    patch: TransitionPatch = {},
  ): Promise<boolean> {
    const fields: string[] = ['state', to, `at:${to}`, this.now().toISOString()];
    if (patch.outcome !== undefined) fields.push('outcome', patch.outcome);
    if (patch.error !== undefined) fields.push('error', patch.error);
    if (patch.daemonId !== undefined) fields.push('daemonId', patch.daemonId);
    return this.writeIfState(id, from, [...fields, ...progressFields(patch)]);
  }

  /**
   * Records the progress of a task still in one of `states` (its runs, its artifacts); returns false, and
   * writes nothing, when it has moved on (ended by a cancel or by a restart's recovery).
   */
  async progress(id: string, states: readonly TaskState[], patch: ProgressPatch): Promise<boolean> {
    const fields = progressFields(patch);
    if (fields.length === 0) return true;
    return this.writeIfState(id, states, fields);
  }

  private async writeIfState(id: string, states: readonly TaskState[], fields: string[]): Promise<boolean> {
    const write = (this.redis as unknown as WriteIfStateCommand).tgWriteIfState;
    const applied = await write.call(this.redis, this.key(id), states.join(','), ...fields);
    return applied === 1;
  }

  async requestCancel(id: string): Promise<void> {
    await this.redis.hset(this.key(id), 'cancelRequested', '1');
  }

  /** Records the older tasks a new one superseded (canceled when it was submitted). */
  async recordSupersedes(id: string, superseded: readonly string[]): Promise<void> {
    await this.redis.hset(this.key(id), 'supersedes', JSON.stringify(superseded));
  }

  /** Tasks a daemon was building or running; used at start-up to end the ones a crash interrupted. */
  async listActive(): Promise<TaskRecord[]> {
    const records = await this.list({ limit: 10_000 });
    return records.filter((record) => record.state === 'building' || record.state === 'running');
  }
}

interface WriteIfStateCommand {
  tgWriteIfState(key: string, allowed: string, ...fields: string[]): Promise<number>;
}

function progressFields(patch: ProgressPatch): string[] {
  const fields: string[] = [];
  if (patch.runs !== undefined) fields.push('runs', JSON.stringify(patch.runs));
  if (patch.artifacts !== undefined) fields.push('artifacts', JSON.stringify(patch.artifacts));
  return fields;
}

function decode(fields: Record<string, string>): TaskRecord {
  const states = taskStates
    .filter((state) => fields[`at:${state}`])
    .map((state) => ({ state, at: fields[`at:${state}`]! }))
    .sort((a, b) => a.at.localeCompare(b.at));
  const state = (fields.state ?? 'queued') as TaskState;
  const type = (fields.type ?? 'run') as TaskType;
  const outcome = fields.outcome ? (fields.outcome as RunOutcome) : undefined;
  const resolved = decodeResolved(fields.resolved);
  const runs = fields.runs
    ? (JSON.parse(fields.runs) as RunRecord[])
    : legacyRuns(fields, state, outcome, resolved);
  const first = runs[0];
  return {
    id: fields.id!,
    type,
    runId: first?.id ?? fields.id!,
    plan: fields.plan ?? '',
    testCase: fields.testCase ?? '',
    builder: fields.builder ?? '',
    runner: fields.runner ?? '',
    instances: Number(fields.instances ?? 0),
    createdBy: fields.createdBy ?? '',
    createdAt: fields.createdAt ?? '',
    state,
    states,
    ...(outcome ? { outcome } : {}),
    ...(fields.error ? { error: fields.error } : {}),
    ...(first?.result ? { result: first.result } : {}),
    cancelRequested: fields.cancelRequested === '1',
    ...(fields.daemonId ? { daemonId: fields.daemonId } : {}),
    composition: JSON.parse(fields.composition ?? '{}') as Record<string, unknown>,
    resolved,
    runs,
    warnings: JSON.parse(fields.warnings ?? '[]') as ProblemDetail[],
    artifacts: JSON.parse(fields.artifacts ?? '[]') as GroupArtifact[],
    metadata: JSON.parse(fields.metadata ?? '{}') as TaskMetadata,
    supersedes: JSON.parse(fields.supersedes ?? '[]') as string[],
    planDir: fields.planDir ?? '',
    outputsDir: first?.outputsDir ?? '',
  };
}

// Records written before tasks held several runs carried one `ResolvedRun`; they read as a task of that run.
function decodeResolved(text: string | undefined): ResolvedTask {
  const parsed = JSON.parse(text ?? '{}') as Partial<ResolvedTask> & Partial<ResolvedRun>;
  if (Array.isArray(parsed.runs)) return parsed as ResolvedTask;
  const run = { id: 'default', ...parsed } as ResolvedRun;
  return { plan: run.plan, testCase: run.testCase, runner: run.runner, builder: run.builder, runs: [run] };
}

function legacyRuns(
  fields: Record<string, string>,
  state: TaskState,
  outcome: RunOutcome | undefined,
  resolved: ResolvedTask,
): RunRecord[] {
  const ended = state === 'complete' || state === 'canceled';
  return [
    {
      id: fields.id!,
      name: 'default',
      outputsDir: fields.outputsDir ?? '',
      instances: resolved.runs[0]?.totalInstances ?? Number(fields.instances ?? 0),
      state: ended ? state : state === 'running' ? 'running' : 'pending',
      ...(outcome ? { outcome } : {}),
      ...(fields.error ? { error: fields.error } : {}),
      ...(fields.result ? { result: JSON.parse(fields.result) as RunRecord['result'] } : {}),
      ...(fields['at:running'] ? { startedAt: fields['at:running'] } : {}),
    },
  ];
}

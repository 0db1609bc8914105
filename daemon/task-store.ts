import type { Redis } from 'ioredis';
import type { ResolvedRun, RunOutcome, RunResult } from '../core/run.ts';
import { taskStates, type TaskRecord, type TaskState } from '../core/task.ts';
import type { Composition } from '../plan/composition.ts';

/** What submission knows of a task; the store adds its state, timestamps and run id. */
export type NewTask = Pick<
  TaskRecord,
  | 'id'
  | 'plan'
  | 'testCase'
  | 'builder'
  | 'runner'
  | 'instances'
  | 'createdBy'
  | 'resolved'
  | 'planDir'
  | 'outputsDir'
> & { composition: Composition };

export interface TaskFilter {
  state?: TaskState;
  plan?: string;
  limit: number;
}

/** Fields written on a transition; `undefined` values are left as they were. */
export interface TransitionPatch {
  outcome?: RunOutcome;
  error?: string;
  result?: RunResult;
  daemonId?: string;
}

// Compares and sets the state in one step, so a cancel and the worker finishing can never both win.
const transitionScript = `
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
    this.redis.defineCommand('tgTransition', { numberOfKeys: 1, lua: transitionScript });
  }

  private key(id: string): string {
    return `${this.prefix}:task:${id}`;
  }

  private get indexKey(): string {
    return `${this.prefix}:tasks`;
  }

  async create(task: NewTask): Promise<TaskRecord> {
    const at = this.now();
    const fields: Record<string, string> = {
      id: task.id,
      type: 'run',
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
      planDir: task.planDir,
      outputsDir: task.outputsDir,
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
    if (patch.result !== undefined) fields.push('result', JSON.stringify(patch.result));
    if (patch.daemonId !== undefined) fields.push('daemonId', patch.daemonId);
    const transition = (this.redis as unknown as TransitionCommand).tgTransition;
    const applied = await transition.call(this.redis, this.key(id), from.join(','), ...fields);
    return applied === 1;
  }

  async requestCancel(id: string): Promise<void> {
    await this.redis.hset(this.key(id), 'cancelRequested', '1');
  }

  /** Tasks a daemon was building or running; used at start-up to end the ones a crash interrupted. */
  async listActive(): Promise<TaskRecord[]> {
    const records = await this.list({ limit: 10_000 });
    return records.filter((record) => record.state === 'building' || record.state === 'running');
  }
}

interface TransitionCommand {
  tgTransition(key: string, allowed: string, ...fields: string[]): Promise<number>;
}

function decode(fields: Record<string, string>): TaskRecord {
  const states = taskStates
    .filter((state) => fields[`at:${state}`])
    .map((state) => ({ state, at: fields[`at:${state}`]! }))
    .sort((a, b) => a.at.localeCompare(b.at));
  return {
    id: fields.id!,
    type: 'run',
    runId: fields.id!,
    plan: fields.plan ?? '',
    testCase: fields.testCase ?? '',
    builder: fields.builder ?? '',
    runner: fields.runner ?? '',
    instances: Number(fields.instances ?? 0),
    createdBy: fields.createdBy ?? '',
    createdAt: fields.createdAt ?? '',
    state: (fields.state ?? 'queued') as TaskState,
    states,
    ...(fields.outcome ? { outcome: fields.outcome as RunOutcome } : {}),
    ...(fields.error ? { error: fields.error } : {}),
    ...(fields.result ? { result: JSON.parse(fields.result) as RunResult } : {}),
    cancelRequested: fields.cancelRequested === '1',
    ...(fields.daemonId ? { daemonId: fields.daemonId } : {}),
    composition: JSON.parse(fields.composition ?? '{}') as Record<string, unknown>,
    resolved: JSON.parse(fields.resolved ?? '{}') as ResolvedRun,
    planDir: fields.planDir ?? '',
    outputsDir: fields.outputsDir ?? '',
  };
}

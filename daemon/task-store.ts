import type { Redis } from 'ioredis';
import type { ProblemDetail } from '../core/errors.ts';
import type { ResolvedRun, ResolvedTask, RunOutcome } from '../core/run.ts';
import type { RunProgress } from '../core/run-progress.ts';
import {
  taskStates,
  type GroupArtifact,
  type TaskMetadata,
  type RunRecord,
  type TaskRecord,
  type TaskState,
  type TaskSummary,
  type TaskSummaryPage,
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

export interface SummaryQuery extends TaskFilter {
  /** A page's `next`: continue after the task it names. */
  cursor?: string;
}

/** A listing cursor: the creation time (ms, the index's score) and id of the last task of a page. */
const cursorPattern = /^(?<score>\d{1,16})-(?<id>[a-z0-9]{1,64})$/;

export function isTaskCursor(text: string): boolean {
  return cursorPattern.test(text);
}

// The fields a summary reads; their order is the script's reply.
const summaryFields = [
  'id',
  'type',
  'plan',
  'testCase',
  'builder',
  'runner',
  'instances',
  'createdBy',
  'createdAt',
  'state',
  'outcome',
  'error',
  'cancelRequested',
  'metadata',
  'at:complete',
  'at:canceled',
] as const;

// One page of summaries in one round trip, newest first: walks the creation index from the cursor,
// reads only the listed fields of each task (never its composition or runs), filters by state and plan,
// and stops at the limit or after `scanCap` index entries, so a filter matching few tasks stays cheap
// and the page then ends early with a cursor to go on from.
// KEYS[1] the index; ARGV: max score, id after which to start ('' for none), limit, state, plan,
// scanCap, task key prefix, then the field names.
const summaryPageScript = `
local maxScore, afterId = ARGV[1], ARGV[2]
local limit, state, plan, scanCap, keyPrefix = tonumber(ARGV[3]), ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7]
local fields = {}
for i = 8, #ARGV do fields[#fields + 1] = ARGV[i] end
local stateAt, planAt
for i, name in ipairs(fields) do
  if name == 'state' then stateAt = i end
  if name == 'plan' then planAt = i end
end
local found, scanned, offset = {}, 0, 0
local lastScore, lastId = '', ''
local stopped = false
while not stopped do
  local batch = redis.call('ZREVRANGEBYSCORE', KEYS[1], maxScore, '-inf', 'WITHSCORES', 'LIMIT', offset, 100)
  if #batch == 0 then break end
  offset = offset + math.floor(#batch / 2)
  for i = 1, #batch, 2 do
    local id, score = batch[i], batch[i + 1]
    if not (afterId ~= '' and score == maxScore and id >= afterId) then
      if #found >= limit or scanned >= scanCap then
        stopped = true
        break
      end
      scanned = scanned + 1
      lastScore, lastId = score, id
      local values = redis.call('HMGET', keyPrefix .. id, unpack(fields))
      if values[1] and (state == '' or values[stateAt] == state) and (plan == '' or values[planAt] == plan) then
        found[#found + 1] = values
      end
    end
  end
end
return { stopped and 1 or 0, lastScore, lastId, found }`;

/** Fields written with a change; `undefined` values are left as they were. */
export interface ProgressPatch {
  /** Every run, as the worker carrying the task sees them now. */
  runs?: RunRecord[];
  artifacts?: GroupArtifact[];
  /** The latest progress of each run that has started. */
  progress?: RunProgress[];
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
    this.redis.defineCommand('tgSummaryPage', { numberOfKeys: 1, lua: summaryPageScript });
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
      ...identityFields({ ...task, type: task.type ?? 'run' }),
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

  /**
   * One page of task summaries, newest first, continuing after `cursor`; a page holds fewer than `limit`
   * tasks when the filter matched none of the next `scanCap` tasks, and has a `next` while tasks remain.
   */
  async summaries(query: SummaryQuery, scanCap = 5_000): Promise<TaskSummaryPage> {
    const cursor = query.cursor === undefined ? undefined : cursorPattern.exec(query.cursor)?.groups;
    if (query.cursor !== undefined && !cursor) throw new Error(`not a task cursor: ${query.cursor}`);
    const page = (this.redis as unknown as SummaryPageCommand).tgSummaryPage;
    const [more, lastScore, lastId, rows] = await page.call(
      this.redis,
      this.indexKey,
      cursor?.score ?? '+inf',
      cursor?.id ?? '',
      String(query.limit),
      query.state ?? '',
      query.plan ?? '',
      String(scanCap),
      `${this.prefix}:task:`,
      ...summaryFields,
    );
    return {
      tasks: rows.map(decodeSummary),
      ...(more === 1 && lastId ? { next: `${lastScore}-${lastId}` } : {}),
    };
  }

  /**
   * Writes the record of a task whose record vanished (Redis lost its data while this daemon carried it)
   * as it ended; returns false, and writes nothing, when a record with its id exists.
   */
  async restoreEnded(
    task: TaskRecord,
    state: 'complete' | 'canceled',
    patch: TransitionPatch,
  ): Promise<boolean> {
    if ((await this.redis.hexists(this.key(task.id), 'id')) === 1) return false;
    const at = this.now().toISOString();
    const fields: Record<string, string> = {
      ...identityFields(task),
      createdAt: task.createdAt,
      state,
      ...Object.fromEntries(task.states.map((entry) => [`at:${entry.state}`, entry.at])),
      [`at:${state}`]: at,
      cancelRequested: task.cancelRequested ? '1' : '0',
      composition: JSON.stringify(task.composition),
      resolved: JSON.stringify(task.resolved),
      runs: JSON.stringify(patch.runs ?? task.runs),
      warnings: JSON.stringify(task.warnings),
      artifacts: JSON.stringify(patch.artifacts ?? task.artifacts),
      ...(task.progress === undefined ? {} : { progress: JSON.stringify(patch.progress ?? task.progress) }),
      metadata: JSON.stringify(task.metadata),
      supersedes: JSON.stringify(task.supersedes),
      planDir: task.planDir,
      ...(patch.outcome === undefined ? {} : { outcome: patch.outcome }),
      ...(patch.error === undefined ? {} : { error: patch.error }),
      ...(task.daemonId === undefined ? {} : { daemonId: task.daemonId }),
    };
    const created = Date.parse(task.createdAt);
    await this.redis
      .multi()
      .hset(this.key(task.id), fields)
      .zadd(this.indexKey, Number.isNaN(created) ? Date.now() : created, task.id)
      .exec();
    return true;
  }

  /** Tasks a daemon was building or running; used at start-up to end the ones a crash interrupted. */
  async listActive(): Promise<TaskRecord[]> {
    const records = await this.list({ limit: 10_000 });
    return records.filter((record) => record.state === 'building' || record.state === 'running');
  }
}

interface SummaryPageCommand {
  tgSummaryPage(key: string, ...args: string[]): Promise<[number, string, string, (string | null)[][]]>;
}

function decodeSummary(values: (string | null)[]): TaskSummary {
  const field = (name: (typeof summaryFields)[number]): string | undefined =>
    values[summaryFields.indexOf(name)] ?? undefined;
  const outcome = field('outcome');
  const error = field('error');
  const endedAt = field('at:complete') ?? field('at:canceled');
  return {
    id: field('id') ?? '',
    type: (field('type') ?? 'run') as TaskType,
    plan: field('plan') ?? '',
    testCase: field('testCase') ?? '',
    builder: field('builder') ?? '',
    runner: field('runner') ?? '',
    instances: Number(field('instances') ?? 0),
    createdBy: field('createdBy') ?? '',
    createdAt: field('createdAt') ?? '',
    state: (field('state') ?? 'queued') as TaskState,
    ...(outcome ? { outcome: outcome as RunOutcome } : {}),
    ...(error ? { error } : {}),
    cancelRequested: field('cancelRequested') === '1',
    metadata: JSON.parse(field('metadata') ?? '{}') as TaskMetadata,
    ...(endedAt ? { endedAt } : {}),
  };
}

interface WriteIfStateCommand {
  tgWriteIfState(key: string, allowed: string, ...fields: string[]): Promise<number>;
}

function progressFields(patch: ProgressPatch): string[] {
  const fields: string[] = [];
  if (patch.runs !== undefined) fields.push('runs', JSON.stringify(patch.runs));
  if (patch.artifacts !== undefined) fields.push('artifacts', JSON.stringify(patch.artifacts));
  if (patch.progress !== undefined) fields.push('progress', JSON.stringify(patch.progress));
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
    ...(fields.progress ? { progress: JSON.parse(fields.progress) as RunProgress[] } : {}),
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

/** The hash fields that say what a task is, written the same way by a new record and a restored one. */
function identityFields(
  task: Pick<
    TaskRecord,
    'id' | 'type' | 'plan' | 'testCase' | 'builder' | 'runner' | 'instances' | 'createdBy'
  >,
): Record<string, string> {
  return {
    id: task.id,
    type: task.type,
    plan: task.plan,
    testCase: task.testCase,
    builder: task.builder,
    runner: task.runner,
    instances: String(task.instances),
    createdBy: task.createdBy,
  };
}

/**
 * The API's shapes, once: every request the routes validate and every response they send. The OpenAPI
 * document is generated from these schemas (`openapi.ts`), and the CLI (and any other client) takes its
 * types from them with `z.infer`.
 */
import { z } from 'zod';
import { errorCodes } from '../core/errors.ts';
import { metricTypes } from '../core/contract/metrics.ts';
import { instanceOutcomes, runOutcomes } from '../core/run.ts';
import { logStart } from '../core/task-log.ts';
import { runStates, taskStates, taskTypes } from '../core/task.ts';

// ---- requests

export const maxCompositionBytes = 1024 * 1024;

const taskId = z
  .string()
  .regex(/^[a-z0-9]{1,64}$/, 'not a task id: ids are 1 to 64 lower-case letters and digits')
  .meta({ description: 'A task id (a run has the same id as its task)' });

export const taskParamsSchema = z.object({ id: taskId });

export const runParamsSchema = z.object({
  id: z
    .string()
    .regex(
      /^[a-z0-9]{1,64}(-[A-Za-z0-9][A-Za-z0-9_.-]{0,63})?$/,
      'not a run or task id: a task id, or a task id, "-" and a run name',
    )
    .meta({
      description:
        "A run id (`<task_id>-<run name>`, or the task id of a task without [[runs]]), or a task id for all of the task's runs",
    }),
});

export const runnerParamsSchema = z.object({
  id: z
    .string()
    .min(1)
    .max(100)
    .meta({ description: 'A runner id such as `local:docker`; clients percent-encode the colon' }),
});

const flag = z.enum(['true', 'false', '1', '0']);

export const taskListQuerySchema = z.object({
  state: z.enum(taskStates).optional(),
  plan: z.string().min(1).max(200).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(50),
  cursor: z
    .string()
    .regex(/^\d{1,16}-[a-z0-9]{1,64}$/, "not a cursor: pass a page's next_cursor as it came")
    .optional()
    .meta({ description: "A page's `next_cursor`: the page after it" }),
});

export const taskLogsQuerySchema = z.object({
  follow: flag.default('false').meta({ description: 'Keep the response open until the task ends' }),
  offset: z
    .string()
    .regex(/^\d+(-\d+)?$/, 'an offset from a previous line of this log, like "1700000000000-0"')
    .default(logStart)
    .meta({ description: 'Resume after the line with this offset' }),
});

export const reportFormats = ['json', 'junit', 'csv', 'markdown'] as const;

export const taskReportQuerySchema = z.object({
  format: z.enum(reportFormats).default('json').meta({
    description:
      "json (this document's TaskReport), junit (JUnit XML: a testsuite per run, a testcase per group), csv (the original's result file: run_id,task_id,outcome,error), markdown (a CI job summary)",
  }),
});

export const healthcheckQuerySchema = z.object({
  fix: flag.default('false').meta({ description: 'Repair what can be repaired' }),
});

const compositionRequired = 'required: the composition as TOML or JSON text';

const compositionField = z
  .string({ error: compositionRequired })
  .max(maxCompositionBytes)
  .refine((text) => text.trim() !== '', compositionRequired)
  .meta({ description: 'The composition, TOML or JSON' });

const planFile = z.string().meta({ format: 'binary', description: 'The plan directory as .tar.gz' });

/** The text fields of `POST /runs` (multipart/form-data); the plan archive is a file part. */
const metadataField = (what: string) =>
  z
    .string()
    .trim()
    .min(1)
    .max(300)
    .optional()
    .meta({
      description: `${what} the task comes from (CI), recorded and shown; --supersede matches on repo and branch`,
    });

/** Where a task comes from, as the CLI's --metadata-* flags send it. */
const metadataFields = {
  metadata_repo: metadataField('The repository'),
  metadata_branch: metadataField('The branch'),
  metadata_commit: metadataField('The commit'),
};

export const runSubmissionFieldsSchema = z.object({
  composition: compositionField,
  ...metadataFields,
  supersede: z.enum(['true', 'false']).optional().meta({
    description:
      "true: cancel the older tasks still queued for the same metadata_repo, metadata_branch, plan and case (the submitter's own; an admin's reach everyone's)",
  }),
  run_ids: z
    .string()
    .max(10_000)
    .regex(/^[^,\s]+(,[^,\s]+)*$/, 'run names separated by commas, like "small,large"')
    .optional()
    .meta({
      description: "Run only these of the composition's runs, in this order (comma-separated [[runs]] ids)",
    }),
});

/** The whole multipart form, as documented: the fields above and the plan archive as a file part. */
export const runSubmissionFormSchema = runSubmissionFieldsSchema.extend({ plan: planFile });

/** The text fields of `POST /builds`: a composition whose groups are built, not run. */
export const buildSubmissionFieldsSchema = z.object({ composition: compositionField, ...metadataFields });

export const buildSubmissionFormSchema = buildSubmissionFieldsSchema.extend({ plan: planFile });

// ---- responses

const timestamp = z.iso.datetime();
const count = z.number().int().nonnegative();

export const problemDetailSchema = z.object({
  path: z.string().meta({ description: 'Dotted path of the offending field' }),
  message: z.string(),
});

export const errorBodySchema = z
  .object({
    error: z.object({
      code: z.enum(errorCodes),
      message: z.string(),
      details: z.array(problemDetailSchema),
    }),
  })
  .meta({ description: 'The request was refused; `details` names each offending field' });

export const instanceResultSchema = z.object({
  group: z.string(),
  index: count,
  outcome: z.enum(instanceOutcomes),
  reason: z.string(),
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  notes: z
    .array(z.string())
    .optional()
    .meta({ description: 'What the daemon did to its output, e.g. truncated it at the per-instance quota' }),
  phases: z
    .array(z.object({ name: z.string(), at: timestamp }))
    .optional()
    .meta({
      description:
        'Timestamped marks in order: created, started, network-initialized, stage-start:<stage>, stage-end:<stage>, ended',
    }),
});

export const metricSummarySchema = z
  .object({
    type: z.enum(metricTypes),
    unit: z.string().optional(),
    count: count,
    min: z.number(),
    p50: z.number(),
    p90: z.number(),
    p99: z.number(),
    max: z.number(),
    mean: z.number(),
  })
  .meta({
    description:
      "One metric of one group over every instance (a counter by each instance's final total); percentiles by nearest rank",
  });

export const metricsSummarySchema = z
  .record(z.string(), z.record(z.string(), metricSummarySchema))
  .meta({ description: 'Group id → metric name → its summary' });

export const metricPointSchema = z.object({
  group: z.string(),
  instance: count,
  name: z.string(),
  type: z.enum(metricTypes),
  value: z.number(),
  unit: z.string().optional(),
  ts: timestamp,
});

export const runMetricsQuerySchema = z.object({
  raw: flag.default('false').meta({ description: 'Also list every recorded point' }),
});

export const runMetricsSchema = z
  .object({
    run_id: z.string(),
    task_id: z.string(),
    groups: metricsSummarySchema,
    points: z.array(metricPointSchema).optional().meta({
      description: 'With `?raw=true`: every point each instance recorded, group by group, in order',
    }),
  })
  .meta({ description: "What a run's instances recorded in metrics.out, summarised per group and metric" });

export const groupSummarySchema = z.object({
  total: count,
  ok: count,
  outcomes: z.partialRecord(z.enum(instanceOutcomes), count),
});

export const runResultSchema = z
  .object({
    outcome: z.enum(runOutcomes),
    reason: z.string(),
    groups: z.record(z.string(), groupSummarySchema),
    instances: z.array(instanceResultSchema),
    metrics: metricsSummarySchema.optional(),
  })
  .meta({ description: 'Per-group counts and per-instance outcomes, each with its reason' });

export const reportInstanceSchema = z.object({
  group: z.string(),
  index: count,
  outcome: z.enum(instanceOutcomes),
  reason: z.string(),
  tail: z.array(z.string()).meta({ description: 'The last lines of its run.out and run.err, oldest first' }),
});

export const runReportSchema = z.object({
  runId: z.string(),
  name: z.string().meta({ description: "The composition's name for the run: default, or its [[runs]] id" }),
  outcome: z.enum(runOutcomes).optional().meta({ description: 'Absent while the run has not ended' }),
  error: z.string().optional(),
  startedAt: timestamp.optional(),
  endedAt: timestamp.optional(),
  groups: z
    .array(groupSummarySchema.extend({ id: z.string() }))
    .meta({ description: 'Every group of the run; one that never started has ok 0 of the instances asked' }),
  failed: z.array(reportInstanceSchema).meta({ description: 'The instances that did not succeed' }),
});

export const taskReportSchema = z
  .object({
    taskId: z.string(),
    plan: z.string(),
    testCase: z.string(),
    runner: z.string(),
    outcome: z.enum(runOutcomes).optional(),
    error: z.string().optional(),
    createdAt: timestamp,
    endedAt: timestamp.optional(),
    runs: z.array(runReportSchema),
  })
  .meta({
    description: "A task's results for CI: every run, every group, and why each failed instance failed",
  });

export const runViewSchema = z
  .object({
    id: z
      .string()
      .meta({ description: 'The run id: `<task_id>-<name>`, or the task id for a task without [[runs]]' }),
    name: z.string().meta({ description: "The composition's [[runs]] id, or `default`" }),
    instances: count,
    state: z.enum(runStates),
    outcome: z.enum(runOutcomes).nullable(),
    error: z.string().nullable(),
    result: runResultSchema.nullable(),
    started_at: timestamp.nullable(),
    ended_at: timestamp.nullable(),
  })
  .meta({
    description: 'One run of a task; runs go one after another, each with its own outcome and outputs',
  });

const groupProgressFields = z
  .object({
    group: z.string(),
    instances: count.meta({ description: 'Instances the group has' }),
    started: count.meta({
      description: 'Instances that started (the running ones and the ended ones that ran)',
    }),
    running: count.meta({ description: 'Started and not ended' }),
    ended: z
      .partialRecord(z.enum(instanceOutcomes), count)
      .meta({ description: 'Ended instances by outcome; an outcome no instance had is left out' }),
  })
  .meta({ description: "One group's instances by phase" });

const syncStateProgressSchema = z
  .object({
    name: z.string().meta({ description: 'The sync state (a barrier waits on one)' }),
    count: count.meta({ description: 'How many signalled it' }),
    target: count.meta({ description: 'The largest target a barrier asked of it; 0 when no barrier did' }),
    waiting: count.meta({ description: 'Barriers waiting on it now' }),
  })
  .meta({ description: "One state of the run's sync service: `count` of `target`, `waiting` barriers" });

const runProgressFields = {
  run: z.string().meta({ description: "The run's id" }),
  groups: z.array(groupProgressFields),
  states: z.array(syncStateProgressSchema).meta({
    description:
      "The sync service's states, those with waiting barriers first (at most 20); empty before it answers",
  }),
};

export const runProgressSchema = z
  .object({ ...runProgressFields, at: timestamp.meta({ description: 'When it was taken' }) })
  .meta({ description: 'How far a run has got: its groups by phase and its barriers, while it runs' });

export const groupArtifactSchema = z.object({
  group: z.string(),
  builder: z.string(),
  artifact: z.string().meta({
    description:
      'The artifact id (`sha256:…` for an image, `bundle:<hash>` for a bundle): give it as `run.artifact` to skip the build',
  }),
});

/** What a task's full view and its listing summary both say first. */
const taskMetadataSchema = z
  .object({ repo: z.string().optional(), branch: z.string().optional(), commit: z.string().optional() })
  .meta({ description: 'Where the task comes from (CI), as submitted' });

const taskHeadFields = {
  id: z.string(),
  type: z.enum(taskTypes),
  plan: z.string(),
  case: z.string(),
  builder: z.string(),
  runner: z.string(),
  instances: count.meta({ description: 'Instances over all its runs' }),
  created_by: z.string(),
  created_at: timestamp,
  state: z.enum(taskStates),
};

export const taskViewSchema = z
  .object({
    ...taskHeadFields,
    run_id: z.string().meta({ description: "The first run's id (the task id for a task without [[runs]])" }),
    states: z.array(z.object({ state: z.enum(taskStates), at: timestamp })),
    outcome: z
      .enum(runOutcomes)
      .nullable()
      .meta({ description: "The worst of its runs' outcomes: error > canceled > failure > success" }),
    error: z.string().nullable(),
    result: runResultSchema
      .nullable()
      .meta({ description: "The first run's result; every run's is in `runs`" }),
    runs: z.array(runViewSchema).meta({ description: 'In the order they run; none for a build task' }),
    artifacts: z
      .array(groupArtifactSchema)
      .meta({ description: 'What its builds produced (or were given), per group' }),
    warnings: z
      .array(problemDetailSchema)
      .meta({ description: 'What the daemon accepted but ignores or reads differently, by field' }),
    cancel_requested: z.boolean(),
    metadata: taskMetadataSchema,
    supersedes: z.array(z.string()).meta({
      description: 'Older queued tasks of the same repo, branch, plan and case it canceled at submit',
    }),
    composition: z
      .record(z.string(), z.unknown())
      .meta({ description: 'The composition as submitted, parsed into a JSON document' }),
    progress: z.array(runProgressSchema).meta({
      description:
        'The latest progress of each run that has started, in run order (updated about once a second while it runs); empty before the first run starts',
    }),
  })
  .meta({ description: 'A task as clients see it; internals such as paths are left out' });

export const taskSummarySchema = z
  .object({
    ...taskHeadFields,
    ended_at: timestamp.nullable(),
    outcome: z.enum(runOutcomes).nullable(),
    error: z.string().nullable(),
    cancel_requested: z.boolean(),
    metadata: taskMetadataSchema,
    links: z.object({ task: z.string() }),
  })
  .meta({ description: 'A task in a listing; GET its `links.task` for runs, results and the composition' });

export const taskListSchema = z.object({
  tasks: z.array(taskSummarySchema).meta({ description: 'Newest first' }),
  next_cursor: z.string().nullable().meta({
    description:
      'Pass it as `cursor` for the next page; null on the last page. A page may hold fewer than `limit` tasks when a filter matched few of the tasks it looked at',
  }),
});

export const submittedSchema = z.object({
  task_id: z.string(),
  run_id: z.string().meta({ description: "The first run's id; the task id for a build" }),
  type: z.enum(taskTypes),
  state: z.enum(taskStates),
  runs: z
    .array(z.object({ id: z.string(), name: z.string() }))
    .meta({ description: 'The runs it will carry out, in order; none for a build' }),
  links: z.object({
    task: z.string(),
    logs: z.string(),
    cancel: z.string(),
    outputs: z.string().optional().meta({ description: "Every run's outputs; absent for a build" }),
  }),
  warnings: z
    .array(problemDetailSchema)
    .meta({ description: 'Accepted, but worth a word: keys without effect here, values read differently' }),
  superseded: z
    .array(z.string())
    .meta({ description: 'The older queued tasks it canceled (supersede=true)' }),
});

const lineBase = {
  ts: timestamp,
  offset: z.string().meta({ description: 'Pass it as `offset` to resume after this line' }),
};

export const logLineSchema = z
  .discriminatedUnion('kind', [
    z.object({
      kind: z.literal('log'),
      ...lineBase,
      level: z.enum(['info', 'warn', 'error']),
      msg: z.string(),
    }),
    z.object({
      kind: z.literal('output'),
      ...lineBase,
      group: z.string(),
      instance: count,
      stream: z.enum(['stdout', 'stderr']),
      line: z.string(),
    }),
    z.object({
      kind: z.literal('instance_end'),
      ...lineBase,
      group: z.string(),
      instance: count,
      outcome: z.enum(instanceOutcomes),
      reason: z.string(),
    }),
    z.object({ kind: z.literal('state'), ...lineBase, state: z.enum(taskStates) }),
    z
      .object({ kind: z.literal('progress'), ...lineBase, ...runProgressFields })
      .meta({ description: "The run's progress, appended when it changes (at most about once a second)" }),
    z.object({
      kind: z.literal('end'),
      ...lineBase,
      state: z.enum(taskStates),
      outcome: z.enum(runOutcomes).optional(),
      error: z.string().optional(),
    }),
  ])
  .meta({ description: 'One NDJSON line of a task log; the last line of an ended task is `end`' });

export const healthcheckCheckSchema = z.object({
  name: z.string(),
  ok: z.boolean(),
  message: z.string(),
  fix: z.string().optional().meta({ description: 'What `fix=true` did about it, when it did something' }),
});

export const healthcheckReportSchema = z.object({
  runner: z.string(),
  ok: z.boolean(),
  checks: z.array(healthcheckCheckSchema),
});

export const terminateResultSchema = z.object({
  runner: z.string(),
  canceled: z.array(z.string()).meta({ description: 'The ids of the tasks it canceled' }),
  failed: z.array(z.object({ task: z.string(), reason: z.string() })).meta({
    description: 'Tasks it could not cancel, with the reason; the others were canceled all the same',
  }),
  removed: z.record(z.string(), count).meta({ description: 'How many of each kind of leftover it removed' }),
  not_removed: z.array(z.object({ kind: z.string(), name: z.string(), reason: z.string() })).meta({
    description:
      'What it could not remove (a network the engine keeps stale endpoints on, an unreachable engine), and why',
  }),
});

export const gcQuerySchema = z.object({
  dry_run: flag.default('false').meta({ description: 'List what is past retention without removing it' }),
});

const retentionKindSchema = z.enum(['outputs', 'snapshots', 'cache', 'images']);
const kindUsageSchema = z.object({ entries: count, bytes: count });

export const gcReportSchema = z.object({
  dryRun: z.boolean(),
  at: z.string().meta({ description: 'ISO 8601' }),
  removed: z
    .array(
      z.object({
        kind: retentionKindSchema,
        id: z.string().meta({
          description:
            'A run id (outputs), a task id (snapshots), `bundle:<hash>` or `content:<file>` (cache), an image id (images)',
        }),
        bytes: count,
        lastUsed: z.string().meta({ description: 'ISO 8601: its last write or use' }),
        reason: z.enum(['age', 'size', 'home size', 'unreferenced']),
      }),
    )
    .meta({ description: 'What was removed; with dry_run=true, what would be' }),
  freedBytes: count,
  kept: z
    .array(z.object({ kind: retentionKindSchema, id: z.string(), why: z.string() }))
    .meta({ description: 'Past retention, but kept: a queued or running task needs it' }),
  failures: z.array(z.object({ kind: retentionKindSchema, id: z.string(), message: z.string() })),
  usage: z.object({
    outputs: kindUsageSchema,
    snapshots: kindUsageSchema,
    cache: kindUsageSchema,
    images: kindUsageSchema,
  }),
  homeBytes: count.meta({ description: 'Outputs, snapshots and build caches together, afterwards' }),
  neededBytes: count.meta({
    description: 'Of homeBytes, what queued, building and running tasks need',
  }),
});

export const builderParamsSchema = z.object({
  id: z.string().min(1).meta({ description: 'Builder id, e.g. exec:node or docker:node' }),
});

export const buildPurgeQuerySchema = z.object({
  plan: z.string().min(1).meta({ description: "The plan's manifest name" }),
});

export const buildPurgeReportSchema = z
  .object({
    builder: z.string(),
    plan: z.string(),
    removed: z.array(z.object({ kind: retentionKindSchema, id: z.string(), bytes: count })),
    kept: z
      .array(z.object({ kind: retentionKindSchema, id: z.string(), why: z.string() }))
      .meta({ description: 'Caches of the plan that a queued, building or running task needs' }),
    failures: z.array(z.object({ kind: retentionKindSchema, id: z.string(), message: z.string() })),
    freedBytes: count,
  })
  .meta({ description: "What build purge removed of one builder's caches of one plan, and what it kept" });

export const healthSchema = z.object({
  ok: z.boolean(),
  checks: z.record(z.string(), z.object({ ok: z.boolean(), message: z.string() })),
  version: z.string(),
});

export type TaskListQuery = z.infer<typeof taskListQuerySchema>;
export type ErrorBody = z.infer<typeof errorBodySchema>;
export type ProblemDetailView = z.infer<typeof problemDetailSchema>;
export type RunResultView = z.infer<typeof runResultSchema>;
export type TaskView = z.infer<typeof taskViewSchema>;
export type RunProgressView = z.infer<typeof runProgressSchema>;
export type RunView = z.infer<typeof runViewSchema>;
export type GroupArtifactView = z.infer<typeof groupArtifactSchema>;
export type TaskList = z.infer<typeof taskListSchema>;
export type TaskSummaryView = z.infer<typeof taskSummarySchema>;
export type Submitted = z.infer<typeof submittedSchema>;
export type LogLine = z.infer<typeof logLineSchema>;
export type HealthcheckCheck = z.infer<typeof healthcheckCheckSchema>;
export type HealthcheckReport = z.infer<typeof healthcheckReportSchema>;
export type TerminateResult = z.infer<typeof terminateResultSchema>;
export type Health = z.infer<typeof healthSchema>;
export type RunMetrics = z.infer<typeof runMetricsSchema>;
export type MetricPointView = z.infer<typeof metricPointSchema>;
export type GcReport = z.infer<typeof gcReportSchema>;
export type BuildPurgeReport = z.infer<typeof buildPurgeReportSchema>;
export type ReportFormat = (typeof reportFormats)[number];
export type ReportInstance = z.infer<typeof reportInstanceSchema>;
export type RunReport = z.infer<typeof runReportSchema>;
export type TaskReport = z.infer<typeof taskReportSchema>;

/**
 * The API's OpenAPI 3.1 document, generated from the zod schemas the routes validate with and answer
 * from (`schemas.ts`), by zod's own JSON Schema converter (draft 2020-12, the dialect of OpenAPI 3.1).
 * Response objects come out with `additionalProperties: false`, so the document is exactly as strict as
 * what the routes send; parsing with the same schemas stays lenient about fields it does not know.
 */
import { z } from 'zod';
import {
  buildPurgeQuerySchema,
  buildPurgeReportSchema,
  builderParamsSchema,
  buildSubmissionFormSchema,
  errorBodySchema,
  gcQuerySchema,
  gcReportSchema,
  groupArtifactSchema,
  healthcheckQuerySchema,
  healthcheckReportSchema,
  healthSchema,
  logLineSchema,
  metricPointSchema,
  metricSummarySchema,
  runMetricsQuerySchema,
  runMetricsSchema,
  runnerParamsSchema,
  runParamsSchema,
  runResultSchema,
  runViewSchema,
  runSubmissionFormSchema,
  submittedSchema,
  taskListQuerySchema,
  taskListSchema,
  taskLogsQuerySchema,
  taskParamsSchema,
  taskReportQuerySchema,
  taskReportSchema,
  taskSummarySchema,
  taskViewSchema,
  terminateResultSchema,
} from './schemas.ts';

type JsonSchema = Record<string, unknown>;

/** The named schemas of `components.schemas`; any schema used in them or in a path becomes a `$ref`. */
const components: Record<string, z.ZodType> = {
  Error: errorBodySchema,
  Task: taskViewSchema,
  TaskList: taskListSchema,
  TaskSummary: taskSummarySchema,
  Run: runViewSchema,
  RunResult: runResultSchema,
  GroupArtifact: groupArtifactSchema,
  Submitted: submittedSchema,
  LogLine: logLineSchema,
  HealthcheckReport: healthcheckReportSchema,
  TerminateResult: terminateResultSchema,
  Health: healthSchema,
  TaskReport: taskReportSchema,
  GcReport: gcReportSchema,
  RunMetrics: runMetricsSchema,
  MetricSummary: metricSummarySchema,
  MetricPoint: metricPointSchema,
};

interface ResponseSpec {
  description: string;
  /** Media type → body schema; `undefined` for a body no schema describes (a .tgz). */
  content?: Record<string, z.ZodType | undefined>;
}

interface OperationSpec {
  method: 'get' | 'post';
  /** In OpenAPI's form, relative to the server URL: `/tasks/{id}`. */
  path: string;
  summary: string;
  /** Health and the document itself answer without a token. */
  public?: true;
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: { mediaType: string; schema: z.ZodType };
  responses: Record<number, ResponseSpec>;
}

const json = (description: string, schema: z.ZodType): ResponseSpec => ({
  description,
  content: { 'application/json': schema },
});
const refused = (description: string): ResponseSpec => json(description, errorBodySchema);
const badRequest = refused('A path or query parameter is not valid; `details` names it');
const unauthorized = refused('The daemon has tokens and the request did not carry one of them');
const forbidden = (what: string): ResponseSpec =>
  refused(`The token's role or user may not do this: ${what}`);
const taskNotFound = refused('No task has this id');
const internal = refused('The daemon failed; the details are in its log');
const redisUnavailable = refused(
  'Redis is away (`redis_unavailable`): answered at once instead of waiting for it; try again shortly',
);

const operations: OperationSpec[] = [
  {
    method: 'post',
    path: '/runs',
    summary: "Queue a task that builds what a composition's runs need once, then runs them one after another",
    body: { mediaType: 'multipart/form-data', schema: runSubmissionFormSchema },
    responses: {
      202: json('Queued', submittedSchema),
      400: refused(
        'The composition, the plan archive or the form is not valid, or a prebuilt artifact is unknown or of the wrong kind; `details` names each problem',
      ),
      401: unauthorized,
      403: forbidden('viewers only read'),
      413: refused('The plan archive is larger than the upload limit, or than the whole upload quota'),
      429: refused(
        'A queue limit (per user or in total) or the upload quota is reached; `Retry-After` says when to try again',
      ),
      500: internal,
    },
  },
  {
    method: 'post',
    path: '/builds',
    summary:
      "Queue a task that builds a composition's groups without running them; the task lists the artifacts",
    body: { mediaType: 'multipart/form-data', schema: buildSubmissionFormSchema },
    responses: {
      202: json('Queued', submittedSchema),
      400: refused(
        'The composition, the plan archive or the form is not valid; `details` names each problem',
      ),
      401: unauthorized,
      403: forbidden('viewers only read'),
      413: refused('The plan archive is larger than the upload limit, or than the whole upload quota'),
      429: refused(
        'A queue limit (per user or in total) or the upload quota is reached; `Retry-After` says when to try again',
      ),
      500: internal,
    },
  },
  {
    method: 'get',
    path: '/runs/{id}/outputs',
    summary:
      "A run's outputs as .tgz (entries `<run_id>/<group>/<instance>/<file>`); given a task id, every run's in one archive",
    params: runParamsSchema,
    responses: {
      200: {
        description: 'A gzip stream, built while it is sent',
        content: { 'application/gzip': undefined },
      },
      400: badRequest,
      401: unauthorized,
      404: refused(
        'No run or task has this id, it is a build, it ended before any instance started, or its outputs are gone',
      ),
      409: refused('The run (or, given a task id, the task) has not ended yet'),
      500: internal,
    },
  },
  {
    method: 'get',
    path: '/runs/{id}/metrics',
    summary:
      "What a run's instances recorded in metrics.out: per group and metric count, min, p50, p90, p99, max, mean; with `raw=true` every point too",
    params: runParamsSchema,
    query: runMetricsQuerySchema,
    responses: {
      200: json('The summary (empty groups when no instance recorded a metric)', runMetricsSchema),
      400: badRequest,
      401: unauthorized,
      404: refused(
        'No run or task has this id, it is a build, it ended before any instance started, or (raw) its outputs are gone',
      ),
      409: refused('The run has not ended yet'),
      500: internal,
    },
  },
  {
    method: 'get',
    path: '/tasks',
    summary: 'List tasks, newest first: a page of summaries and a cursor to the next',
    query: taskListQuerySchema,
    responses: {
      200: json('The tasks', taskListSchema),
      400: badRequest,
      401: unauthorized,
      500: internal,
      503: redisUnavailable,
    },
  },
  {
    method: 'get',
    path: '/tasks/{id}',
    summary: 'One task',
    params: taskParamsSchema,
    responses: {
      200: json('The task', taskViewSchema),
      400: badRequest,
      401: unauthorized,
      404: taskNotFound,
      500: internal,
    },
  },
  {
    method: 'get',
    path: '/tasks/{id}/logs',
    summary: "The task's log and its instances' output as NDJSON; with follow=true, live until the task ends",
    params: taskParamsSchema,
    query: taskLogsQuerySchema,
    responses: {
      200: {
        description: 'NDJSON: every line is one LogLine',
        content: { 'application/x-ndjson': logLineSchema },
      },
      400: badRequest,
      401: unauthorized,
      404: taskNotFound,
      500: internal,
    },
  },
  {
    method: 'get',
    path: '/tasks/{id}/report',
    summary: "The task's results for CI: JSON, JUnit XML, the original's CSV or a Markdown summary",
    params: taskParamsSchema,
    query: taskReportQuerySchema,
    responses: {
      200: {
        description: 'The report in the asked format',
        content: {
          'application/json': taskReportSchema,
          'application/xml': undefined,
          'text/csv': undefined,
          'text/markdown': undefined,
        },
      },
      400: badRequest,
      401: unauthorized,
      404: taskNotFound,
      500: internal,
    },
  },
  {
    method: 'post',
    path: '/tasks/{id}/cancel',
    summary: 'Cancel a queued or running task',
    params: taskParamsSchema,
    responses: {
      200: json('The task after the request', taskViewSchema),
      400: badRequest,
      401: unauthorized,
      403: forbidden('a user cancels only their own tasks, a viewer none; admins cancel any'),
      404: taskNotFound,
      409: refused('The task has ended already'),
      500: internal,
    },
  },
  {
    method: 'post',
    path: '/runners/{id}/healthcheck',
    summary: "Check (and with fix=true, repair) what the runner needs on this daemon's host",
    params: runnerParamsSchema,
    query: healthcheckQuerySchema,
    responses: {
      200: json('The checks', healthcheckReportSchema),
      400: badRequest,
      401: unauthorized,
      403: forbidden('fix=true needs an admin; viewers only read'),
      404: refused('This daemon has no runner with this id'),
      500: internal,
    },
  },
  {
    method: 'post',
    path: '/runners/{id}/terminate',
    summary: 'Cancel every task of the runner that has not ended and remove what ended runs left behind',
    params: runnerParamsSchema,
    responses: {
      200: json('What was canceled and removed', terminateResultSchema),
      401: unauthorized,
      403: forbidden('terminate needs an admin'),
      404: refused('This daemon has no runner with this id'),
      500: internal,
    },
  },
  {
    method: 'post',
    path: '/gc',
    summary:
      'Remove what is past retention (outputs, task snapshots, build caches, plan images); never what a queued or running task needs',
    query: gcQuerySchema,
    responses: {
      200: json('What was (with dry_run=true: would be) removed and kept', gcReportSchema),
      400: badRequest,
      401: unauthorized,
      403: forbidden('only admins collect'),
      500: internal,
    },
  },
  {
    method: 'post',
    path: '/builders/{id}/purge',
    summary:
      "Remove the builder's caches of a plan (exec:node bundles; plan images for docker:node and docker:generic), whatever their age; never what a queued or running task needs",
    params: builderParamsSchema,
    query: buildPurgeQuerySchema,
    responses: {
      200: json('What was removed and what was kept', buildPurgeReportSchema),
      400: badRequest,
      401: unauthorized,
      403: forbidden('viewers cannot purge'),
      500: internal,
    },
  },
  {
    method: 'get',
    path: '/health',
    summary: 'Daemon health',
    public: true,
    responses: {
      200: json('Healthy', healthSchema),
      500: internal,
      503: json('A dependency is down', healthSchema),
    },
  },
];

/** Builds the document served at `/api/v1/openapi.json`. */
export function buildOpenApiDocument(): JsonSchema {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(components)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, {
    target: 'draft-2020-12',
    uri: (id) => `#/components/schemas/${id}`,
  });
  const idOf = new Map([...Object.entries(components)].map(([id, schema]) => [schema, id]));
  const schemaFor = (schema: z.ZodType, io: 'input' | 'output'): JsonSchema => {
    const id = idOf.get(schema);
    return id
      ? { $ref: `#/components/schemas/${id}` }
      : bare(z.toJSONSchema(schema, { target: 'draft-2020-12', io }));
  };

  const paths: Record<string, Record<string, unknown>> = {};
  for (const operation of operations) {
    const responses: Record<string, unknown> = {};
    for (const [status, response] of Object.entries(operation.responses)) {
      responses[status] = {
        description: response.description,
        ...(response.content && {
          content: Object.fromEntries(
            Object.entries(response.content).map(([mediaType, schema]) => [
              mediaType,
              schema ? { schema: schemaFor(schema, 'output') } : {},
            ]),
          ),
        }),
      };
    }
    const parameters = [
      ...(operation.params ? parametersOf(operation.params, 'path') : []),
      ...(operation.query ? parametersOf(operation.query, 'query') : []),
    ];
    (paths[operation.path] ??= {})[operation.method] = {
      summary: operation.summary,
      ...(operation.public && { security: [] }),
      ...(parameters.length > 0 && { parameters }),
      ...(operation.body && {
        requestBody: {
          required: true,
          content: { [operation.body.mediaType]: { schema: schemaFor(operation.body.schema, 'input') } },
        },
      }),
      responses,
    };
  }
  paths['/openapi.json'] = {
    get: {
      summary: 'This document',
      security: [],
      responses: { 200: { description: 'The OpenAPI 3.1 document', content: { 'application/json': {} } } },
    },
  };

  return {
    openapi: '3.1.0',
    info: {
      title: 'Testground for TypeScript daemon API',
      version: '1',
      description:
        'Submit runs and builds of test plans, follow their logs live, cancel them and collect their outputs.',
    },
    servers: [{ url: '/api/v1' }],
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description:
            'Required when the daemon has tokens (a tokens file or TESTGROUND_TOKEN); the token names the user and role (admin, user or viewer)',
        },
      },
      schemas: Object.fromEntries(Object.entries(schemas).map(([id, schema]) => [id, bare(schema)])),
    },
  };
}

/** One parameter per property of an object schema, with what zod knows of it (type, limits, default). */
function parametersOf(schema: z.ZodObject, where: 'path' | 'query'): JsonSchema[] {
  const converted = bare(z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'input' }));
  const properties = (converted.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((converted.required ?? []) as string[]);
  return Object.entries(properties).map(([name, { description, ...property }]) => ({
    name,
    in: where,
    required: where === 'path' || required.has(name),
    ...(typeof description === 'string' && { description }),
    schema: property,
  }));
}

/** A standalone JSON Schema's `$schema` and `$id` mean nothing inside an OpenAPI document. */
function bare(schema: object): JsonSchema {
  const { $schema: _schema, $id: _id, ...rest } = schema as JsonSchema;
  return rest;
}

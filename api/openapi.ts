/** The API's OpenAPI 3.1 description, served at `/api/v1/openapi.json`. */

const errorResponse = {
  description: 'The request was refused; `details` names each offending field',
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
};

const taskIdParameter = {
  name: 'id',
  in: 'path',
  required: true,
  schema: { type: 'string', pattern: '^[a-z0-9]{1,64}$' },
};

export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'Testground for TypeScript daemon API',
    version: '1',
    description: 'Submit runs of test plans, follow their logs live, cancel them and collect their outputs.',
  },
  servers: [{ url: '/api/v1' }],
  components: {
    securitySchemes: {
      bearer: {
        type: 'http',
        scheme: 'bearer',
        description: 'Required only when the daemon has TESTGROUND_TOKEN set',
      },
    },
    schemas: {
      Error: {
        type: 'object',
        required: ['error'],
        properties: {
          error: {
            type: 'object',
            required: ['code', 'message', 'details'],
            properties: {
              code: {
                type: 'string',
                enum: [
                  'invalid_request',
                  'invalid_archive',
                  'unauthorized',
                  'not_found',
                  'conflict',
                  'too_large',
                  'dependency_unavailable',
                  'internal',
                ],
              },
              message: { type: 'string' },
              details: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: { path: { type: 'string' }, message: { type: 'string' } },
                },
              },
            },
          },
        },
      },
      Task: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          run_id: { type: 'string' },
          plan: { type: 'string' },
          case: { type: 'string' },
          builder: { type: 'string' },
          runner: { type: 'string' },
          instances: { type: 'integer' },
          created_by: { type: 'string' },
          created_at: { type: 'string', format: 'date-time' },
          state: { type: 'string', enum: ['queued', 'building', 'running', 'complete', 'canceled'] },
          states: {
            type: 'array',
            items: {
              type: 'object',
              properties: { state: { type: 'string' }, at: { type: 'string', format: 'date-time' } },
            },
          },
          outcome: { type: ['string', 'null'], enum: ['success', 'failure', 'error', 'canceled', null] },
          error: { type: ['string', 'null'] },
          result: {
            type: ['object', 'null'],
            description:
              'Per-group counts and per-instance outcomes (success, failure, crash, timeout, no_outcome, canceled) with reasons',
          },
        },
      },
      LogLine: {
        type: 'object',
        description:
          'One NDJSON line; `kind` is log | output | instance_end | state | end, `offset` resumes the stream after this line',
        required: ['kind', 'ts', 'offset'],
        properties: { kind: { type: 'string' }, ts: { type: 'string' }, offset: { type: 'string' } },
      },
    },
  },
  security: [{ bearer: [] }],
  paths: {
    '/runs': {
      post: {
        summary: 'Queue a run',
        requestBody: {
          required: true,
          content: {
            'multipart/form-data': {
              schema: {
                type: 'object',
                required: ['composition', 'plan'],
                properties: {
                  composition: { type: 'string', description: 'The composition, TOML or JSON' },
                  plan: { type: 'string', format: 'binary', description: 'The plan directory as .tar.gz' },
                },
              },
            },
          },
        },
        responses: {
          '202': { description: 'Queued: `{task_id, run_id, state, links}`' },
          '400': errorResponse,
          '401': errorResponse,
          '413': errorResponse,
        },
      },
    },
    '/runs/{id}/outputs': {
      get: {
        summary: "The run's outputs as .tgz (entries `<run_id>/<group>/<instance>/<file>`)",
        parameters: [taskIdParameter],
        responses: {
          '200': { description: 'gzip stream', content: { 'application/gzip': {} } },
          '404': errorResponse,
          '409': errorResponse,
        },
      },
    },
    '/tasks': {
      get: {
        summary: 'List tasks, newest first',
        parameters: [
          {
            name: 'state',
            in: 'query',
            schema: { type: 'string', enum: ['queued', 'building', 'running', 'complete', 'canceled'] },
          },
          { name: 'plan', in: 'query', schema: { type: 'string' } },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 50 } },
        ],
        responses: { '200': { description: '`{tasks: Task[]}`' }, '400': errorResponse },
      },
    },
    '/tasks/{id}': {
      get: {
        summary: 'One task',
        parameters: [taskIdParameter],
        responses: {
          '200': {
            description: 'The task',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Task' } } },
          },
          '404': errorResponse,
        },
      },
    },
    '/tasks/{id}/logs': {
      get: {
        summary: "The task's log and instance output as NDJSON; with follow=true, live until the task ends",
        parameters: [
          taskIdParameter,
          { name: 'follow', in: 'query', schema: { type: 'boolean', default: false } },
          {
            name: 'offset',
            in: 'query',
            schema: { type: 'string' },
            description: 'Resume after this offset',
          },
        ],
        responses: {
          '200': {
            description: 'NDJSON',
            content: { 'application/x-ndjson': { schema: { $ref: '#/components/schemas/LogLine' } } },
          },
          '404': errorResponse,
        },
      },
    },
    '/tasks/{id}/cancel': {
      post: {
        summary: 'Cancel a queued or running task',
        parameters: [taskIdParameter],
        responses: {
          '200': { description: 'The task after the request' },
          '404': errorResponse,
          '409': errorResponse,
        },
      },
    },
    '/health': {
      get: {
        summary: 'Daemon health (no token needed)',
        security: [],
        responses: { '200': { description: 'Healthy' }, '503': { description: 'A dependency is down' } },
      },
    },
  },
} as const;

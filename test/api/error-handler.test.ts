import assert from 'node:assert/strict';
import os from 'node:os';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import request from 'supertest';
import { createApp } from '../../api/app.ts';
import type { ApiDeps } from '../../api/deps.ts';
import { errorCodes, TestgroundError, type ErrorCode } from '../../core/errors.ts';

/** An error of any code, as a builder, a runner or the Docker seam would throw it. */
class CodedError extends TestgroundError {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message, [{ path: 'x', message: 'y' }]);
    this.code = code;
  }
}

// The statuses clients see: changing one is an API change, so it is spelled out here on purpose.
const expectedStatus: Record<ErrorCode, number> = {
  invalid_request: 400,
  invalid_archive: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  too_large: 413,
  too_many_requests: 429,
  build_failed: 422,
  runner_failed: 500,
  internal: 500,
  docker_failed: 502,
  dependency_unavailable: 503,
  redis_unavailable: 503,
  docker_subnet_in_use: 503,
};

/** The API over stand-in ports: `GET /api/v1/tasks/abc` throws `error`; the log is kept. */
function appThrowing(error: unknown): { app: ReturnType<typeof createApp>; logged: () => string } {
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
  const unused = (): never => {
    throw new Error('not used by this test');
  };
  const deps: ApiDeps = {
    reports: { render: unused },
    tasks: {
      submitRun: unused,
      submitBuild: unused,
      get: async () => {
        throw error;
      },
      cancel: unused,
    },
    taskList: { summaries: unused },
    logs: { history: unused, follow: unused },
    outputs: { archive: unused, metricPoints: unused },
    maintenance: { healthcheck: unused, terminate: unused },
    health: async () => ({ ok: true, checks: {}, version: 'test' }),
    uploadDir: os.tmpdir(),
    maxUploadBytes: 1024,
    logger,
  };
  return { app: createApp(deps), logged: () => lines.join('') };
}

describe('the error middleware', () => {
  it('maps every error code to its status, keeping the message and details', async () => {
    for (const code of errorCodes) {
      const { app } = appThrowing(new CodedError(code, `the ${code} message`));
      const response = await request(app).get('/api/v1/tasks/abc');
      assert.equal(response.status, expectedStatus[code], code);
      assert.deepEqual(response.body, {
        error: { code, message: `the ${code} message`, details: [{ path: 'x', message: 'y' }] },
      });
    }
  });

  it('logs a known 5xx where it answers it, and not a 4xx', async () => {
    const unavailable = appThrowing(new CodedError('dependency_unavailable', 'redis is down'));
    await request(unavailable.app).get('/api/v1/tasks/abc');
    assert.match(
      unavailable.logged(),
      /request failed[\s\S]*redis is down|redis is down[\s\S]*request failed/,
    );
    const notFound = appThrowing(new CodedError('not_found', 'no such task'));
    await request(notFound.app).get('/api/v1/tasks/abc');
    assert.equal(notFound.logged(), '');
  });

  it('answers 500 to anything else, with its internals only in the log', async () => {
    const cases: unknown[] = [
      new Error('cannot read /var/lib/testground/secret: permission denied'),
      // Node's errors carry a string code too; that does not make them explained.
      Object.assign(new Error('ENOENT: no such file, open /var/lib/testground/secret'), { code: 'ENOENT' }),
      // A code nobody gave a status must never pass for the client's fault.
      new CodedError('made_up' as ErrorCode, 'a code from the future at /var/lib/testground/secret'),
      'a thrown string at /var/lib/testground/secret',
    ];
    for (const error of cases) {
      const { app, logged } = appThrowing(error);
      const response = await request(app).get('/api/v1/tasks/abc');
      assert.equal(response.status, 500, String(error));
      assert.deepEqual(response.body, {
        error: { code: 'internal', message: 'internal error; see the daemon log', details: [] },
      });
      assert.match(logged(), /\/var\/lib\/testground\/secret/, 'the log has what the answer leaves out');
    }
  });

  it('refuses a composition over the field limit with 400 naming the field', async () => {
    const { app } = appThrowing(new Error('submitRun is never reached'));
    const response = await request(app)
      .post('/api/v1/runs')
      .field('composition', 'x'.repeat(1024 * 1024 + 1))
      .attach('plan', Buffer.from('not read'), 'plan.tar.gz');
    assert.equal(response.status, 400);
    const error = (response.body as { error: { code: string; message: string } }).error;
    assert.equal(error.code, 'invalid_request');
    assert.match(error.message, /composition/);
  });
});

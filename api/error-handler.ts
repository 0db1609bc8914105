import type { ErrorRequestHandler } from 'express';
import multer from 'multer';
import type { Logger } from 'pino';
import {
  errorCodes,
  MethodNotAllowedError,
  TestgroundError,
  TooLargeError,
  TooManyRequestsError,
  ValidationError,
  type ErrorCode,
} from '../core/errors.ts';
import type { RedisAvailabilityPort } from './deps.ts';
import type { ErrorBody } from './schemas.ts';

/** Every code has a status on purpose: adding a code without one here does not compile. */
const statusByCode: Record<ErrorCode, number> = {
  invalid_request: 400,
  invalid_archive: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  too_large: 413,
  too_many_requests: 429,
  // The submitted plan did not build: the request was well-formed, its content could not be processed.
  build_failed: 422,
  // A runner could not start or keep the run going (the sync service did not come up, no free subnet).
  runner_failed: 500,
  internal: 500,
  // The Docker engine answered, but refused or failed the operation: an upstream failure.
  docker_failed: 502,
  dependency_unavailable: 503,
  redis_unavailable: 503,
  // Every candidate subnet is taken for now; trying again later can succeed.
  docker_subnet_in_use: 503,
};

const knownCodes: ReadonlySet<string> = new Set(errorCodes);

/**
 * The one place errors become HTTP answers: `{error: {code, message, details}}`. Known errors keep their
 * message; anything else, or a code this table does not know, is a 500 whose internals stay in the log.
 */
export function errorHandler(
  logger: Logger,
  maxUploadBytes: number,
  redis?: Pick<RedisAvailabilityPort, 'explain'>,
): ErrorRequestHandler {
  return (error: unknown, request, response, _next) => {
    const known = toKnownError(error, maxUploadBytes) ?? redis?.explain(error);
    const status = known ? statusByCode[known.code] : 500;
    if (known?.code === 'redis_unavailable') {
      // Every request says it while Redis is away; the stack would only repeat the connection's log.
      logger.warn({ method: request.method, url: request.originalUrl }, known.message);
      response.setHeader('retry-after', '1');
    } else if (status >= 500) {
      // A 5xx is the daemon's trouble, not the client's: it is logged, with the stack, where it is answered.
      logger.error({ err: error, method: request.method, url: request.originalUrl }, 'request failed');
    }
    if (known instanceof MethodNotAllowedError) response.set('allow', known.allow.join(', '));
    const body: ErrorBody = known
      ? { error: { code: known.code, message: known.message, details: known.details } }
      : { error: { code: 'internal', message: 'internal error; see the daemon log', details: [] } };
    if (known instanceof TooManyRequestsError) {
      response.set('retry-after', String(Math.max(1, Math.ceil(known.retryAfterMs / 1000))));
    }
    response.status(status).json(body);
  };
}

function toKnownError(error: unknown, maxUploadBytes: number): TestgroundError | undefined {
  if (error instanceof TestgroundError) return knownCodes.has(error.code) ? error : undefined;
  if (error instanceof multer.MulterError) {
    if (error.code === 'LIMIT_FILE_SIZE') {
      return new TooLargeError(
        `the plan archive exceeds the upload limit of ${maxUploadBytes} bytes; leave build outputs and node_modules out (.testgroundignore)`,
        [{ path: error.field ?? 'plan', message: `larger than ${maxUploadBytes} bytes` }],
      );
    }
    return new ValidationError(
      `multipart upload rejected: ${error.message} (field ${JSON.stringify(error.field ?? '')}); send the fields "composition" and "plan"`,
      [{ path: error.field ?? 'body', message: error.message }],
    );
  }
  const { status, type } = (error ?? {}) as { status?: number; type?: string };
  // The router could not percent-decode a path parameter (`/tasks/%ZZ`).
  if (error instanceof URIError && status === 400) {
    return new ValidationError(
      `${error.message}: a path segment is not valid percent-encoding; encode "%" as %25`,
      [{ path: 'path', message: error.message }],
    );
  }
  if (status === 413)
    return new TooLargeError('request body too large', [{ path: 'body', message: 'too large' }]);
  if (status === 400 && type === 'entity.parse.failed') {
    return new ValidationError('request body is not valid JSON', [
      { path: 'body', message: 'not valid JSON' },
    ]);
  }
  return undefined;
}

import type { ErrorRequestHandler } from 'express';
import multer from 'multer';
import type { Logger } from 'pino';
import { TestgroundError, TooLargeError, ValidationError } from '../core/errors.ts';

const statusByCode: Record<string, number> = {
  invalid_request: 400,
  invalid_archive: 400,
  unauthorized: 401,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  dependency_unavailable: 503,
};

/**
 * The one place errors become HTTP answers: `{error: {code, message, details}}`. Known errors keep their
 * message; anything else is a 500 whose internals stay in the daemon's log.
 */
export function errorHandler(logger: Logger, maxUploadBytes: number): ErrorRequestHandler {
  return (error: unknown, request, response, _next) => {
    const known = toKnownError(error, maxUploadBytes);
    if (known) {
      response
        .status(statusByCode[known.code] ?? 400)
        .json({ error: { code: known.code, message: known.message, details: known.details } });
      return;
    }
    logger.error({ err: error, method: request.method, url: request.originalUrl }, 'request failed');
    response
      .status(500)
      .json({ error: { code: 'internal', message: 'internal error; see the daemon log', details: [] } });
  };
}

function toKnownError(error: unknown, maxUploadBytes: number): TestgroundError | undefined {
  if (error instanceof TestgroundError) return error;
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
  const status = (error as { status?: number; type?: string }).status;
  if (status === 413)
    return new TooLargeError('request body too large', [{ path: 'body', message: 'too large' }]);
  if (status === 400 && (error as { type?: string }).type === 'entity.parse.failed') {
    return new ValidationError('request body is not valid JSON', [
      { path: 'body', message: 'not valid JSON' },
    ]);
  }
  return undefined;
}

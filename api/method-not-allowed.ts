import type { RequestHandler } from 'express';
import { MethodNotAllowedError } from '../core/errors.ts';

/**
 * The last handler of a path: its other methods answer 405 with `Allow` (not 404, which would say the
 * path does not exist), and OPTIONS answers 204 with `Allow`.
 */
export function methodNotAllowed(...methods: readonly ('GET' | 'POST')[]): RequestHandler {
  // Express answers HEAD from a GET route, so a path that takes GET takes HEAD too.
  const allow = methods.flatMap((method) => (method === 'GET' ? ['GET', 'HEAD'] : [method]));
  return (request, response, next) => {
    if (request.method === 'OPTIONS') {
      response
        .set('allow', [...allow, 'OPTIONS'].join(', '))
        .status(204)
        .end();
      return;
    }
    const route = `${request.baseUrl}${request.path}`;
    next(
      new MethodNotAllowedError(
        `${request.method} ${route} is not allowed; it takes ${allow.join(', ')}`,
        allow,
        [{ path: 'method', message: `${request.method} is not one of ${allow.join(', ')}` }],
      ),
    );
  };
}

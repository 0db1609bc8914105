import { timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { UnauthorizedError } from '../core/errors.ts';

/**
 * With a token configured, every request must carry `Authorization: Bearer <token>`; without one the
 * daemon trusts its network (it listens on 127.0.0.1 by default).
 */
export function requireToken(token: string | undefined): RequestHandler {
  const expected = token ? Buffer.from(token) : undefined;
  return (request, _response, next) => {
    if (!expected) return next();
    const header = request.get('authorization') ?? '';
    const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : '');
    if (given.length === expected.length && timingSafeEqual(given, expected)) return next();
    next(
      new UnauthorizedError(
        'missing or wrong token: send "Authorization: Bearer <token>" (testground --token or TESTGROUND_TOKEN)',
      ),
    );
  };
}

/** Who asked: the authenticated user name header the CLI sends, else "anonymous". */
export function requester(header: string | undefined): string {
  const name = (header ?? '').trim();
  return /^[\w.@-]{1,64}$/.test(name) ? name : 'anonymous';
}

import { timingSafeEqual } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import { ForbiddenError, UnauthorizedError } from '../core/errors.ts';
import { hashToken, roles, userNamePattern, type Role, type TokenEntry } from '../core/token-file.ts';

/** Who is asking, as the token says (or, without authentication, as the client claims). */
export interface Principal {
  user: string;
  role: Role;
}

/** The tokens the daemon accepts now; the daemon's registry re-reads its file when it changes. */
export interface TokenSource {
  entries(): readonly TokenEntry[];
}

const rank: Record<Role, number> = { viewer: 0, user: 1, admin: 2 };
const principalKey = 'testgroundPrincipal';
const noToken = Buffer.alloc(32);

/**
 * Finds who the request is. With a token source, every request must carry `Authorization: Bearer <token>`
 * of one of its entries; the X-Testground-User header is then ignored, so a task's creator is the
 * token's user. Without one (a daemon on loopback with no tokens), the network is trusted: everyone is
 * an admin, named by the header the CLI sends.
 */
export function authenticate(source: TokenSource | undefined): RequestHandler {
  return (request, response, next) => {
    if (!source) {
      setPrincipal(response, { user: requester(request.get('x-testground-user')), role: 'admin' });
      return next();
    }
    const header = request.get('authorization') ?? '';
    const token = header.startsWith('Bearer ') ? header.slice(7).trim() : '';
    const found = token === '' ? undefined : matchToken(source.entries(), token);
    if (!found) {
      return next(
        new UnauthorizedError(
          'missing or wrong token: send "Authorization: Bearer <token>" (testground --token or TESTGROUND_TOKEN)',
        ),
      );
    }
    setPrincipal(response, { user: found.user, role: found.role });
    next();
  };
}

/**
 * The entry whose hash is the token's, compared in constant time: both sides are 32-byte digests, so
 * neither the token's length nor how much of it matched shows in the time taken, and every entry is
 * compared whether or not an earlier one matched.
 */
export function matchToken(entries: readonly TokenEntry[], token: string): TokenEntry | undefined {
  const given = digestOf(hashToken(token));
  let found: TokenEntry | undefined;
  for (const entry of entries) {
    if (timingSafeEqual(digestOf(entry.hash), given) && !found) found = entry;
  }
  return found;
}

function digestOf(hash: string): Buffer {
  const digest = Buffer.from(hash.slice('sha256:'.length), 'hex');
  return digest.length === 32 ? digest : noToken;
}

/** Refuses requests by principals below `minimum`, saying what `action` needs. */
export function requireRole(minimum: Role, action: string): RequestHandler {
  return (_request, response, next) => {
    const principal = principalOf(response);
    if (rank[principal.role] >= rank[minimum]) return next();
    next(forbidden(principal, action, minimum));
  };
}

/**
 * Viewers read: any method but GET and HEAD needs at least the `user` role. It applies to every route
 * behind it, so a route added later cannot forget it.
 */
export function readOnlyForViewers(): RequestHandler {
  return (request, response, next) => {
    if (request.method === 'GET' || request.method === 'HEAD') return next();
    const principal = principalOf(response);
    if (principal.role !== 'viewer') return next();
    next(forbidden(principal, `${request.method} ${request.baseUrl}${request.path}`, 'user'));
  };
}

/** Users cancel their own tasks; admins cancel anyone's. */
export function assertMayCancel(principal: Principal, task: { id: string; createdBy: string }): void {
  if (principal.role === 'admin' || task.createdBy === principal.user) return;
  throw new ForbiddenError(
    `task ${task.id} was created by ${JSON.stringify(task.createdBy)}; user ${JSON.stringify(principal.user)} ` +
      `(role ${principal.role}) may cancel only their own tasks; an admin can cancel any`,
    [{ path: 'id', message: `${JSON.stringify(task.id)} belongs to ${JSON.stringify(task.createdBy)}` }],
  );
}

export function principalOf(response: Response): Principal {
  const principal = (response.locals as Record<string, unknown>)[principalKey] as Principal | undefined;
  // Reached only by a route mounted ahead of `authenticate`: a wiring mistake, not a client's.
  if (!principal) throw new Error('no principal: the route is mounted before authenticate()');
  return principal;
}

function setPrincipal(response: Response, principal: Principal): void {
  (response.locals as Record<string, unknown>)[principalKey] = principal;
}

function forbidden(principal: Principal, action: string, minimum: Role): ForbiddenError {
  const enough = [...roles]
    .sort((a, b) => rank[a] - rank[b])
    .filter((role) => rank[role] >= rank[minimum])
    .join(' or ');
  return new ForbiddenError(
    `user ${JSON.stringify(principal.user)} has role ${principal.role}; ${action} needs role ${enough}`,
    [{ path: 'authorization', message: `role ${principal.role}; needs ${enough}` }],
  );
}

/** Without authentication: the name the CLI sends (X-Testground-User), else "anonymous". */
export function requester(header: string | undefined): string {
  const name = (header ?? '').trim();
  return userNamePattern.test(name) ? name : 'anonymous';
}

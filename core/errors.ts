/**
 * One error class per failure mode, each with a stable `code`. The API's error middleware maps codes to
 * HTTP statuses; nothing else inspects messages.
 */

/** One problem found in a request, named by the path of the offending field. */
export interface ProblemDetail {
  /** Dotted path of the field, e.g. `groups[1].instances.count` or `manifest.testcases[0].params.x`. */
  path: string;
  message: string;
}

/** Every stable error code, once: the API maps each to an HTTP status, the CLI and OpenAPI list them. */
export const errorCodes = [
  'invalid_request',
  'invalid_archive',
  'too_large',
  'too_many_requests',
  'not_found',
  'conflict',
  'unauthorized',
  'forbidden',
  'method_not_allowed',
  'dependency_unavailable',
  'redis_unavailable',
  'build_failed',
  'runner_failed',
  'docker_failed',
  'docker_subnet_in_use',
  'internal',
] as const;
export type ErrorCode = (typeof errorCodes)[number];

export abstract class TestgroundError extends Error {
  abstract readonly code: ErrorCode;
  readonly details: ProblemDetail[];

  constructor(message: string, details: ProblemDetail[] = [], options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.details = details;
  }
}

/** The request is malformed or refers to things that do not exist (400). Lists every problem at once. */
export class ValidationError extends TestgroundError {
  readonly code = 'invalid_request';
}

/** An uploaded plan archive is not a gzip'd tar, or holds entries that escape its root (400). */
export class ArchiveError extends TestgroundError {
  readonly code = 'invalid_archive';
}

/** A body or upload exceeds a configured limit (413). */
export class TooLargeError extends TestgroundError {
  readonly code = 'too_large';
}

/**
 * A limit that frees up with time was reached: the queue limit per user or in total, the upload quota
 * (429). `retryAfterMs` is when trying again may succeed; the API sends it as `Retry-After`.
 */
export class TooManyRequestsError extends TestgroundError {
  readonly code = 'too_many_requests';
  readonly retryAfterMs: number;

  constructor(message: string, retryAfterMs: number, details: ProblemDetail[] = []) {
    super(message, details);
    this.retryAfterMs = retryAfterMs;
  }
}

export class NotFoundError extends TestgroundError {
  readonly code = 'not_found';
}

/** The request conflicts with the current state, e.g. canceling a finished task (409). */
export class ConflictError extends TestgroundError {
  readonly code = 'conflict';
}

export class UnauthorizedError extends TestgroundError {
  readonly code = 'unauthorized';
}

/** The token is valid, but its role or its user may not do this (403). */
export class ForbiddenError extends TestgroundError {
  readonly code = 'forbidden';
}

/** The path exists, but not for this method (405); `allow` lists the methods it takes. */
export class MethodNotAllowedError extends TestgroundError {
  readonly code = 'method_not_allowed';
  readonly allow: readonly string[];

  constructor(message: string, allow: readonly string[], details: ProblemDetail[] = []) {
    super(message, details);
    this.allow = allow;
  }
}

/** A dependency (Redis, Docker) is unreachable (503). */
export class DependencyError extends TestgroundError {
  readonly code = 'dependency_unavailable';
}

/**
 * Redis is away (down, restarting, not answering within the command timeout): the request fails at once
 * instead of waiting for it (503); trying again once Redis is back succeeds.
 */
export class RedisUnavailableError extends TestgroundError {
  readonly code = 'redis_unavailable';
}

/** A builder could not produce an artifact; the task's outcome becomes `error`. */
export class BuildError extends TestgroundError {
  readonly code = 'build_failed';
}

/**
 * A runner could not start or keep a run going for a reason outside the plan: the sync service did not
 * come up, no network subnet was free, an artifact of the wrong kind. The task's outcome becomes `error`.
 */
export class RunnerError extends TestgroundError {
  readonly code = 'runner_failed';
}

/**
 * How the Docker seam fails, beyond "the engine is not there" (a `DependencyError` from core): the engine
 * answered but refused or failed an operation, or a network's subnet is taken.
 */
import { TestgroundError } from '../core/errors.ts';

/** The engine answered, but refused or failed the operation. `statusCode` is the engine's HTTP status. */
export class DockerEngineError extends TestgroundError {
  readonly code: 'docker_failed' | 'docker_subnet_in_use' = 'docker_failed';
  /** What we asked the engine, in words: `create network tg-abc (10.192.0.0/20)`. */
  readonly operation: string;
  readonly statusCode: number | undefined;

  constructor(operation: string, message: string, statusCode?: number, options?: ErrorOptions) {
    super(`${operation}: ${message}`, [], options);
    this.operation = operation;
    this.statusCode = statusCode;
  }
}

/** A network could not be created because its subnet overlaps one the engine already has: pick another. */
export class SubnetInUseError extends DockerEngineError {
  override readonly code = 'docker_subnet_in_use';
}

/** Whether the engine refused with this HTTP status (404 "no such …", 304 "already …", 409 "conflict"). */
export function isStatus(error: unknown, status: number): boolean {
  return error instanceof DockerEngineError && error.statusCode === status;
}

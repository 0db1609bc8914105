import type { Logger } from 'pino';

// Failures of the host's files, pipes and sockets: they end what did the I/O, never the daemon's own state.
const ioErrorCodes = new Set([
  'EACCES',
  'EBADF',
  'ECONNRESET',
  'EDQUOT',
  'EEXIST',
  'EFBIG',
  'EIO',
  'EISDIR',
  'EMFILE',
  'ENAMETOOLONG',
  'ENFILE',
  'ENOENT',
  'ENOSPC',
  'ENOTDIR',
  'EPERM',
  'EPIPE',
  'EROFS',
]);

/** The part of `process` the handlers attach to, so a test can hand in an emitter of its own. */
export interface ProcessEvents {
  on(event: 'uncaughtException', listener: (error: Error) => void): unknown;
  on(event: 'unhandledRejection', listener: (reason: unknown) => void): unknown;
}

/**
 * Whether an error nobody handled is safe to outlive: a failed system call on a file, pipe or socket (a
 * run's output file made unwritable, a full disk) leaves the daemon's own state as it was, so the daemon
 * logs it and keeps serving the other runs. Anything else may have left the daemon half-way through a
 * change of its own state, and it stops.
 */
export function isSurvivable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const { code, syscall } = error as NodeJS.ErrnoException;
  return typeof syscall === 'string' && typeof code === 'string' && ioErrorCodes.has(code);
}

/**
 * The daemon's last resort, for errors no run owned (every run's I/O is meant to be owned by its run, so
 * reaching here is a bug worth its log line): a stray rejection, or an I/O error, is logged and the daemon
 * keeps serving; any other uncaught exception is logged as fatal and `stop` is asked to end the daemon
 * gracefully.
 */
export function installLastResortHandlers(
  events: ProcessEvents,
  logger: Logger,
  stop: (error: Error) => void,
): void {
  // A long-running daemon outlives a dependency's stray rejection (a Redis client closing mid-request).
  events.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled rejection'));
  events.on('uncaughtException', (error) => {
    if (isSurvivable(error)) {
      logger.error({ err: error }, 'an I/O error no run handled; the daemon keeps serving');
      return;
    }
    logger.fatal({ err: error }, 'uncaught exception; stopping the daemon');
    stop(error);
  });
}

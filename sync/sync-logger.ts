import { hostname } from 'node:os';

type LogCall = {
  (fields: object, message?: string): void;
  (message: string): void;
};

/**
 * The few logging calls the sync service makes. A pino `Logger` satisfies it (the daemon and tests pass
 * theirs); the bundled service uses {@link jsonLinesLogger}, because loading pino costs the otherwise idle
 * process about 1.5 MiB of private memory.
 */
export interface SyncLogger {
  child(bindings: Record<string, unknown>): SyncLogger;
  isLevelEnabled(level: string): boolean;
  debug: LogCall;
  info: LogCall;
  warn: LogCall;
  error: LogCall;
}

const levels: Record<string, number> = { debug: 20, info: 30, warn: 40, error: 50, silent: Infinity };

/**
 * Writes pino's line format (`{"level":30,"time":…,"pid":…,"hostname":…,…,"msg":…}`), so logs read the same
 * whichever logger wrote them. `level` is a pino level name; an unknown one means `info`.
 */
export function jsonLinesLogger(
  level: string,
  write: (line: string) => void,
  bindings: Record<string, unknown> = { pid: process.pid, hostname: hostname() },
): SyncLogger {
  const threshold = levels[level] ?? (level === 'trace' ? 10 : level === 'fatal' ? 60 : 30);
  const at = (name: string): LogCall => {
    const value = levels[name] as number;
    if (value < threshold) return () => {};
    return (fieldsOrMessage: object | string, message?: string): void => {
      const fields = typeof fieldsOrMessage === 'string' ? {} : fieldsOrMessage;
      const msg = typeof fieldsOrMessage === 'string' ? fieldsOrMessage : message;
      write(
        `${JSON.stringify({ level: value, time: Date.now(), ...bindings, ...serializeErrors(fields), msg })}\n`,
      );
    };
  };
  return {
    child: (more) => jsonLinesLogger(level, write, { ...bindings, ...more }),
    isLevelEnabled: (name) => (levels[name] ?? 30) >= threshold,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
  };
}

/** A logger that writes nothing: the service's default. */
export const silentLogger: SyncLogger = jsonLinesLogger('silent', () => {});

function serializeErrors(fields: object): object {
  const err = (fields as { err?: unknown }).err;
  if (!(err instanceof Error)) return fields;
  return { ...fields, err: { type: err.name, message: err.message, stack: err.stack } };
}

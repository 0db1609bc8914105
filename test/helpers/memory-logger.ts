import { pino, type Logger } from 'pino';

/** One line pino wrote, parsed. */
export interface LoggedEntry {
  level: number;
  msg: string;
  err?: { type: string; message: string; stack: string; code?: string };
  [field: string]: unknown;
}

/** A real pino logger that keeps what it writes, for assertions on what the daemon logged and how. */
export function memoryLogger(): {
  logger: Logger;
  entries: LoggedEntry[];
  atLevel: (name: 'warn' | 'error') => LoggedEntry[];
} {
  const entries: LoggedEntry[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => void entries.push(JSON.parse(line) as LoggedEntry) },
  );
  const levels = { warn: 40, error: 50 };
  return { logger, entries, atLevel: (name) => entries.filter((entry) => entry.level === levels[name]) };
}

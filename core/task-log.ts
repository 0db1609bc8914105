/**
 * What builders and runners may write to a task's live log. The daemon backs it with Redis Streams
 * (`log-bus.ts`); builders and runners never see Redis.
 */
export interface TaskLog {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** One line an instance wrote on stdout or stderr. */
  output(group: string, instance: number, stream: 'stdout' | 'stderr', line: string): void;
  /** An instance ended, with its outcome and the reason for it. */
  instanceEnd(group: string, instance: number, outcome: string, reason: string): void;
}

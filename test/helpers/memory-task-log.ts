import type { TaskLog } from '../../core/task-log.ts';

/** A TaskLog that keeps every line, for assertions on what builders reported. */
export class MemoryTaskLog implements TaskLog {
  readonly lines: string[] = [];

  info(message: string): void {
    this.lines.push(message);
  }
  warn(message: string): void {
    this.lines.push(`WARN ${message}`);
  }
  error(message: string): void {
    this.lines.push(`ERROR ${message}`);
  }
  output(group: string, instance: number, stream: 'stdout' | 'stderr', line: string): void {
    this.lines.push(`${group}[${instance}] ${stream}: ${line}`);
  }
  instanceEnd(group: string, instance: number, outcome: string, reason: string): void {
    this.lines.push(`${group}[${instance}] ended ${outcome}: ${reason}`);
  }

  text(): string {
    return this.lines.join('\n');
  }
}

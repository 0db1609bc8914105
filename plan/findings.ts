import type { ProblemDetail } from '../core/errors.ts';

/**
 * What resolving a composition found: problems refuse it (all of them are reported at once), warnings go
 * with the accepted task to the submitter and the task log. Each finding is kept once, however many groups
 * or runs lead to it.
 */
export class Findings {
  readonly problems: ProblemDetail[] = [];
  readonly warnings: ProblemDetail[] = [];
  private readonly seen = new Set<string>();

  problem(path: string, message: string): void {
    this.add(this.problems, 'problem', path, message);
  }

  warn(path: string, message: string): void {
    this.add(this.warnings, 'warning', path, message);
  }

  private add(list: ProblemDetail[], kind: string, path: string, message: string): void {
    const key = `${kind}\0${path}\0${message}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    list.push({ path, message });
  }
}

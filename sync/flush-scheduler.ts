/** Something with output queued during this tick. */
export interface Flushable {
  flush(): void;
}

/**
 * Flushes every socket that was sent something, once, after the event loop has handled all the reads that
 * were ready (`setImmediate` runs after the poll phase). A burst of requests on many connections then costs
 * one write per socket instead of one per reply: the service spent most of its CPU in `writev` before.
 */
export class FlushScheduler {
  private dirty: Flushable[] = [];
  private scheduled = false;

  /** Queues `target` for the next flush; callers add a target at most once per flush. */
  add(target: Flushable): void {
    this.dirty.push(target);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.run);
  }

  private readonly run = (): void => {
    this.scheduled = false;
    const targets = this.dirty;
    this.dirty = [];
    for (const target of targets) target.flush();
  };
}

/**
 * "Do it once, share it while in flight, forget it on failure": concurrent callers asking for the same key
 * get the same promise, so two groups (or two runs) needing the same build share one. A failure is
 * forgotten at once, so the next caller tries again. A success is forgotten too once settled, unless
 * `retainSuccess` is set: then the result is kept for the life of the object (use it when the result is
 * not cached anywhere else, e.g. a bundle path computed once per daemon).
 */
export class SingleFlight<V, K = string> {
  private readonly inFlight = new Map<K, Promise<V>>();
  private readonly retainSuccess: boolean;

  constructor(options: { retainSuccess?: boolean } = {}) {
    this.retainSuccess = options.retainSuccess ?? false;
  }

  /** The result of `work` for `key`; `work` runs only when no call for `key` is in flight (or retained). */
  run(key: K, work: () => Promise<V>): Promise<V> {
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    const started = work();
    this.inFlight.set(key, started);
    started.then(
      () => {
        if (!this.retainSuccess) this.inFlight.delete(key);
      },
      () => this.inFlight.delete(key),
    );
    return started;
  }

  /** Whether a call for `key` is in flight or retained. */
  has(key: K): boolean {
    return this.inFlight.has(key);
  }
}

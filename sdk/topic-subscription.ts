/**
 * The items of one subscribed topic as an async iterable: pushed by the connection as they arrive,
 * pulled by the test case with `for await`.
 */

/**
 * Items of one topic, from the first ever published, in publish order, then live ones. Iterate it with
 * `for await`; leaving the loop early cancels it. Items wait in memory until read.
 */
export interface Subscription<T = unknown> extends AsyncIterableIterator<T> {
  /** Asks the service to stop sending items and ends the iteration. Safe to call more than once. */
  cancel(): void;
}

interface Reader<T> {
  resolve: (result: IteratorResult<T>) => void;
  reject: (error: Error) => void;
}

/** Buffers items until read; ends by {@link end} (done), {@link fail} (rejects readers) or {@link cancel}. */
export class TopicSubscription<T> implements Subscription<T> {
  private readonly onCancel: () => void;
  private items: T[] = [];
  private head = 0;
  private readers: Reader<T>[] = [];
  private ended = false;
  private error: Error | undefined;

  /** `onCancel` tells the service to stop; it runs once, on the first {@link cancel} before the end. */
  constructor(onCancel: () => void) {
    this.onCancel = onCancel;
  }

  push(item: T): void {
    if (this.ended) return;
    const reader = this.readers.shift();
    if (reader !== undefined) reader.resolve({ value: item, done: false });
    else this.items.push(item);
  }

  /** Ends the iteration with `error`, after the items already received. */
  fail(error: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    for (const reader of this.readers.splice(0)) reader.reject(error);
  }

  /** Ends the iteration normally, after the items already received. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const reader of this.readers.splice(0)) reader.resolve({ value: undefined, done: true });
  }

  cancel(): void {
    if (this.ended) return;
    this.onCancel();
    this.items = [];
    this.head = 0;
    this.end();
  }

  next(): Promise<IteratorResult<T>> {
    if (this.head < this.items.length) {
      const value = this.items[this.head] as T;
      this.head += 1;
      // Drop consumed items once they are the bulk of the array, keeping reads O(1) amortised.
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head);
        this.head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.error !== undefined) return Promise.reject(this.error);
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this.readers.push({ resolve, reject }));
  }

  return(): Promise<IteratorResult<T>> {
    this.cancel();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): Subscription<T> {
    return this;
  }
}

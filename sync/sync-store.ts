/**
 * The sync service's state of one run: state counters, barriers on them, and append-only topic logs.
 * Pure and synchronous; the WebSocket layer in `sync-service.ts` owns all I/O.
 */

/** Receives one topic item; returning `false` pauses delivery until {@link TopicSubscription.resume}. */
export type TopicItemListener<TItem> = (item: TItem, seq: number) => boolean | void;

/** Handle of one topic subscription. */
export interface TopicSubscription {
  /** Stops delivery for good. Safe to call more than once. */
  cancel(): void;
  /** Continues a delivery paused by the listener returning `false`, from the next undelivered item. */
  resume(): void;
}

interface StateEntry {
  count: number;
  /**
   * Waiters keyed by target. The counter only ever grows by one, so each target is reached at exactly
   * one signal: a signal releases just the bucket for the new count, never scans the others.
   */
  waitersByTarget: Map<number, Set<() => void>>;
}

interface Subscriber<TItem> {
  next: number;
  paused: boolean;
  cancelled: boolean;
  /** Guards against a listener re-entering delivery of the same subscriber and reordering items. */
  delivering: boolean;
  listener: TopicItemListener<TItem>;
}

interface TopicEntry<TItem> {
  items: TItem[];
  subscribers: Set<Subscriber<TItem>>;
}

/**
 * In-memory store of one run. Nothing is evicted: a run's states live as long as the store, because
 * the original service's idle eviction let late barriers wait forever on a counter it had dropped.
 */
export class SyncStore<TItem> {
  private readonly states = new Map<string, StateEntry>();
  private readonly topics = new Map<string, TopicEntry<TItem>>();

  /**
   * Increments the state's counter and returns the new count (1-based). `onCounted` runs with the new
   * count before any barrier waiting on that count is released, so a caller can answer the signaller first.
   */
  signalEntry(state: string, onCounted?: (seq: number) => void): number {
    const entry = this.stateEntry(state);
    entry.count += 1;
    const seq = entry.count;
    onCounted?.(seq);
    const released = entry.waitersByTarget.get(seq);
    if (released !== undefined) {
      entry.waitersByTarget.delete(seq);
      for (const waiter of released) waiter();
    }
    return seq;
  }

  /** Current count of a state; 0 for a state nobody signalled. */
  count(state: string): number {
    return this.states.get(state)?.count ?? 0;
  }

  /**
   * Calls `onReached` once, when the state's counter reaches `target`: synchronously when it already
   * has or when `target <= 0`. Returns a cancel function that drops the waiter (a no-op once fired).
   */
  waitBarrier(state: string, target: number, onReached: () => void): () => void {
    const entry = this.stateEntry(state);
    if (target <= entry.count) {
      onReached();
      return () => {};
    }
    const bucket = entry.waitersByTarget.get(target) ?? new Set<() => void>();
    entry.waitersByTarget.set(target, bucket);
    // A fresh closure per call, so the same callback registered twice gets two independent waiters.
    const waiter = (): void => onReached();
    bucket.add(waiter);
    return () => {
      // Deleting from the captured bucket also works while a signal is releasing it.
      bucket.delete(waiter);
      if (bucket.size === 0 && entry.waitersByTarget.get(target) === bucket) {
        entry.waitersByTarget.delete(target);
      }
    };
  }

  /** Appends an item to the topic's log, delivers it to live subscribers and returns its 1-based seq. */
  publish(topic: string, item: TItem): number {
    const entry = this.topicEntry(topic);
    entry.items.push(item);
    for (const subscriber of entry.subscribers) this.deliver(entry, subscriber);
    return entry.items.length;
  }

  /** Number of items published on a topic so far. */
  topicLength(topic: string): number {
    return this.topics.get(topic)?.items.length ?? 0;
  }

  /**
   * Delivers every item of the topic from the first, in publish order (synchronously, before this
   * returns, unless the listener pauses), then each item published later.
   */
  subscribe(topic: string, listener: TopicItemListener<TItem>): TopicSubscription {
    const entry = this.topicEntry(topic);
    const subscriber: Subscriber<TItem> = {
      next: 0,
      paused: false,
      cancelled: false,
      delivering: false,
      listener,
    };
    entry.subscribers.add(subscriber);
    this.deliver(entry, subscriber);
    return {
      cancel: () => {
        subscriber.cancelled = true;
        entry.subscribers.delete(subscriber);
      },
      resume: () => {
        if (subscriber.cancelled || !subscriber.paused) return;
        subscriber.paused = false;
        this.deliver(entry, subscriber);
      },
    };
  }

  private deliver(entry: TopicEntry<TItem>, subscriber: Subscriber<TItem>): void {
    if (subscriber.delivering) return;
    subscriber.delivering = true;
    try {
      while (!subscriber.paused && !subscriber.cancelled && subscriber.next < entry.items.length) {
        const seq = subscriber.next + 1;
        const item = entry.items[subscriber.next] as TItem;
        subscriber.next = seq;
        if (subscriber.listener(item, seq) === false) subscriber.paused = true;
      }
    } finally {
      subscriber.delivering = false;
    }
  }

  private stateEntry(state: string): StateEntry {
    let entry = this.states.get(state);
    if (entry === undefined) {
      entry = { count: 0, waitersByTarget: new Map() };
      this.states.set(state, entry);
    }
    return entry;
  }

  private topicEntry(topic: string): TopicEntry<TItem> {
    let entry = this.topics.get(topic);
    if (entry === undefined) {
      entry = { items: [], subscribers: new Set() };
      this.topics.set(topic, entry);
    }
    return entry;
  }
}

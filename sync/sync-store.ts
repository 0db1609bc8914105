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
  /** The largest target any barrier asked of this state: the "m" of "n of m" a waiting user reads. */
  target: number;
  /** When the state was last signalled or waited on, by the store's clock of operations (not wall time). */
  touched: number;
  /**
   * Waiters keyed by target. The counter only ever grows by one, so each target is reached at exactly
   * one signal: a signal releases just the bucket for the new count, never scans the others.
   */
  waitersByTarget: Map<number, Set<() => void>>;
}

/** One state as {@link SyncStore.stateCounts} reports it. */
export interface StateCount {
  name: string;
  /** How many signalled it. */
  count: number;
  /** The largest target a barrier asked of it; 0 when no barrier did. */
  target: number;
  /** Barriers waiting on it now. */
  waiting: number;
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
  private operations = 0;

  /**
   * Increments the state's counter and returns the new count (1-based). `onCounted` runs with the new
   * count before any barrier waiting on that count is released, so a caller can answer the signaller first.
   */
  signalEntry(state: string, onCounted?: (seq: number) => void): number {
    const entry = this.stateEntry(state);
    entry.count += 1;
    entry.touched = ++this.operations;
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
    entry.touched = ++this.operations;
    if (target > entry.target) entry.target = target;
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

  /**
   * What a waiting user needs to see of the states: each one's count, the largest barrier target asked of it
   * and how many barriers still wait on it. At most `limit` states, those with waiters first, then the most
   * recently used, so a run that signals thousands of states still answers with a small, useful page.
   */
  stateCounts(limit = 20): StateCount[] {
    const counts = [...this.states].map(([name, entry]) => {
      let waiting = 0;
      for (const bucket of entry.waitersByTarget.values()) waiting += bucket.size;
      return { name, count: entry.count, target: entry.target, waiting, touched: entry.touched };
    });
    counts.sort((a, b) => Number(b.waiting > 0) - Number(a.waiting > 0) || b.touched - a.touched);
    return counts
      .slice(0, limit)
      .map(({ name, count, target, waiting }) => ({ name, count, target, waiting }));
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
      entry = { count: 0, target: 0, touched: 0, waitersByTarget: new Map() };
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

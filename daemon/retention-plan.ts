/** What retention removes, decided from what the collector measured: pure, no I/O. */

export const retentionKinds = ['outputs', 'snapshots', 'cache', 'images'] as const;
export type RetentionKind = (typeof retentionKinds)[number];

export interface RetentionLimit {
  /** Entries unused for longer are removed. */
  maxAgeMs?: number;
  /** The kind's total; the least recently used entries go first until it fits. */
  maxBytes?: number;
}

export type RetentionPolicy = Record<RetentionKind, RetentionLimit> & {
  /** Outputs, snapshots and build caches together (plan images live in the engine, not the home). */
  homeMaxBytes?: number;
};

export type RemovalReason = 'age' | 'size' | 'home size' | 'unreferenced';

/** The kinds that live in the daemon's home (plan images live in the engine). */
export const homeKinds: readonly RetentionKind[] = ['outputs', 'snapshots', 'cache'];

/** An entry the collector measured: what it is, what it holds, when it was last used, whether it must stay. */
export interface RetentionCandidate {
  kind: RetentionKind;
  id: string;
  path?: string;
  bytes: number;
  lastUsedMs: number;
  /** Why it must stay: a queued or running task needs it. */
  neededBy?: string;
  /** Removed whatever the limits (a build's leftovers, stored content nothing links to). */
  garbage?: boolean;
  /** Set when the plan picks it for removal. */
  reason?: RemovalReason;
  /** A directory entries live in: counted in the totals, never an entry of its own. */
  layout?: boolean;
}

/**
 * Which entries go: the garbage, the ones past their age, then the least recently used until each kind's
 * total and the home's fit. An entry an unfinished task needs never goes; it is listed in `keep` when it
 * would have. Entries picked carry their `reason`.
 */
export function planRemovals(
  candidates: readonly RetentionCandidate[],
  policy: RetentionPolicy,
  now: number,
): { remove: RetentionCandidate[]; keep: RetentionCandidate[] } {
  const remove = new Map<RetentionCandidate, RemovalReason>();
  const keep = new Set<RetentionCandidate>();
  const consider = (entry: RetentionCandidate, reason: RemovalReason): void => {
    if (entry.neededBy !== undefined) keep.add(entry);
    else if (!remove.has(entry)) remove.set(entry, reason);
  };
  for (const entry of candidates) {
    if (entry.garbage) consider(entry, 'unreferenced');
    const maxAgeMs = policy[entry.kind].maxAgeMs;
    if (maxAgeMs !== undefined && now - entry.lastUsedMs > maxAgeMs) consider(entry, 'age');
  }
  const shrink = (
    kinds: readonly RetentionKind[],
    maxBytes: number | undefined,
    reason: RemovalReason,
  ): void => {
    if (maxBytes === undefined) return;
    const entries = candidates.filter((entry) => kinds.includes(entry.kind));
    let total = entries.filter((entry) => !remove.has(entry)).reduce((sum, entry) => sum + entry.bytes, 0);
    const oldestFirst = [...entries].sort((a, b) => a.lastUsedMs - b.lastUsedMs);
    for (const entry of oldestFirst) {
      if (total <= maxBytes) break;
      if (remove.has(entry)) continue;
      // Stored contents go with the bundles and snapshots that link them, never on their own.
      if (entry.id.startsWith('content:')) continue;
      consider(entry, reason);
      if (remove.has(entry)) total -= entry.bytes;
    }
  };
  for (const kind of retentionKinds) shrink([kind], policy[kind].maxBytes, 'size');
  shrink(homeKinds, policy.homeMaxBytes, 'home size');
  for (const [entry, reason] of remove) entry.reason = reason;
  return {
    remove: [...remove.keys()],
    keep: [...keep].filter((entry) => !entry.id.startsWith('content:') && !entry.layout),
  };
}

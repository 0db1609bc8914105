/**
 * The rules that cut a run's groups apart on the data network. Every instance sits in the same data
 * subnet, so a partition is one rule per peer address (`<ip>/32`), built from the addresses every
 * instance announces ({@link NetworkClient.dataNetworkPeers}).
 */
import type { LinkRuleInput } from './network-config-input.ts';

/** One instance of the run, as it announced itself. */
export interface DataNetworkPeer {
  group: string;
  hostname: string;
  /** Its address on the data network. */
  ip: string;
}

export interface PartitionOptions {
  /** The group (or groups) on one side. */
  from: string | readonly string[];
  /** The group (or groups) on the other side. */
  to: string | readonly string[];
  /** `drop`: packets vanish (peers time out); `reject`: connections are refused at once. */
  mode: 'drop' | 'reject';
  /** Whether `to` also cuts its traffic toward `from`; default true (a partition cuts both ways). */
  bidirectional?: boolean;
}

/**
 * The rules instance `me` applies for the partition: for an instance of `from`, one per peer of `to`; for
 * an instance of `to` (when bidirectional), one per peer of `from`; none otherwise.
 *
 * @throws Error when `from` or `to` names a group no peer is in (a typo would otherwise cut nothing).
 */
export function partitionRules(
  peers: readonly DataNetworkPeer[],
  me: { group: string; ip: string },
  options: PartitionOptions,
): LinkRuleInput[] {
  const from = new Set(typeof options.from === 'string' ? [options.from] : options.from);
  const to = new Set(typeof options.to === 'string' ? [options.to] : options.to);
  const known = new Set(peers.map((peer) => peer.group));
  for (const [side, groups] of [
    ['from', from],
    ['to', to],
  ] as const) {
    const unknown = [...groups].filter((group) => !known.has(group));
    if (unknown.length > 0) {
      throw new Error(
        `partition ${side}: no instance is in group${unknown.length === 1 ? '' : 's'} ${unknown.join(', ')}; the run's groups are ${[...known].join(', ')}`,
      );
    }
  }
  const cut = new Set<string>();
  if (from.has(me.group)) for (const group of to) cut.add(group);
  if ((options.bidirectional ?? true) && to.has(me.group)) for (const group of from) cut.add(group);
  return peers
    .filter((peer) => cut.has(peer.group) && peer.ip !== me.ip)
    .map((peer) => ({ subnet: `${peer.ip}/32`, filter: options.mode }));
}

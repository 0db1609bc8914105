/**
 * What the network controller asks of the machinery that shapes an instance's traffic: apply a
 * configuration inside the instance's network namespace (replacing the previous one), and release what it
 * started there. Implemented with tc, iptables and a packet delayer where the kernel has no netem.
 */
import type { NetworkConfig } from '../../core/contract/network-config.ts';

/** How to reach one instance's network namespace from the daemon's host. */
export type NetworkNamespace =
  /** A container (or any process): its namespace is `/proc/<pid>/ns/net`. */
  | { kind: 'pid'; pid: number }
  /** A namespace made with `ip netns add <name>` (local:exec's network option). */
  | { kind: 'named'; name: string };

export interface NetworkTarget {
  /** Names the instance in messages: `peers[3]`. */
  label: string;
  namespace: NetworkNamespace;
  /** The interface on the run's data network inside that namespace, e.g. `eth1`. */
  dataInterface: string;
  /** The run's data subnet (TEST_SUBNET), e.g. `10.192.16.0/20`. */
  dataSubnet: string;
  /**
   * What the instance must always reach, whatever the configuration says: the sync service (its container's
   * address, or its port on the host). `deny_all`, filters and `enable = false` never cut them.
   */
  keepReachable: readonly Reachable[];
  /**
   * The host's own addresses on the instance's networks (the bridges' gateways). `deny_all` rejects them
   * although the data network's gateway is inside `dataSubnet`: the host is not part of the run's network.
   */
  hostAddresses?: readonly string[];
}

/** A subnet, or one TCP port of it (a service on the host, whose other ports `deny_all` must still cut). */
export interface Reachable {
  subnet: string;
  tcpPort?: number;
}

/** What the host's kernel and tools can do; detected, never assumed. */
export interface NetworkFeatures {
  /** `sch_netem`: latency, jitter, loss, corrupt, reorder, duplicate in one qdisc. */
  netem: boolean;
  /** `sch_htb` (bandwidth per class) and `cls_u32` (per-subnet classes). */
  htb: boolean;
  u32: boolean;
  /** `ifb` + `act_mirred`: shaping of incoming traffic. */
  ifb: boolean;
  /** iptables' `statistic` match: random loss. */
  iptablesStatistic: boolean;
  /** `NFQUEUE` + our packet delayer: latency and jitter without netem. */
  nfqueueDelayer: boolean;
}

/** A knob the host has no mechanism for; refused when the configuration is applied. */
export class UnsupportedNetworkFeatureError extends Error {
  readonly code: string = 'network_feature_missing';
  /** The configuration key, like `default.duplicate`. */
  readonly knob: string;
  /** What the host lacks, like `sch_netem`. */
  readonly feature: string;

  constructor(knob: string, feature: string, hint: string) {
    super(`${knob} needs ${feature}, which this host lacks; ${hint}`);
    this.name = new.target.name;
    this.knob = knob;
    this.feature = feature;
  }
}

export interface NetworkShaper {
  features(): Promise<NetworkFeatures>;
  /**
   * Applies `config` to the target, replacing whatever an earlier call applied. Resolves once the
   * configuration is in effect.
   *
   * @throws NetworkConfigError (core/contract/network-config.ts) for values that cannot be applied as written
   *   (a rule's subnet outside IPv4, an IPv4 address outside the data subnet), UnsupportedNetworkFeatureError
   *   for a knob the host has no mechanism for. Nothing is left half-applied: on a throw the target keeps
   *   its previous configuration.
   */
  apply(target: NetworkTarget, config: NetworkConfig): Promise<void>;
  /** Stops what `apply` started for the target (delayer processes); safe to call when nothing was. */
  release(target: NetworkTarget): Promise<void>;
}

import type { NetworkFeatures } from './network-shaper.ts';

/** Feature names the plan checks, the ones of `NetworkFeatures` and the iptables basics. */
export type HostFeatureName = keyof NetworkFeatures | 'iptables';

/**
 * What this host can do, as the shaping plan needs it: `NetworkFeatures` plus plain iptables (REJECT,
 * MARK, NFQUEUE in chains of our own), the delayer's binary, and why each missing feature is missing
 * (the refusal's hint).
 */
export interface HostNetworkFeatures extends NetworkFeatures {
  /** `iptables-restore` in a namespace, with REJECT, MARK, the mark match and NFQUEUE. */
  iptables: boolean;
  /** The built packet delayer, when `nfqueueDelayer`. */
  delayerBinary?: string;
  /** Why a feature is missing: the first line of the failing command's error, or the build's. */
  missing: Partial<Record<HostFeatureName, string>>;
}

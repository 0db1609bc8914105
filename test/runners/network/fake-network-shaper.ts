/**
 * A NetworkShaper behind the real interface that shapes nothing: it records what it was asked, can be
 * told to refuse or to hold an application, and checks that it is never asked to apply to a target it
 * has released. For the controller's wiring; the real shaper's tests measure real traffic.
 */
import type { NetworkConfig } from '../../../core/contract/network-config.ts';
import type {
  NetworkFeatures,
  NetworkShaper,
  NetworkTarget,
} from '../../../runners/network/network-shaper.ts';

export interface AppliedConfig {
  target: NetworkTarget;
  config: NetworkConfig;
}

export class FakeNetworkShaper implements NetworkShaper {
  readonly applied: AppliedConfig[] = [];
  readonly released: NetworkTarget[] = [];
  /** Decides, per call, whether to fail (throw) or how long to take; default: apply at once. */
  behaviour: (target: NetworkTarget, config: NetworkConfig) => Promise<void> | void = () => undefined;

  features(): Promise<NetworkFeatures> {
    return Promise.resolve({
      netem: false,
      htb: true,
      u32: true,
      ifb: true,
      iptablesStatistic: true,
      nfqueueDelayer: true,
    });
  }

  async apply(target: NetworkTarget, config: NetworkConfig): Promise<void> {
    await this.behaviour(target, config);
    this.applied.push({ target, config });
  }

  release(target: NetworkTarget): Promise<void> {
    this.released.push(target);
    return Promise.resolve();
  }

  /** The configurations applied to the instance labelled `label`, in order. */
  appliedTo(label: string): NetworkConfig[] {
    return this.applied.filter((entry) => entry.target.label === label).map((entry) => entry.config);
  }
}

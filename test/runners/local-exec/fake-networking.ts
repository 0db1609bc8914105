/**
 * A stand-in for the network controller and the shaper behind local:exec's port (until the real ones are
 * wired): it subscribes to every instance's `network:<hostname>` topic on the real sync service, parses
 * each configuration with the contract's parser, hands it to a shaper that shapes nothing but remembers
 * what it was asked, and signals the callback state, as the controller does.
 */
import { parseNetworkConfig, type NetworkConfig } from '../../../core/contract/network-config.ts';
import { networkTopic } from '../../../core/contract/well-known.ts';
import type {
  LocalExecNetworking,
  NetworkControllerOptions,
} from '../../../runners/local-exec/network-controller-port.ts';
import type { NetworkShaper, NetworkTarget } from '../../../runners/network/network-shaper.ts';

export interface Applied {
  hostname: string;
  target: NetworkTarget;
  config: NetworkConfig;
}

export interface FakeNetworking extends LocalExecNetworking {
  /** Every configuration applied, in order. */
  applied: Applied[];
  /** The instances each started controller was given. */
  started: NetworkControllerOptions['instances'][];
  released: string[];
  closed: number;
}

export function fakeNetworking(): FakeNetworking {
  const applied: Applied[] = [];
  const released: string[] = [];
  const started: NetworkControllerOptions['instances'][] = [];
  const shaper: NetworkShaper = {
    features: async () => ({
      netem: false,
      htb: false,
      u32: false,
      ifb: false,
      iptablesStatistic: false,
      nfqueueDelayer: false,
    }),
    apply: async () => undefined,
    release: async (target) => void released.push(target.label),
  };
  const fake: FakeNetworking = {
    applied,
    started,
    released,
    closed: 0,
    shaper,
    startController: async (options) => {
      started.push(options.instances);
      const subscriptions = options.instances.map((instance) => {
        const subscription = options.syncClient.subscribe<unknown>(networkTopic(instance.hostname));
        void (async () => {
          for await (const wire of subscription) {
            const config = parseNetworkConfig(wire);
            await options.shaper.apply(instance.target, config);
            applied.push({ hostname: instance.hostname, target: instance.target, config });
            await options.syncClient.signalEntry(config.callbackState);
          }
        })().catch(() => undefined);
        return subscription;
      });
      return {
        close: async () => {
          for (const subscription of subscriptions) subscription.cancel();
          for (const instance of options.instances) await options.shaper.release(instance.target);
          fake.closed += 1;
        },
      };
    },
  };
  return fake;
}

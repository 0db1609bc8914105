/**
 * The network side of a run (the original's network sidecar): for each instance it reads the
 * configurations the instance publishes on `network:<hostname>`, applies each one inside the instance's
 * network namespace through a {@link NetworkShaper}, and signals the configuration's callback state once
 * it is in effect. It runs in the daemon, as a client of the run's sync service; runners tell it which
 * hostname is which instance and how to reach its namespace.
 *
 * The failure rule (docs/network-emulation.md): a configuration that cannot be applied as written (a
 * value the contract refuses, a knob the host has no mechanism for, a command that fails, a namespace the
 * daemon cannot reach) is refused. The callback is then not signalled, the task log gets
 * `<instance>: network configuration refused: <key>: <why>`, later configurations of that instance are
 * not read, and the runner is told through `onRefused`, so that it ends the instance as `failure` with
 * that reason instead of letting it wait at the callback barrier until the run times out.
 *
 * What "as written" means for keys (parseNetworkConfig, core/contract/network-config.ts): every key at
 * every level must be one the contract knows, else the configuration is refused naming its path and the
 * accepted keys (`shaping: unknown key; …`, `default.latncy: unknown key; …`, `rules[0].speed: …`). Known:
 * network, enable, default, rules, callback_state, callback_target, routing_policy, IPv4, IPv6 and our
 * `ingress` at the top; latency, jitter, bandwidth (and `bandwith`, the official JS SDK's spelling), loss,
 * corrupt, corrupt_corr, reorder, reorder_corr, duplicate, duplicate_corr in `default`, `ingress` and each
 * rule, plus subnet and filter in a rule. A key given as null counts as absent; only callback_state is
 * required. Values are checked as strictly (whole nanoseconds, whole bits/s, percentages 0–100, filter 0–2,
 * network "default", IPv6 empty), with one exception kept from the original: a `routing_policy` other than
 * `allow_all` (missing included) is `deny_all`. A knob the host has no mechanism for is refused as
 * `<key> needs <kernel feature>, which this host lacks; …` (e.g. `default.corrupt needs sch_netem`).
 */
import {
  NetworkConfigError,
  parseNetworkConfig,
  type LinkShape,
  type NetworkConfig,
} from '../../core/contract/network-config.ts';
import { networkTopic } from '../../core/contract/well-known.ts';
import type { TaskLog } from '../../core/task-log.ts';
import type { SyncClient } from '../../sdk/sync-client.ts';
import type { Subscription } from '../../sdk/topic-subscription.ts';
import { UnsupportedNetworkFeatureError, type NetworkShaper, type NetworkTarget } from './network-shaper.ts';

/** The sync operations the controller needs, on a client scoped to the run (plan, case). */
export type NetworkControllerSync = Pick<SyncClient, 'subscribe' | 'signalEntry'>;

/** Why an instance's configuration was refused. */
export interface NetworkRefusal {
  /** The instance, as in messages: `peers[3]`. */
  label: string;
  /** `network configuration refused: default.latency: expected whole nanoseconds …` */
  reason: string;
  /** The configuration keys at fault (`default.latency`, `rules[1].filter`); empty when no key is. */
  keys: readonly string[];
}

/** One instance the controller serves. */
export interface ControlledInstance {
  /** Names the instance in messages: `peers[3]`. */
  label: string;
  /** Its hostname, unique in the run: the SDKs publish on `network:<hostname>`. */
  hostname: string;
  /**
   * Where its namespace and data interface are. Called once, when its first configuration arrives: an
   * instance that never configures its network never needs it.
   */
  target: () => Promise<NetworkTarget>;
  /** Called at most once, when a configuration is refused; the runner ends the instance. */
  onRefused: (refusal: NetworkRefusal) => void;
  /**
   * Whether the instance still runs. Asked before a refusal: an instance that exited by itself (not
   * waiting for its callback) takes its namespace with it, and that is no reason to fail it. Absent: it
   * counts as running until {@link NetworkController.release}.
   */
  running?: () => Promise<boolean>;
}

export interface NetworkControllerOptions {
  sync: NetworkControllerSync;
  /** Absent: this daemon has no way to shape traffic, and every configuration is refused saying so. */
  shaper: NetworkShaper | undefined;
  /** Why there is no shaper, when the runner knows better than "this daemon has none". */
  noShaperReason?: string;
  log: TaskLog;
}

interface Served {
  instance: ControlledInstance;
  subscription: Subscription;
  loop: Promise<void>;
  target: Promise<NetworkTarget> | undefined;
  stopped: boolean;
}

/** One per run. Serve each instance once its container or process exists; {@link close} at the run's end. */
export class NetworkController {
  private readonly options: NetworkControllerOptions;
  private readonly served = new Map<string, Served>();

  constructor(options: NetworkControllerOptions) {
    this.options = options;
  }

  /**
   * Starts reading the instance's topic from its first item (the topic's history replays, so a
   * configuration published before this call is not lost). Configurations of one instance are applied
   * one after another, in the order published; instances are served in parallel.
   */
  serve(instance: ControlledInstance): void {
    if (this.served.has(instance.hostname)) {
      throw new Error(
        `the network controller already serves hostname ${instance.hostname} (${this.served.get(instance.hostname)?.instance.label}); hostnames must be unique in a run`,
      );
    }
    const served: Served = {
      instance,
      subscription: this.options.sync.subscribe(networkTopic(instance.hostname)),
      loop: Promise.resolve(),
      target: undefined,
      stopped: false,
    };
    served.loop = this.read(served);
    this.served.set(instance.hostname, served);
  }

  /**
   * Stops serving the instance (it ended): no further configuration is read, one being applied finishes,
   * and what the shaper started for it is released. Safe to call for an instance not served.
   */
  async release(hostname: string): Promise<void> {
    const served = this.served.get(hostname);
    if (served === undefined) return;
    this.served.delete(hostname);
    served.stopped = true;
    served.subscription.cancel();
    await served.loop;
    const target = await served.target?.catch(() => undefined);
    if (target === undefined || this.options.shaper === undefined) return;
    await this.options.shaper.release(target).catch((error: Error) => {
      this.options.log.warn(
        `${served.instance.label}: could not release its network shaping: ${error.message}`,
      );
    });
  }

  /** Releases every instance still served. Safe to call more than once. */
  async close(): Promise<void> {
    await Promise.all([...this.served.keys()].map((hostname) => this.release(hostname)));
  }

  private async read(served: Served): Promise<void> {
    const { label, hostname } = served.instance;
    try {
      for await (const item of served.subscription) {
        if (served.stopped || !(await this.applyOne(served, item))) break;
      }
    } catch (error) {
      // The daemon's connection to the sync service is gone: the run is ending or broken either way.
      if (!served.stopped) {
        this.options.log.warn(
          `${label}: the network controller stopped reading ${networkTopic(hostname)}: ${(error as Error).message}`,
        );
      }
    }
  }

  /** Applies one configuration and signals its callback; false when it was refused (stop reading). */
  private async applyOne(served: Served, item: unknown): Promise<boolean> {
    const { label } = served.instance;
    let config: NetworkConfig;
    try {
      config = parseNetworkConfig(item);
      const { shaper } = this.options;
      if (shaper === undefined) {
        throw new ShapingUnavailableError(
          this.options.noShaperReason ??
            'this daemon has no network shaper, so it cannot shape traffic; run the plan where the daemon can (local:docker on Linux as root)',
        );
      }
      served.target ??= served.instance.target().catch((error: Error) => {
        throw new ShapingUnavailableError(`cannot reach the instance's network namespace: ${error.message}`, {
          cause: error,
        });
      });
      await shaper.apply(await served.target, config);
    } catch (error) {
      // The instance ended meanwhile: its namespace went with it, and nobody waits for the callback.
      if (served.stopped || !(await this.stillRunning(served))) return false;
      const refusal = describeRefusal(label, error);
      this.options.log.error(`${label}: ${refusal.reason}`);
      served.instance.onRefused(refusal);
      return false;
    }
    if (served.stopped) return false;
    await this.options.sync.signalEntry(config.callbackState);
    this.options.log.info(
      `${label}: network configured (${summarize(config)}); signalled ${config.callbackState}`,
    );
    return true;
  }

  private async stillRunning(served: Served): Promise<boolean> {
    if (served.instance.running === undefined) return true;
    // When it cannot be told, refuse: a wrong refusal is visible, a missed one is a silent hang.
    return served.instance.running().catch(() => true);
  }
}

/** Shaping cannot happen at all for this instance (no shaper, no namespace): no key is at fault. */
class ShapingUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

function describeRefusal(label: string, error: unknown): NetworkRefusal {
  const prefix = 'network configuration refused: ';
  if (error instanceof NetworkConfigError) {
    return {
      label,
      reason: prefix + error.problems.map((problem) => `${problem.path}: ${problem.message}`).join('; '),
      keys: error.problems.map((problem) => problem.path),
    };
  }
  if (error instanceof UnsupportedNetworkFeatureError) {
    return { label, reason: prefix + error.message, keys: [error.knob] };
  }
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof ShapingUnavailableError) return { label, reason: prefix + message, keys: [] };
  return { label, reason: `${prefix}could not apply it: ${message}`, keys: [] };
}

/** `latency 50ms ±10ms, bandwidth 10Mbit/s, 2 rules, deny_all`: what a person checks in the log. */
export function summarize(config: NetworkConfig): string {
  const parts = [
    config.enable ? describeShape(config.default) : 'data interface down',
    ...(config.rules.length > 0
      ? [`${config.rules.length} rule${config.rules.length === 1 ? '' : 's'}`]
      : []),
    ...(config.ingress ? [`ingress ${describeShape(config.ingress)}`] : []),
    ...(config.ipv4 ? [`address ${config.ipv4}`] : []),
    config.routingPolicy,
  ];
  return parts.join(', ');
}

function describeShape(shape: LinkShape): string {
  const parts: string[] = [];
  if (shape.latency > 0) {
    parts.push(`latency ${shape.latency / 1e6}ms${shape.jitter > 0 ? ` ±${shape.jitter / 1e6}ms` : ''}`);
  }
  if (shape.bandwidth > 0) parts.push(`bandwidth ${formatBitsPerSecond(shape.bandwidth)}`);
  for (const key of ['loss', 'corrupt', 'reorder', 'duplicate'] as const) {
    if (shape[key] > 0) parts.push(`${key} ${shape[key]}%`);
  }
  return parts.length > 0 ? parts.join(' ') : 'no shaping';
}

function formatBitsPerSecond(bits: number): string {
  for (const [unit, size] of [
    ['Gbit/s', 1e9],
    ['Mbit/s', 1e6],
    ['kbit/s', 1e3],
  ] as const) {
    if (bits >= size) return `${Number((bits / size).toPrecision(4))}${unit}`;
  }
  return `${bits}bit/s`;
}

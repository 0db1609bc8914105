import { perfectLink, type NetworkConfig } from '../../core/contract/network-config.ts';
import { SingleFlight } from '../../core/single-flight.ts';
import { detectNetworkFeatures } from './detect-network-features.ts';
import type { HostNetworkFeatures } from './host-network-features.ts';
import { runHostCommand } from '../host-command.ts';
import { describeNamespace, namespaceCommand, shFromStdin } from './namespace-command.ts';
import type { NetworkNamespace, NetworkShaper, NetworkTarget } from './network-shaper.ts';
import { PacketDelayerBinary } from './packet-delayer-binary.ts';
import { PacketDelayerProcess } from './packet-delayer-process.ts';
import { planShaping, shapingScript, type ShapingPlan } from './shaping-plan.ts';

const applyTimeoutMs = 30_000;
/** What a namespace had before our first apply: no shaping, no filtering. */
const noConfiguration: NetworkConfig = {
  network: 'default',
  enable: true,
  default: { ...perfectLink },
  rules: [],
  callbackState: '',
  callbackTarget: 0,
  routingPolicy: 'allow_all',
  ipv4: '',
};

export interface LinuxNetworkShaperOptions {
  /** Where the packet delayer is built on first use (a directory of the daemon's home). */
  buildDir: string;
  /** A prebuilt packet delayer, used instead of building native/packet-delayer.c. */
  delayerBinary?: string;
  /** Hears about what goes wrong between calls: a packet delayer that exited on its own. */
  onWarning?: (message: string) => void;
}

/**
 * The NetworkShaper of a Linux host: tc, iptables and, where the kernel has no netem, the packet delayer,
 * run inside each target's network namespace (see shaping-plan.ts for the mechanism of each knob). One
 * apply is one shell process in the namespace, plus a delayer process while the configuration delays
 * anything. Calls for the same namespace run one after another; different namespaces in parallel.
 */
export class LinuxNetworkShaper implements NetworkShaper {
  private readonly binary: PacketDelayerBinary;
  private readonly detection = new SingleFlight<HostNetworkFeatures>({ retainSuccess: true });
  private readonly delayers = new Map<string, PacketDelayerProcess>();
  private readonly queues = new Map<string, Promise<void>>();
  /** The plan in place per namespace, to put back when a later apply fails half-way. */
  private readonly applied = new Map<string, ShapingPlan>();
  private readonly onWarning: (message: string) => void;

  constructor(options: LinuxNetworkShaperOptions) {
    this.binary = new PacketDelayerBinary({ buildDir: options.buildDir, prebuilt: options.delayerBinary });
    this.onWarning = options.onWarning ?? (() => {});
  }

  /** Detected once per shaper (the daemon has one), in a throwaway namespace. */
  features(): Promise<HostNetworkFeatures> {
    return this.detection.run('features', async () => {
      const delayer = await this.binary.path().then(
        (binary) => ({ binary }),
        (error: Error) => ({ problem: error.message }),
      );
      return detectNetworkFeatures(delayer);
    });
  }

  apply(target: NetworkTarget, config: NetworkConfig): Promise<void> {
    return this.serialized(target.namespace, async () => {
      const features = await this.features();
      const plan = planShaping(target, config, features);
      const key = namespaceKey(target.namespace);
      const previous = this.applied.get(key);
      try {
        await this.put(target, plan, features);
        this.applied.set(key, plan);
      } catch (error) {
        // Put the previous configuration back (or none, when this was the first), so a failure in the
        // middle of the script leaves no mix of old and new; the original error is what the caller hears.
        const restore = previous ?? planShaping(target, noConfiguration, features);
        await this.put(target, restore, features).catch((restoreError: Error) =>
          this.onWarning(
            `could not restore the previous network configuration of ${target.label} after a failed apply: ${restoreError.message}`,
          ),
        );
        throw error;
      }
    });
  }

  release(target: NetworkTarget): Promise<void> {
    return this.serialized(target.namespace, async () => {
      const key = namespaceKey(target.namespace);
      this.applied.delete(key);
      const delayer = this.delayers.get(key);
      if (delayer) await this.stopDelayer(key, delayer);
    });
  }

  /** Stops every delayer this shaper started (the daemon shutting down). Safe to call twice. */
  async close(): Promise<void> {
    const running = [...this.delayers.entries()];
    this.delayers.clear();
    await Promise.all(running.map(([, delayer]) => delayer.stop()));
  }

  /** The pid of the delayer running for a namespace, if any (for tests and diagnostics). */
  delayerPid(namespace: NetworkNamespace): number | undefined {
    return this.delayers.get(namespaceKey(namespace))?.pid;
  }

  /** Runs a plan: the delayer first (it listens on its queues before rules send packets there), then the script. */
  private async put(target: NetworkTarget, plan: ShapingPlan, features: HostNetworkFeatures): Promise<void> {
    const key = namespaceKey(target.namespace);
    let delayer = this.delayers.get(key);
    if (plan.delays.length > 0) {
      if (!delayer) delayer = this.startDelayer(target, features);
      await delayer.configure(plan.delays);
    }
    const [command = 'sh', ...args] = namespaceCommand(target.namespace, shFromStdin);
    await runHostCommand(command, args, {
      input: shapingScript(plan),
      timeoutMs: applyTimeoutMs,
      what: `applying the network configuration of ${target.label} in ${describeNamespace(target.namespace)}`,
    });
    if (plan.delays.length === 0 && delayer) await this.stopDelayer(key, delayer);
  }

  private startDelayer(target: NetworkTarget, features: HostNetworkFeatures): PacketDelayerProcess {
    if (!features.delayerBinary) throw new Error('planShaping asked for a delay without a packet delayer');
    const key = namespaceKey(target.namespace);
    const delayer = PacketDelayerProcess.start({
      binary: features.delayerBinary,
      namespace: target.namespace,
      dataInterface: target.dataInterface,
    });
    this.delayers.set(key, delayer);
    void delayer.exited.then((exit) => {
      if (this.delayers.get(key) !== delayer) return;
      this.delayers.delete(key);
      this.onWarning(
        `the packet delayer of ${target.label} (${describeNamespace(target.namespace)}) exited on its own ` +
          `(${exit.signal ?? `exit ${exit.code}`}): ${exit.stderr.trim().split('\n').slice(-2).join('; ')}; ` +
          'its packets now pass undelayed until the next configuration',
      );
    });
    return delayer;
  }

  private async stopDelayer(key: string, delayer: PacketDelayerProcess): Promise<void> {
    this.delayers.delete(key);
    await delayer.stop();
  }

  private serialized(namespace: NetworkNamespace, work: () => Promise<void>): Promise<void> {
    const key = namespaceKey(namespace);
    const previous = this.queues.get(key) ?? Promise.resolve();
    const next = previous.then(work);
    const settled = next.catch(() => {});
    this.queues.set(key, settled);
    void settled.then(() => {
      if (this.queues.get(key) === settled) this.queues.delete(key);
    });
    return next;
  }
}

function namespaceKey(namespace: NetworkNamespace): string {
  return namespace.kind === 'pid' ? `pid:${namespace.pid}` : `named:${namespace.name}`;
}

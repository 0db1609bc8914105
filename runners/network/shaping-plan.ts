/**
 * A network configuration, the host's features and a target → the commands that put it in place inside the
 * target's namespace. Pure: every refusal (a value that cannot be applied, a knob the host has no
 * mechanism for) is thrown here, before anything runs, so a refused configuration leaves the previous one
 * in place.
 *
 * Mechanisms, all on the target's data interface (egress unless said otherwise):
 * - bandwidth: an HTB class per link (`default` is HTB's default class, each `rules[i]` with a shape gets a
 *   class of its own, picked by a u32 filter on the destination subnet); `ingress`: the same behind an IFB
 *   device the data interface's ingress is redirected to.
 * - latency, jitter, loss: netem as the class's leaf where the kernel has it; otherwise iptables sends the
 *   link's packets to an NFQUEUE queue (one per distinct latency/jitter/loss) and the packet delayer
 *   (native/packet-delayer.c) drops or holds them. Its drop is a real loss (the send already succeeded;
 *   an iptables DROP in OUTPUT fails UDP's send() with EPERM and makes TCP retry the same segment at once).
 *   Ingress loss without netem: iptables' `statistic` match in INPUT (a drop there is silent to the sender).
 * - corrupt, reorder, duplicate: netem only.
 * - filter reject: iptables REJECT (TCP: a reset, so connect() fails at once with ECONNREFUSED; anything
 *   else: ICMP port unreachable); filter drop: a u32 filter sends the subnet's packets to an HTB class whose
 *   leaf is `pfifo limit 0` (silence: UDP sends succeed and vanish, TCP connects time out). The kernels we
 *   target may lack act_gact (`action drop`), so no filter action is used but mirred.
 * - routing_policy deny_all: iptables REJECT (ICMP net unreachable, as a missing route would fail) of
 *   everything but the data subnet, `keepReachable` and loopback, and of the host's addresses
 *   (`hostAddresses`, the data network's gateway included).
 * - enable = false: all IP egress on the data interface goes to the dropping class and iptables drops its
 *   ingress, except `keepReachable`.
 * - IPv4: the new address is added and the data subnet's other addresses removed (secondaries promoted,
 *   so the interface's routes stay).
 * Our objects only: chains TESTGROUND-*, the interface's root and ingress qdiscs, the IFB device tg-ifb.
 */
import {
  NetworkConfigError,
  parseCidr,
  parseIpv4,
  type LinkShape,
  type NetworkConfig,
  type NetworkConfigProblem,
} from '../../core/contract/network-config.ts';
import type { HostFeatureName, HostNetworkFeatures } from './host-network-features.ts';
import { UnsupportedNetworkFeatureError, type NetworkTarget } from './network-shaper.ts';

/** One queue of the packet delayer: what it delays and drops, and how it holds packets. */
export interface DelayQueue {
  queue: number;
  latencyNs: number;
  jitterNs: number;
  /** Percent of the queue's packets dropped. */
  loss: number;
  /** `resend`: outgoing packets, copied and re-sent (frees the sender's socket memory); `hold`: incoming. */
  mode: 'hold' | 'resend';
}

export interface ShapingPlan {
  /** Shell lines run first: remove our qdiscs and IFB device, re-address the interface, create the IFB. */
  prepare: string[];
  /** `tc -batch` lines; empty when nothing is shaped in the qdiscs. */
  tc: string[];
  /** `iptables-restore --noflush` input that empties and fills our chains. */
  iptables: string;
  /** The packet delayer's queues; empty when no delayer is needed. */
  delays: DelayQueue[];
}

export const chains = { output: 'TESTGROUND-OUTPUT', input: 'TESTGROUND-INPUT' } as const;
/** The mark the packet delayer puts on packets it re-sends, so the rules do not queue them again. */
export const resendMark = 0x200000;
export const ifbDevice = 'tg-ifb';
const firstQueue = 7400;
/** The HTB class whose leaf holds nothing: what goes there is dropped, silently. */
const dropClass = 0x3;
const pfifoLimitPackets = 1000;
const netemLimitPackets = 10_000;
/** The rate of an HTB class that only carries a netem leaf: no limit in practice. */
const unlimitedRate = '100gbit';

interface Link {
  /** The knob path prefix: `default`, `rules[2]`, `ingress`. */
  path: string;
  shape: LinkShape;
  /** The rule's subnet, normalized; undefined for `default` and `ingress`. */
  subnet?: string;
  filter: 'accept' | 'reject' | 'drop';
}

/**
 * @throws NetworkConfigError for values that cannot be applied as written (IPv4 outside the data subnet),
 *   UnsupportedNetworkFeatureError for a knob the host has no mechanism for.
 */
export function planShaping(
  target: NetworkTarget,
  config: NetworkConfig,
  features: HostNetworkFeatures,
): ShapingPlan {
  checkTarget(target);
  const dev = target.dataInterface;
  const dataSubnet = normalizeCidr(target.dataSubnet);
  const keep = target.keepReachable.map(({ subnet, tcpPort }) => ({
    subnet: normalizeCidr(subnet),
    tcpPort,
  }));
  const hosts = (target.hostAddresses ?? []).map((address) => `${address}/32`);
  const address = config.ipv4 === '' ? undefined : checkAddress(config.ipv4, dataSubnet);

  const links: Link[] = [
    { path: 'default', shape: config.default, filter: 'accept' },
    ...config.rules.map((rule, index): Link => {
      const filter = rule.filter === 1 ? 'reject' : rule.filter === 2 ? 'drop' : 'accept';
      return { path: `rules[${index}]`, shape: rule, subnet: normalizeCidr(rule.subnet), filter };
    }),
  ];
  const ingress: Link | undefined = config.ingress
    ? { path: 'ingress', shape: config.ingress, filter: 'accept' }
    : undefined;
  // With the data interface cut off, nothing of the shaping matters; it is not even checked.
  const shaped = config.enable ? links : [];
  const shapedIngress = config.enable ? ingress : undefined;
  const [defaultLink, ...ruleLinks] = shaped;
  checkFeatures(shaped, shapedIngress, config, features);

  const queues = new QueueNumbers();
  const netem = features.netem;
  const egressDelay = (link: Link): DelayQueue | undefined =>
    !netem && link.filter === 'accept' ? queues.for(link.shape, 'resend') : undefined;

  // Egress qdiscs.
  const tc: string[] = [];
  const egressClass = (link: Link): boolean =>
    link.filter === 'accept' && (link.shape.bandwidth > 0 || (netem && needsNetem(link.shape)));
  const classMinor = (index: number): number => (index === 0 ? 0x2 : 0x10 + index - 1);
  const dropping = !config.enable || shaped.some((link) => link.filter === 'drop');
  if (dropping || shaped.some(egressClass)) {
    const defaultClass = defaultLink && egressClass(defaultLink) ? classMinor(0) : 0;
    // `flowid 1:` (the qdisc itself) is HTB's direct path: unshaped.
    tc.push(`qdisc add dev ${dev} root handle 1: htb default ${hex(defaultClass)}`);
    for (const { subnet } of keep) {
      tc.push(`filter add dev ${dev} parent 1: protocol ip prio 1 u32 match ip dst ${subnet} flowid 1:`);
    }
    if (dropping) {
      tc.push(
        `class add dev ${dev} parent 1: classid 1:${hex(dropClass)} htb rate ${unlimitedRate} ceil ${unlimitedRate} quantum 200000`,
        `qdisc add dev ${dev} parent 1:${hex(dropClass)} handle ${hex(dropClass)}: pfifo limit 0`,
      );
    }
    if (!config.enable) {
      // ARP still goes out: keepReachable subnets on this interface must stay reachable.
      tc.push(
        `filter add dev ${dev} parent 1: protocol ip prio 3 u32 match u32 0 0 flowid 1:${hex(dropClass)}`,
      );
      tc.push(
        `filter add dev ${dev} parent 1: protocol ipv6 prio 4 u32 match u32 0 0 flowid 1:${hex(dropClass)}`,
      );
    }
    shaped.forEach((link, index) => {
      if (egressClass(link)) tc.push(...htbClass(dev, classMinor(index), link.shape, netem));
    });
    ruleLinks.forEach((link, i) => {
      const target =
        link.filter === 'drop'
          ? `flowid 1:${hex(dropClass)}`
          : egressClass(link)
            ? `flowid 1:${hex(classMinor(i + 1))}`
            : 'flowid 1:';
      tc.push(
        `filter add dev ${dev} parent 1: protocol ip prio ${10 + i} u32 match ip dst ${link.subnet} ${target}`,
      );
    });
  }

  // Ingress: redirected to an IFB device, shaped there.
  const prepare = [
    `tc qdisc del dev ${dev} root 2>/dev/null || true`,
    `tc qdisc del dev ${dev} ingress 2>/dev/null || true`,
    `ip link del ${ifbDevice} 2>/dev/null || true`,
  ];
  if (address) {
    prepare.push(
      `echo 1 > /proc/sys/net/ipv4/conf/${dev}/promote_secondaries`,
      `ip -4 addr replace ${address} brd + dev ${dev}`,
      `ip -4 -o addr show dev ${dev} to ${dataSubnet} | while read -r _ _ _ old _; do ` +
        `[ "$old" = "${address}" ] || ip -4 addr del "$old" dev ${dev}; done`,
    );
  }
  if (shapedIngress && (shapedIngress.shape.bandwidth > 0 || (netem && needsNetem(shapedIngress.shape)))) {
    prepare.push(`ip link add ${ifbDevice} type ifb`, `ip link set ${ifbDevice} up`);
    tc.push(`qdisc add dev ${dev} handle ffff: ingress`);
    // A match without an action ends the classification: the packet goes on, not redirected.
    for (const { subnet } of keep) {
      tc.push(
        `filter add dev ${dev} parent ffff: protocol ip prio 1 u32 match ip src ${subnet} flowid ffff:1`,
      );
    }
    tc.push(
      `filter add dev ${dev} parent ffff: protocol ip prio 2 u32 match u32 0 0 action mirred egress redirect dev ${ifbDevice}`,
      `qdisc add dev ${ifbDevice} root handle 1: htb default 2`,
      ...htbClass(ifbDevice, 0x2, shapedIngress.shape, netem),
    );
  }

  // iptables: our chains, emptied and filled.
  const output = [
    `-A ${chains.output} -o lo -j RETURN`,
    `-A ${chains.output} -m mark --mark ${hex0x(resendMark)}/${hex0x(resendMark)} -j RETURN`,
    ...keep.map(
      ({ subnet, tcpPort }) => `-A ${chains.output} -d ${subnet}${tcpMatch('--dport', tcpPort)} -j RETURN`,
    ),
  ];
  if (config.routingPolicy === 'deny_all') {
    output.push(
      ...hosts.map((host) => `-A ${chains.output} -d ${host} -j REJECT --reject-with icmp-net-unreachable`),
      `-A ${chains.output} ! -d ${dataSubnet} -j REJECT --reject-with icmp-net-unreachable`,
    );
  }
  const onData = `-A ${chains.output} -o ${dev}`;
  for (const link of ruleLinks) {
    if (link.filter === 'reject') {
      output.push(
        `${onData} -d ${link.subnet} -p tcp -j REJECT --reject-with tcp-reset`,
        `${onData} -d ${link.subnet} -j REJECT --reject-with icmp-port-unreachable`,
      );
      continue;
    }
    const delay = egressDelay(link);
    output.push(`${onData} -d ${link.subnet} ${delay ? queueTarget(delay) : '-j RETURN'}`);
  }
  const defaultDelay = defaultLink && egressDelay(defaultLink);
  if (defaultDelay) output.push(`${onData} ${queueTarget(defaultDelay)}`);

  const input = [
    `-A ${chains.input} -i lo -j RETURN`,
    ...keep.map(
      ({ subnet, tcpPort }) => `-A ${chains.input} -s ${subnet}${tcpMatch('--sport', tcpPort)} -j RETURN`,
    ),
  ];
  if (!config.enable) input.push(`-A ${chains.input} -i ${dev} -j DROP`);
  if (shapedIngress && !netem) {
    // A drop on the way in is silent to the sender, wherever it happens: no need for the delayer.
    if (shapedIngress.shape.loss > 0) {
      input.push(
        `-A ${chains.input} -i ${dev} -m statistic --mode random --probability ${probability(shapedIngress.shape.loss)} -j DROP`,
      );
    }
    const delay = queues.for({ ...shapedIngress.shape, loss: 0 }, 'hold');
    if (delay) input.push(`-A ${chains.input} -i ${dev} ${queueTarget(delay)}`);
  }

  const iptables = [
    '*filter',
    `:${chains.output} - [0:0]`,
    `:${chains.input} - [0:0]`,
    ...output,
    ...input,
    'COMMIT',
    '',
  ].join('\n');

  // Without iptables on the host, the checks above let through only what needs none of it.
  return { prepare, tc, iptables: features.iptables ? iptables : '', delays: queues.all() };
}

/**
 * The plan as one shell script (run by `sh -e` inside the namespace): a handful of processes, whatever
 * the configuration, so 100 instances configuring at once stay cheap. Our chains are created by the
 * restore and hooked into the built-in chains once.
 */
export function shapingScript(plan: ShapingPlan): string {
  const jumps = [
    ['OUTPUT', chains.output],
    ['INPUT', chains.input],
  ].map(([from, to]) => `iptables -w -C ${from} -j ${to} 2>/dev/null || iptables -w -I ${from} 1 -j ${to}`);
  return [
    'set -e',
    `trap 'status=$?; [ "$status" -eq 0 ] || echo "testground: the $step step failed (exit $status)" >&2' EXIT`,
    'step=prepare',
    ...plan.prepare,
    'step=tc',
    ...(plan.tc.length > 0 ? ["tc -batch - <<'TESTGROUND_TC'", ...plan.tc, 'TESTGROUND_TC'] : []),
    ...(plan.iptables === ''
      ? []
      : [
          'step=iptables',
          "iptables-restore -w --noflush <<'TESTGROUND_IPTABLES'",
          plan.iptables.trimEnd(),
          'TESTGROUND_IPTABLES',
          ...jumps,
        ]),
    '',
  ].join('\n');
}

function htbClass(dev: string, minor: number, shape: LinkShape, netem: boolean): string[] {
  const rate = shape.bandwidth > 0 ? `${shape.bandwidth}bit` : unlimitedRate;
  // No class borrows from another (rate = ceil), so the quantum only has to be valid: HTB wants it between
  // one MTU and 200,000 bytes, and derives rate/10 when it is left out (a warning on every fast link).
  const quantum = Math.min(200_000, Math.max(1_600, Math.round((shape.bandwidth || 8e9) / 8 / 10)));
  // veth hands HTB GSO packets of up to 64 KiB: a burst below one of them (HTB's default is rate/HZ plus
  // an MTU) throttles the class under its rate. 10 ms worth of the rate, and never under 64 KiB + headers.
  const burst = Math.max(66_000, Math.round((shape.bandwidth || 8e9) / 8 / 100));
  const leaf = netem && needsNetem(shape) ? netemLeaf(shape) : `pfifo limit ${pfifoLimitPackets}`;
  return [
    `class add dev ${dev} parent 1: classid 1:${hex(minor)} htb rate ${rate} ceil ${rate} burst ${burst} cburst ${burst} quantum ${quantum}`,
    `qdisc add dev ${dev} parent 1:${hex(minor)} handle ${hex(minor)}: ${leaf}`,
  ];
}

function netemLeaf(shape: LinkShape): string {
  const parts = [`netem limit ${netemLimitPackets}`];
  if (shape.latency > 0 || shape.jitter > 0) {
    parts.push(`delay ${microseconds(shape.latency)}us`);
    if (shape.jitter > 0) parts.push(`${microseconds(shape.jitter)}us`);
  }
  if (shape.loss > 0) parts.push(`loss ${shape.loss}%`);
  if (shape.corrupt > 0) parts.push(`corrupt ${shape.corrupt}% ${shape.corruptCorr}%`);
  if (shape.duplicate > 0) parts.push(`duplicate ${shape.duplicate}% ${shape.duplicateCorr}%`);
  if (shape.reorder > 0) parts.push(`reorder ${shape.reorder}% ${shape.reorderCorr}%`);
  return parts.join(' ');
}

function needsNetem(shape: LinkShape): boolean {
  return (
    shape.latency > 0 ||
    shape.jitter > 0 ||
    shape.loss > 0 ||
    shape.corrupt > 0 ||
    shape.duplicate > 0 ||
    shape.reorder > 0
  );
}

class QueueNumbers {
  private readonly byKey = new Map<string, DelayQueue>();

  /** The queue for a shape's latency, jitter and loss, or undefined when it has none of them. */
  for(shape: LinkShape, mode: DelayQueue['mode']): DelayQueue | undefined {
    if (shape.latency === 0 && shape.jitter === 0 && shape.loss === 0) return undefined;
    const key = `${mode}:${shape.latency}:${shape.jitter}:${shape.loss}`;
    let queue = this.byKey.get(key);
    if (!queue) {
      const { latency: latencyNs, jitter: jitterNs, loss } = shape;
      queue = { queue: firstQueue + this.byKey.size, latencyNs, jitterNs, loss, mode };
      this.byKey.set(key, queue);
    }
    return queue;
  }

  all(): DelayQueue[] {
    return [...this.byKey.values()];
  }
}

function queueTarget(delay: DelayQueue): string {
  // --queue-bypass: while no delayer listens on the queue, packets go through undelayed instead of dropped.
  return `-j NFQUEUE --queue-num ${delay.queue} --queue-bypass`;
}

function probability(percent: number): string {
  return String(Math.round(percent * 1e6) / 1e8);
}

function checkFeatures(
  links: readonly Link[],
  ingress: Link | undefined,
  config: NetworkConfig,
  features: HostNetworkFeatures,
): void {
  const refuse = (knob: string, feature: HostFeatureName, hint: string): never => {
    const reason = features.missing[feature];
    throw new UnsupportedNetworkFeatureError(
      knob,
      featureNames[feature],
      reason ? `${hint} (${reason})` : hint,
    );
  };
  const needs = (knob: string, feature: HostFeatureName, hint: string): void => {
    if (!features[feature]) refuse(knob, feature, hint);
  };
  const zeroHint = 'set it to 0, or run on a host whose kernel has it';
  if (config.routingPolicy === 'deny_all') {
    needs('routing_policy', 'iptables', 'deny_all rejects traffic leaving the data network with iptables');
  }
  if (!config.enable) {
    needs('enable', 'iptables', 'cutting the data interface off drops its incoming traffic with iptables');
    needs('enable', 'htb', 'cutting the data interface off drops its outgoing traffic in an HTB qdisc');
    needs('enable', 'u32', 'cutting the data interface off drops its outgoing traffic with u32 filters');
  }
  for (const link of [...links, ...(ingress ? [ingress] : [])]) {
    const { shape, path } = link;
    if (link.filter === 'reject')
      needs(`${path}.filter`, 'iptables', 'a reject filter is an iptables REJECT');
    if (link.filter === 'drop') {
      needs(`${path}.filter`, 'htb', 'a drop filter drops in an HTB qdisc');
      needs(`${path}.filter`, 'u32', 'a drop filter matches the subnet with u32');
    }
    if (link.filter !== 'accept') continue;
    const shapedInQdisc = shape.bandwidth > 0 || (features.netem && needsNetem(shape));
    if (shapedInQdisc) {
      needs(`${path}.bandwidth`, 'htb', 'bandwidth is shaped with HTB classes');
      if (path === 'ingress') needs('ingress', 'ifb', 'incoming traffic is shaped on an IFB device');
      else if (path !== 'default') needs(`${path}.bandwidth`, 'u32', 'a rule picks its class with u32');
    }
    if (!features.netem) {
      const delayerKnobs =
        path === 'ingress' ? (['latency', 'jitter'] as const) : (['latency', 'jitter', 'loss'] as const);
      for (const knob of delayerKnobs) {
        if (shape[knob] > 0 && !(features.iptables && features.nfqueueDelayer)) {
          refuse(`${path}.${knob}`, 'netem', `and the NFQUEUE packet delayer cannot run here either`);
        }
      }
      if (path === 'ingress' && shape.loss > 0 && !(features.iptables && features.iptablesStatistic)) {
        refuse('ingress.loss', 'netem', `and iptables' statistic match is unavailable too`);
      }
      for (const knob of ['corrupt', 'reorder', 'duplicate'] as const) {
        if (shape[knob] > 0)
          refuse(`${path}.${knob}`, 'netem', `no other mechanism does it here; ${zeroHint}`);
      }
    } else if (shape.reorder > 0 && shape.latency === 0) {
      throw new NetworkConfigError([
        {
          path: `${path}.reorder`,
          message: `netem reorders packets by sending some without the delay; set ${path}.latency > 0 too`,
        },
      ]);
    }
  }
}

/** The kernel or tool names a refusal cites. */
const featureNames: Record<HostFeatureName, string> = {
  netem: 'sch_netem',
  htb: 'sch_htb',
  u32: 'cls_u32',
  ifb: 'ifb',
  iptablesStatistic: "iptables' statistic match",
  nfqueueDelayer: 'NFQUEUE and the packet delayer',
  iptables: 'iptables',
};

function tcpMatch(option: '--dport' | '--sport', port: number | undefined): string {
  return port === undefined ? '' : ` -p tcp ${option} ${port}`;
}

function checkTarget(target: NetworkTarget): void {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(target.dataInterface)) {
    throw new Error(
      `target ${target.label}: dataInterface ${JSON.stringify(target.dataInterface)} is not an interface name (1–15 of A-Z a-z 0-9 _ . -)`,
    );
  }
  for (const [field, subnet] of [
    ['dataSubnet', target.dataSubnet],
    ...target.keepReachable.map(({ subnet }, i) => [`keepReachable[${i}].subnet`, subnet]),
    ...(target.hostAddresses ?? []).map((address, i) => [`hostAddresses[${i}]`, `${address}/32`]),
  ] as const) {
    if (!parseCidr(subnet)) {
      throw new Error(
        `target ${target.label}: ${field} ${JSON.stringify(subnet)} is not an IPv4 subnet like 10.0.0.0/16`,
      );
    }
  }
}

/** The new address with the data subnet's prefix length, checked to lie inside it. */
function checkAddress(ipv4: string, dataSubnet: string): string {
  const [addressText = '', prefixText] = ipv4.split('/');
  const address = parseIpv4(addressText) ?? 0;
  const subnet = parseCidr(dataSubnet);
  if (!subnet) throw new Error(`dataSubnet ${dataSubnet} is not an IPv4 subnet`);
  const mask = prefixMask(subnet.prefix);
  const problems: NetworkConfigProblem[] = [];
  if (prefixText !== undefined && Number(prefixText) !== subnet.prefix) {
    problems.push({
      path: 'IPv4',
      message: `${ipv4} has prefix length /${prefixText}, but the data network is ${dataSubnet}; use /${subnet.prefix}`,
    });
  } else if ((address & mask) >>> 0 !== subnet.base) {
    problems.push({
      path: 'IPv4',
      message: `${ipv4} is outside the data network ${dataSubnet}; pick an address inside it`,
    });
  } else if (subnet.prefix < 31 && (address === subnet.base || address === (subnet.base | ~mask) >>> 0)) {
    problems.push({
      path: 'IPv4',
      message: `${ipv4} is the network or broadcast address of ${dataSubnet}; pick a host address`,
    });
  }
  if (problems.length > 0) throw new NetworkConfigError(problems);
  return `${addressText}/${subnet.prefix}`;
}

function normalizeCidr(text: string): string {
  const cidr = parseCidr(text);
  if (!cidr) throw new Error(`${JSON.stringify(text)} is not an IPv4 subnet`);
  return `${formatIpv4((cidr.base & prefixMask(cidr.prefix)) >>> 0)}/${cidr.prefix}`;
}

function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => (value >>> shift) & 0xff).join('.');
}

function microseconds(nanoseconds: number): number {
  return Math.round(nanoseconds / 1000);
}

function hex(value: number): string {
  return value.toString(16);
}

function hex0x(value: number): string {
  return `0x${value.toString(16)}`;
}

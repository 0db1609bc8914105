/**
 * A network configuration request (CONTRACT §3, the original's `network.Config`): what an instance
 * publishes on `network:<hostname>` and the network controller applies to it. Written once for both sides:
 * the SDKs encode it (snake_case keys on the wire, durations as integer nanoseconds like Go's
 * `time.Duration`), the controller parses and checks it. Dependency-free, because plans bundle it.
 */

/** Shaping of the traffic a link carries; 0 everywhere means a perfect link. */
export interface LinkShape {
  /** Delay added to each packet, in nanoseconds. */
  latency: number;
  /** Random variation of the delay (±), in nanoseconds. */
  jitter: number;
  /** Bits per second; 0 means unlimited. */
  bandwidth: number;
  /** Percent of packets dropped. */
  loss: number;
  /** Percent of packets corrupted, and the correlation with the previous packet (percent). */
  corrupt: number;
  corruptCorr: number;
  /** Percent of packets sent out of order, and its correlation (percent). */
  reorder: number;
  reorderCorr: number;
  /** Percent of packets sent twice, and its correlation (percent). */
  duplicate: number;
  duplicateCorr: number;
}

/** What happens to traffic toward a rule's subnet, besides its shape. */
export const linkFilters = { accept: 0, reject: 1, drop: 2 } as const;
export type LinkFilter = (typeof linkFilters)[keyof typeof linkFilters];

/** A shape (and a filter) for the traffic toward one subnet; overrides `default` for it. */
export interface LinkRule extends LinkShape {
  subnet: string;
  filter: LinkFilter;
}

/** `allow_all`: the instance may reach anything; `deny_all`: only the run's data network (the original's default). */
export type RoutingPolicy = 'allow_all' | 'deny_all';

export interface NetworkConfig {
  /** The network to configure; only `default`, the run's data network, exists. */
  network: string;
  /** false cuts the instance off the data network. */
  enable: boolean;
  /** The shape of all egress on the data network. */
  default: LinkShape;
  rules: LinkRule[];
  /** Signalled once for this instance when the configuration is in place. */
  callbackState: string;
  /** Instances the caller waits for on `callbackState`; 0: the run's instance count. */
  callbackTarget: number;
  routingPolicy: RoutingPolicy;
  /** A new address on the data network (CIDR, like `16.1.2.3/16`, or a bare address); empty: keep it. */
  ipv4: string;
  /** Shaping of the traffic coming in on the data network (ours; the original shaped egress only). */
  ingress?: LinkShape;
}

export const perfectLink: Readonly<LinkShape> = Object.freeze({
  latency: 0,
  jitter: 0,
  bandwidth: 0,
  loss: 0,
  corrupt: 0,
  corruptCorr: 0,
  reorder: 0,
  reorderCorr: 0,
  duplicate: 0,
  duplicateCorr: 0,
});

/** One thing wrong with a request, by the path of its key on the wire: `rules[1].filter`. */
export interface NetworkConfigProblem {
  path: string;
  message: string;
}

/** The request cannot be applied as written; `problems` names every key at fault. */
export class NetworkConfigError extends Error {
  readonly code: string = 'network_config_invalid';
  readonly problems: readonly NetworkConfigProblem[];

  constructor(problems: NetworkConfigProblem[]) {
    super(
      `network configuration refused (${problems.length} problem${problems.length === 1 ? '' : 's'}): ` +
        problems.map((problem) => `${problem.path}: ${problem.message}`).join('; '),
    );
    this.name = new.target.name;
    this.problems = problems;
  }
}

// Wire keys of a link shape; `bandwith` is how the official JS SDK (v0.1.2) spells it.
const shapeKeys: Record<string, keyof LinkShape> = {
  latency: 'latency',
  jitter: 'jitter',
  bandwidth: 'bandwidth',
  bandwith: 'bandwidth',
  loss: 'loss',
  corrupt: 'corrupt',
  corrupt_corr: 'corruptCorr',
  reorder: 'reorder',
  reorder_corr: 'reorderCorr',
  duplicate: 'duplicate',
  duplicate_corr: 'duplicateCorr',
};
const configKeys = [
  'network',
  'enable',
  'default',
  'rules',
  'callback_state',
  'callback_target',
  'routing_policy',
  'IPv4',
  'IPv6',
  'ingress',
];

/**
 * Reads a request as it came off the wire (the JSON an SDK published). Keys are snake_case as the Go and
 * JS SDKs send them; unknown keys, values of the wrong type and values out of range are refused, each named.
 * A missing or unknown `routing_policy` is `deny_all`, as in the original.
 *
 * @throws NetworkConfigError listing every problem.
 */
export function parseNetworkConfig(value: unknown): NetworkConfig {
  const problems: NetworkConfigProblem[] = [];
  const problem = (path: string, message: string): void => void problems.push({ path, message });
  if (!isRecord(value)) {
    throw new NetworkConfigError([{ path: '', message: `expected a JSON object, got ${describe(value)}` }]);
  }
  for (const key of Object.keys(value)) {
    if (!configKeys.includes(key)) problem(key, `unknown key; accepted keys: ${configKeys.join(', ')}`);
  }
  const network = value.network ?? 'default';
  if (network !== 'default') {
    problem('network', `${describe(network)} is not a network of this run; the data network is "default"`);
  }
  const enable = value.enable ?? true;
  if (typeof enable !== 'boolean') problem('enable', `expected true or false, got ${describe(enable)}`);
  const callbackState = value.callback_state;
  if (typeof callbackState !== 'string' || callbackState === '') {
    problem('callback_state', `expected the name of the state to signal, got ${describe(callbackState)}`);
  }
  const callbackTarget = value.callback_target ?? 0;
  if (!isWholeNumber(callbackTarget)) {
    problem('callback_target', `expected a whole number of instances, got ${describe(callbackTarget)}`);
  }
  const ipv4 = value.IPv4 ?? '';
  if (ipv4 !== '' && (typeof ipv4 !== 'string' || parseIpv4(ipv4.split('/')[0] ?? '') === undefined)) {
    problem('IPv4', `expected an IPv4 address, like "16.0.1.5/16", got ${describe(ipv4)}`);
  }
  const ipv6 = value.IPv6 ?? '';
  if (ipv6 !== '' && ipv6 !== null) problem('IPv6', 'IPv6 addresses are not supported on the data network');
  const rules: LinkRule[] = [];
  if (value.rules !== undefined && value.rules !== null) {
    if (!Array.isArray(value.rules)) {
      problem('rules', `expected a list of {subnet, …shape, filter}, got ${describe(value.rules)}`);
    } else {
      value.rules.forEach((rule, index) => {
        const parsed = parseRule(rule, `rules[${index}]`, problem);
        if (parsed) rules.push(parsed);
      });
    }
  }
  const config: NetworkConfig = {
    network: 'default',
    enable: enable === true,
    default: parseShape(value.default, 'default', problem),
    rules,
    callbackState: typeof callbackState === 'string' ? callbackState : '',
    callbackTarget: isWholeNumber(callbackTarget) ? callbackTarget : 0,
    routingPolicy: value.routing_policy === 'allow_all' ? 'allow_all' : 'deny_all',
    ipv4: typeof ipv4 === 'string' ? ipv4 : '',
    ...(value.ingress === undefined || value.ingress === null
      ? {}
      : { ingress: parseShape(value.ingress, 'ingress', problem) }),
  };
  if (problems.length > 0) throw new NetworkConfigError(problems);
  return config;
}

/** The wire form of a request, as both SDKs publish it (snake_case, nanoseconds, the original's keys). */
export function encodeNetworkConfig(config: NetworkConfig): Record<string, unknown> {
  return {
    network: config.network,
    enable: config.enable,
    default: encodeShape(config.default),
    rules: config.rules.map((rule) => ({ subnet: rule.subnet, filter: rule.filter, ...encodeShape(rule) })),
    callback_state: config.callbackState,
    callback_target: config.callbackTarget,
    routing_policy: config.routingPolicy,
    IPv4: config.ipv4,
    ...(config.ingress ? { ingress: encodeShape(config.ingress) } : {}),
  };
}

function encodeShape(shape: LinkShape): Record<string, number> {
  return {
    latency: shape.latency,
    jitter: shape.jitter,
    bandwidth: shape.bandwidth,
    loss: shape.loss,
    corrupt: shape.corrupt,
    corrupt_corr: shape.corruptCorr,
    reorder: shape.reorder,
    reorder_corr: shape.reorderCorr,
    duplicate: shape.duplicate,
    duplicate_corr: shape.duplicateCorr,
  };
}

function parseShape(
  value: unknown,
  path: string,
  problem: (path: string, message: string) => void,
  extraKeys: readonly string[] = [],
): LinkShape {
  const shape: LinkShape = { ...perfectLink };
  if (value === undefined || value === null) return shape;
  if (!isRecord(value)) {
    problem(path, `expected a link shape {latency, jitter, bandwidth, loss, …}, got ${describe(value)}`);
    return shape;
  }
  for (const [key, item] of Object.entries(value)) {
    if (extraKeys.includes(key)) continue;
    const field = shapeKeys[key];
    if (field === undefined) {
      problem(
        `${path}.${key}`,
        `unknown key; accepted keys: ${[...Object.keys(shapeKeys).filter((k) => k !== 'bandwith'), ...extraKeys].join(', ')}`,
      );
      continue;
    }
    if (item === undefined || item === null) continue;
    const at = `${path}.${key}`;
    if (field === 'latency' || field === 'jitter') {
      if (!isWholeNumber(item)) {
        problem(
          at,
          `expected whole nanoseconds (a Go time.Duration, like 50000000 for 50 ms), got ${describe(item)}`,
        );
        continue;
      }
    } else if (field === 'bandwidth') {
      if (!isWholeNumber(item)) {
        problem(at, `expected whole bits per second (0 for unlimited), got ${describe(item)}`);
        continue;
      }
    } else if (typeof item !== 'number' || !Number.isFinite(item) || item < 0 || item > 100) {
      problem(at, `expected a percentage from 0 to 100, got ${describe(item)}`);
      continue;
    }
    shape[field] = item as number;
  }
  return shape;
}

function parseRule(
  value: unknown,
  path: string,
  problem: (path: string, message: string) => void,
): LinkRule | undefined {
  if (!isRecord(value)) {
    problem(path, `expected {subnet, …shape, filter}, got ${describe(value)}`);
    return undefined;
  }
  const subnet = value.subnet;
  if (typeof subnet !== 'string' || parseCidr(subnet) === undefined) {
    problem(`${path}.subnet`, `expected an IPv4 subnet, like "16.0.0.0/24", got ${describe(subnet)}`);
  }
  const filter = value.filter ?? 0;
  if (filter !== 0 && filter !== 1 && filter !== 2) {
    problem(`${path}.filter`, `expected 0 (accept), 1 (reject) or 2 (drop), got ${describe(filter)}`);
  }
  const shape = parseShape(value, path, problem, ['subnet', 'filter']);
  return {
    ...shape,
    subnet: typeof subnet === 'string' ? subnet : '',
    filter: filter === 1 || filter === 2 ? filter : 0,
  };
}

/** `a.b.c.d` as a 32-bit number, or undefined. */
export function parseIpv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
    value = value * 256 + Number(part);
  }
  return value;
}

/** `a.b.c.d/n` as its base address and prefix length, or undefined. */
export function parseCidr(text: string): { base: number; prefix: number } | undefined {
  const [address, prefixText] = text.split('/');
  const base = parseIpv4(address ?? '');
  const prefix = Number(prefixText);
  if (base === undefined || !/^\d{1,2}$/.test(prefixText ?? '') || prefix > 32) return undefined;
  return { base, prefix };
}

function isWholeNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

/**
 * The network configuration as plans write it with our SDK: camelCase keys, every key optional, durations
 * and bandwidths with units (`latency: '50ms'`, `bandwidth: '10Mbit'`), filters by name. Converted to the
 * contract's {@link NetworkConfig} (nanoseconds, bits per second) and checked with the controller's own
 * rules, so a plan learns of a bad value where it wrote it, with the same message.
 */
import {
  encodeNetworkConfig,
  linkFilters,
  NetworkConfigError,
  parseNetworkConfig,
  perfectLink,
  type LinkFilter,
  type LinkRule,
  type LinkShape,
  type NetworkConfig,
  type NetworkConfigProblem,
  type RoutingPolicy,
} from '../core/contract/network-config.ts';
import {
  bandwidthHint,
  bandwidthToBitsPerSecond,
  durationHint,
  durationToMs,
} from '../core/contract/units.ts';

/** A duration: `'50ms'`, `'1.5s'` (Go's units), or whole nanoseconds (Go's `time.Duration`). */
export type DurationInput = string | number;
/** A bandwidth: `'10Mbit'`, `'512kbit'`, `'100Mbps'`, or whole bits per second; 0 is unlimited. */
export type BandwidthInput = string | number;

/** A link's shape; a missing key is a perfect link in that respect. Percentages go from 0 to 100. */
export interface LinkShapeInput {
  latency?: DurationInput;
  /** Random variation of the latency, ± this much. */
  jitter?: DurationInput;
  bandwidth?: BandwidthInput;
  loss?: number;
  corrupt?: number;
  corruptCorr?: number;
  reorder?: number;
  reorderCorr?: number;
  duplicate?: number;
  duplicateCorr?: number;
}

/** What happens to traffic toward a rule's subnet: `accept` (shape it), `reject` (refused at once), `drop` (silence). */
export type LinkFilterInput = keyof typeof linkFilters | LinkFilter;

/** The shape (and filter) of the traffic toward one subnet, instead of `default`. */
export interface LinkRuleInput extends LinkShapeInput {
  /** `10.192.16.5/32`, or a wider subnet. */
  subnet: string;
  /** Default `accept`. */
  filter?: LinkFilterInput;
}

/** A network configuration; everything is optional. */
export interface NetworkConfigInput {
  /** Only `default`, the run's data network, exists. */
  network?: string;
  /** false cuts the instance off the data network; default true. */
  enable?: boolean;
  /** The shape of all traffic the instance sends on the data network. */
  default?: LinkShapeInput;
  /** Shapes and filters for traffic toward some subnets, instead of `default`. */
  rules?: readonly LinkRuleInput[];
  /**
   * Signalled once for this instance when the configuration is in effect; {@link NetworkClient.configureNetwork}
   * waits until `callbackTarget` instances have been. Default `network-configured-<n>` for this instance's
   * n-th call, so instances that configure their network the same number of times meet each time.
   */
  callbackState?: string;
  /** How many instances to wait for; default (or 0) every instance of the run. */
  callbackTarget?: number;
  /**
   * `allow_all`: the instance may reach anything; `deny_all` (the default, as in the original): only the
   * run's data network (and the sync service, always).
   */
  routingPolicy?: RoutingPolicy;
  /** A new address on the data network: `10.192.16.200` or with its prefix. */
  ipv4?: string;
  /** Shaping of the traffic the instance receives on the data network (ours; the original shaped egress only). */
  ingress?: LinkShapeInput;
}

/**
 * The contract's configuration for `input`, with `callbackState` as given or `defaultCallbackState`.
 *
 * @throws NetworkConfigError naming every key at fault, as the network controller would.
 */
export function toNetworkConfig(input: NetworkConfigInput, defaultCallbackState: string): NetworkConfig {
  const problems: NetworkConfigProblem[] = [];
  const problem = (path: string, message: string): void => void problems.push({ path, message });
  const config: NetworkConfig = {
    network: input.network ?? 'default',
    enable: input.enable ?? true,
    default: toShape(input.default, 'default', problem),
    rules: (input.rules ?? []).map((rule, index) => toRule(rule, `rules[${index}]`, problem)),
    callbackState: input.callbackState ?? defaultCallbackState,
    callbackTarget: input.callbackTarget ?? 0,
    routingPolicy: input.routingPolicy ?? 'deny_all',
    ipv4: input.ipv4 ?? '',
    ...(input.ingress === undefined ? {} : { ingress: toShape(input.ingress, 'ingress', problem) }),
  };
  if (config.routingPolicy !== 'allow_all' && config.routingPolicy !== 'deny_all') {
    problem(
      'routingPolicy',
      `expected "allow_all" or "deny_all", got ${JSON.stringify(config.routingPolicy)}`,
    );
  }
  // Then the controller's own check (ranges, subnets, addresses; its messages name the wire's keys), so
  // every problem is reported at once. Values that did not convert are 0 there, which it accepts.
  let checked: NetworkConfig | undefined;
  try {
    checked = parseNetworkConfig(encodeNetworkConfig(config));
  } catch (error) {
    if (!(error instanceof NetworkConfigError)) throw error;
    problems.push(...error.problems);
  }
  if (problems.length > 0 || checked === undefined) throw new NetworkConfigError(problems);
  return checked;
}

function toShape(
  input: LinkShapeInput | undefined,
  path: string,
  problem: (path: string, message: string) => void,
): LinkShape {
  const shape: LinkShape = { ...perfectLink };
  if (input === undefined) return shape;
  if (input.latency !== undefined) shape.latency = toNanoseconds(input.latency, `${path}.latency`, problem);
  if (input.jitter !== undefined) shape.jitter = toNanoseconds(input.jitter, `${path}.jitter`, problem);
  if (input.bandwidth !== undefined) {
    const bits = bandwidthToBitsPerSecond(input.bandwidth);
    if (bits === undefined)
      problem(`${path}.bandwidth`, `${JSON.stringify(input.bandwidth)}: ${bandwidthHint}`);
    else shape.bandwidth = bits;
  }
  for (const key of [
    'loss',
    'corrupt',
    'corruptCorr',
    'reorder',
    'reorderCorr',
    'duplicate',
    'duplicateCorr',
  ] as const) {
    const value = input[key];
    if (value !== undefined) shape[key] = value;
  }
  return shape;
}

function toRule(
  input: LinkRuleInput,
  path: string,
  problem: (path: string, message: string) => void,
): LinkRule {
  const filter = input.filter ?? 'accept';
  let code: LinkFilter = linkFilters.accept;
  if (typeof filter === 'string' && Object.hasOwn(linkFilters, filter)) code = linkFilters[filter];
  else if (filter === 0 || filter === 1 || filter === 2) code = filter;
  else problem(`${path}.filter`, `expected "accept", "reject" or "drop", got ${JSON.stringify(filter)}`);
  return { ...toShape(input, path, problem), subnet: input.subnet, filter: code };
}

function toNanoseconds(
  value: DurationInput,
  path: string,
  problem: (path: string, message: string) => void,
): number {
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && value >= 0) return value;
    problem(path, `expected whole nanoseconds or a duration like "50ms", got ${value}`);
    return 0;
  }
  const ms = durationToMs(value);
  if (ms === undefined) {
    problem(path, `${JSON.stringify(value)} is not a duration; ${durationHint}`);
    return 0;
  }
  return Math.round(ms * 1e6);
}

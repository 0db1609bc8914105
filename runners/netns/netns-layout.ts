/**
 * The names and addresses of one run's network namespaces, worked out from the run id and the block of
 * addresses the run claimed. Pure: nothing here touches the host.
 *
 * Linux limits interface names to 15 characters, so every kernel object carries a short id of the run
 * (7 hex digits of a hash of the run id) rather than the run id itself, which may be as long as a
 * composition's run name makes it:
 *
 * | object | name |
 * |---|---|
 * | data bridge (the run's data network, `TEST_SUBNET`) | `tg<short>` |
 * | control bridge (the sync service) | `tg<short>c` |
 * | instance n's network namespace and hostname | `tg-<short>-<n>` |
 * | its data veth: host end, namespace end | `tg<short>d<n>`, `data0` |
 * | its control veth: host end, namespace end | `tg<short>c<n>`, `ctl0` |
 */
import { createHash } from 'node:crypto';
import { subnetCandidates, type SubnetPool } from '../local-docker/subnet-pool.ts';

/**
 * The addresses local:exec's namespaces take: one /19 per run, its first /20 the data subnet and its
 * second the control subnet. Next to Docker's pool (`10.192.0.0/12`, local:docker), never inside it.
 */
export const netnsBlockPool: SubnetPool = { cidr: '10.160.0.0/11', subnetPrefix: 19 };

/** The interfaces inside each instance's namespace. */
export const dataInterface = 'data0';
export const controlInterface = 'ctl0';

/** Where `ip netns add` mounts named namespaces. */
export const netnsDir = '/run/netns';

const shortIdLength = 7;
const halfPrefix = 20;
const halfSize = 2 ** (32 - halfPrefix);
/** Network address, gateway and broadcast address are not an instance's. */
export const maxNetnsInstances = halfSize - 3;

/** The short id a run's kernel objects are named by. */
export function netnsShortId(runId: string): string {
  return createHash('sha256').update(runId).digest('hex').slice(0, shortIdLength);
}

export interface NetnsInstanceLayout {
  /** 0-based, across the run's groups. */
  index: number;
  /** The `ip netns` name; also the instance's hostname. */
  netns: string;
  hostname: string;
  dataVeth: string;
  controlVeth: string;
  /** The instance's address on the data network, `10.160.0.2`. */
  dataAddress: string;
  controlAddress: string;
}

export interface NetnsLayout {
  runId: string;
  shortId: string;
  dataBridge: string;
  controlBridge: string;
  /** `TEST_SUBNET`: the network plans shape. */
  dataSubnet: string;
  /** The bridge's own address on the data network: the host, as instances see it there. */
  dataGateway: string;
  controlSubnet: string;
  /** The bridge's address on the control network, where the sync service listens. */
  controlGateway: string;
  instances: NetnsInstanceLayout[];
}

/** Every /19 of the pool once, starting where the run id's hash points. */
export function netnsBlockCandidates(runId: string): Generator<string> {
  return subnetCandidates(netnsBlockPool, runId);
}

/** The layout of a run of `instanceCount` instances in `block` (a /19 of {@link netnsBlockPool}). */
export function netnsLayout(runId: string, instanceCount: number, block: string): NetnsLayout {
  if (instanceCount > maxNetnsInstances) {
    throw new RangeError(
      `${instanceCount} instances do not fit in a /${halfPrefix} data subnet; run_config.network = "netns" takes at most ${maxNetnsInstances}`,
    );
  }
  const base = parseAddress(block.split('/')[0] ?? '');
  const shortId = netnsShortId(runId);
  const data = base;
  const control = base + halfSize;
  return {
    runId,
    shortId,
    dataBridge: `tg${shortId}`,
    controlBridge: `tg${shortId}c`,
    dataSubnet: `${formatAddress(data)}/${halfPrefix}`,
    dataGateway: formatAddress(data + 1),
    controlSubnet: `${formatAddress(control)}/${halfPrefix}`,
    controlGateway: formatAddress(control + 1),
    instances: Array.from({ length: instanceCount }, (_, index) => ({
      index,
      netns: `tg-${shortId}-${index}`,
      hostname: `tg-${shortId}-${index}`,
      dataVeth: `tg${shortId}d${index}`,
      controlVeth: `tg${shortId}c${index}`,
      dataAddress: formatAddress(data + 2 + index),
      controlAddress: formatAddress(control + 2 + index),
    })),
  };
}

export const netnsPrefixLength = halfPrefix;

/** The short id in the name of a link we create (`tg1a2b3c4`, `tg1a2b3c4c`, `tg1a2b3c4d17`), or undefined. */
export function shortIdOfLink(name: string): string | undefined {
  return /^tg([0-9a-f]{7})(?:c|c\d+|d\d+)?$/.exec(name)?.[1];
}

/** The short id in the name of a namespace we create (`tg-1a2b3c4-17`), or undefined. */
export function shortIdOfNetns(name: string): string | undefined {
  return /^tg-([0-9a-f]{7})-\d+$/.exec(name)?.[1];
}

/** The text that marks a data bridge as ours (`ip link set … alias`): which daemon, which run. */
export function bridgeAlias(daemonId: string, runId: string): string {
  // IFALIASZ is 256 bytes with the terminating NUL; the daemon id comes first so it always survives. The
  // run id is for people reading `ip link`: the short id in the names is what cleanup goes by, so run
  // names are reduced to characters `ip -batch` takes inside quotes.
  const safe = (text: string): string => text.replace(/[^A-Za-z0-9._:/=-]/g, '_');
  return `testground daemon=${safe(daemonId)} run=${safe(runId)}`.slice(0, 255);
}

/** The daemon and run a data bridge's alias names, or undefined when it is not ours. */
export function parseBridgeAlias(alias: string): { daemonId: string; runId: string } | undefined {
  const match = /^testground daemon=(\S+) run=(.*)$/.exec(alias);
  return match ? { daemonId: match[1]!, runId: match[2]! } : undefined;
}

/** Whether two IPv4 CIDRs share any address. */
export function cidrsOverlap(a: string, b: string): boolean {
  const [first, second] = [a, b].map((cidr) => {
    const [address, prefixText] = cidr.split('/');
    const prefix = prefixText === undefined ? 32 : Number(prefixText);
    const size = 2 ** (32 - prefix);
    const start = parseAddress(address ?? '');
    return { start: start - (start % size), end: start - (start % size) + size - 1 };
  });
  return first!.start <= second!.end && second!.start <= first!.end;
}

function parseAddress(text: string): number {
  const octets = text.split('.').map(Number);
  if (octets.length !== 4 || octets.some((octet) => !Number.isInteger(octet) || octet < 0 || octet > 255)) {
    throw new RangeError(`${JSON.stringify(text)} is not an IPv4 address`);
  }
  return octets.reduce((value, octet) => value * 256 + octet, 0);
}

function formatAddress(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

import { createHash } from 'node:crypto';
import { ValidationError } from '../../core/errors.ts';

/** An IPv4 CIDR split into equal subnets, each big enough for one run's instances. */
export interface SubnetPool {
  /** e.g. `10.192.0.0/12` */
  cidr: string;
  /** Length of each run's subnet, e.g. 20 for 4094 addresses. */
  subnetPrefix: number;
}

/** Where runs' data networks (TEST_SUBNET, the ones plans shape) come from. */
export const defaultSubnetPool: SubnetPool = { cidr: '10.192.0.0/12', subnetPrefix: 20 };

/**
 * Where runs' control networks (the sync service's) come from: a range of its own, so a plan's rules on
 * the data network (a subnet it drops, `deny_all`) can never match the control network by accident.
 */
export const defaultControlSubnetPool: SubnetPool = { cidr: '10.208.0.0/12', subnetPrefix: 20 };

/**
 * Every subnet of the pool once, starting at a place derived from `seed` (the run id), so concurrent
 * runs usually try different subnets first. The engine's IPAM is the authority on what is taken:
 * the runner tries candidates in this order until the engine accepts one, so two runs can never get
 * the same subnet, and leftovers of old runs are simply skipped.
 */
export function* subnetCandidates(pool: SubnetPool, seed: string): Generator<string> {
  const { base, prefix } = parseCidr(pool.cidr);
  if (pool.subnetPrefix < prefix || pool.subnetPrefix > 30) {
    throw new ValidationError(
      `subnet prefix /${pool.subnetPrefix} does not fit in pool ${pool.cidr}; use a length between ${prefix} and 30`,
    );
  }
  const count = 2 ** (pool.subnetPrefix - prefix);
  const size = 2 ** (32 - pool.subnetPrefix);
  const start = createHash('sha256').update(seed).digest().readUInt32BE(0) % count;
  for (let offset = 0; offset < count; offset += 1) {
    const index = (start + offset) % count;
    yield `${formatAddress(base + index * size)}/${pool.subnetPrefix}`;
  }
}

/** The first usable address of a subnet, which the engine's bridge takes as gateway. */
export function gatewayOf(cidr: string): string {
  return formatAddress(parseCidr(cidr).base + 1);
}

export function parseCidr(cidr: string): { base: number; prefix: number } {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  const octets = match ? match.slice(1, 5).map(Number) : [];
  const prefix = match ? Number(match[5]) : -1;
  if (!match || octets.some((octet) => octet > 255) || prefix < 8 || prefix > 30) {
    throw new ValidationError(
      `${JSON.stringify(cidr)} is not an IPv4 CIDR between /8 and /30, like "10.192.0.0/12"`,
    );
  }
  const address = octets.reduce((value, octet) => value * 256 + octet, 0);
  const size = 2 ** (32 - prefix);
  if (address % size !== 0) {
    throw new ValidationError(
      `${cidr} is not aligned: the network address of that /${prefix} is ${formatAddress(address - (address % size))}`,
    );
  }
  return { base: address, prefix };
}

function formatAddress(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

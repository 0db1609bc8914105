/**
 * This instance's address on the run's data network: the IPv4 address of one of its interfaces inside
 * `TEST_SUBNET`, as the official SDKs find it.
 */
import type { NetworkInterfaceInfo } from 'node:os';
import { parseCidr, parseIpv4 } from '../core/contract/network-config.ts';

/** The first IPv4 address of `interfaces` inside `subnet` (`10.192.16.0/20`), or undefined. */
export function findDataNetworkAddress(
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>,
  subnet: string,
): string | undefined {
  const range = parseCidr(subnet);
  if (range === undefined) return undefined;
  const size = 2 ** (32 - range.prefix);
  const base = range.base - (range.base % size);
  for (const addresses of Object.values(interfaces)) {
    for (const info of addresses ?? []) {
      if (info.family !== 'IPv4') continue;
      const address = parseIpv4(info.address);
      if (address !== undefined && address >= base && address < base + size) return info.address;
    }
  }
  return undefined;
}

/** Every IPv4 address of `interfaces`, for messages: `eth0 10.208.3.2, lo 127.0.0.1`. */
export function describeAddresses(interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>): string {
  const listed = Object.entries(interfaces).flatMap(([name, addresses]) =>
    (addresses ?? []).filter((info) => info.family === 'IPv4').map((info) => `${name} ${info.address}`),
  );
  return listed.length > 0 ? listed.join(', ') : 'none';
}

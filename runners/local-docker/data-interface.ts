/**
 * Which interface of a container is on the run's data network. The engine names interfaces in an order
 * of its own (not the order networks were connected in), so the answer is read from the container's own
 * routing table: `/proc/<pid>/net/route` is the route table of the network namespace `<pid>` is in, and
 * the data subnet's link route names the interface. Reading it needs no tool inside the container and no
 * `nsenter`, only the host's view of the pid (the daemon runs on the host, or with `pid: host`).
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { RunnerError } from '../../core/errors.ts';
import { parseCidr } from './subnet-pool.ts';

export interface RouteEntry {
  iface: string;
  /** Destination and mask as 32-bit numbers in network order (10.0.0.0 = 0x0a000000). */
  destination: number;
  mask: number;
}

/**
 * Parses the kernel's `/proc/net/route` text. Its addresses are 32-bit hex in the host's byte order
 * (`0000FA0A` is 10.250.0.0 on a little-endian host).
 */
export function parseRouteTable(text: string, endianness: 'LE' | 'BE' = os.endianness()): RouteEntry[] {
  const entries: RouteEntry[] = [];
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    const [iface, destination, , , , , , mask] = fields;
    if (iface === undefined || destination === undefined || mask === undefined) continue;
    if (!/^[0-9A-Fa-f]{8}$/.test(destination) || !/^[0-9A-Fa-f]{8}$/.test(mask)) continue;
    entries.push({
      iface,
      destination: toNetworkOrder(destination, endianness),
      mask: toNetworkOrder(mask, endianness),
    });
  }
  return entries;
}

function toNetworkOrder(hex: string, endianness: 'LE' | 'BE'): number {
  const bytes = Buffer.from(hex, 'hex');
  return endianness === 'LE' ? bytes.readUInt32LE(0) : bytes.readUInt32BE(0);
}

/** The interface whose link route is exactly `subnet` (`10.192.16.0/20`), or undefined. */
export function interfaceForSubnet(routes: readonly RouteEntry[], subnet: string): string | undefined {
  const { base, prefix } = parseCidr(subnet);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return routes.find((route) => route.destination === base && route.mask === mask)?.iface;
}

/** The data interface of the process `pid`'s network namespace, e.g. `eth1`. */
export async function findDataInterface(
  pid: number,
  dataSubnet: string,
  read: (file: string) => Promise<string> = (file) => readFile(file, 'utf8'),
): Promise<string> {
  if (!Number.isSafeInteger(pid) || pid <= 0) {
    throw new RunnerError(`the instance has no running process (pid ${pid}), so it has no network namespace`);
  }
  const file = `/proc/${pid}/net/route`;
  let text: string;
  try {
    text = await read(file);
  } catch (error) {
    throw new RunnerError(
      `cannot read ${file} (${(error as Error).message}); the daemon must see the host's processes (run it on the host, or with pid: host)`,
      [],
      { cause: error },
    );
  }
  const routes = parseRouteTable(text);
  const iface = interfaceForSubnet(routes, dataSubnet);
  if (iface === undefined) {
    const seen = [...new Set(routes.map((route) => route.iface))].join(', ') || 'none';
    throw new RunnerError(
      `no interface of process ${pid} has a route for the data subnet ${dataSubnet} (interfaces with routes: ${seen})`,
    );
  }
  return iface;
}

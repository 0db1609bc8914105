import type { ResolvedGroup } from '../../core/run.ts';
import type { TaskLog } from '../../core/task-log.ts';

export interface HostCapacity {
  cpus: number;
  memoryBytes: number;
}

/**
 * A group's resources as one host can give them: a CPU limit above the host's cores makes the engine refuse
 * to create the container (the run would wait for instances that never come), and a memory limit above
 * its RAM limits nothing. Each clamp is a warning naming the group, what it asked and what it gets; the
 * original's local:docker ignored resources altogether, so compositions written for it ask for anything.
 */
export function clampToHost(
  groups: readonly ResolvedGroup[],
  host: HostCapacity,
  log: TaskLog,
  runnerId: string,
): Map<string, ResolvedGroup['resources']> {
  const clamped = new Map<string, ResolvedGroup['resources']>();
  for (const group of groups) {
    const resources = { ...group.resources };
    if (resources.cpus !== undefined && host.cpus > 0 && resources.cpus > host.cpus) {
      log.warn(
        `${runnerId}: group ${group.id} asks for ${resources.cpus} CPUs (resources.cpu) but the host has ${host.cpus}; using ${host.cpus}`,
      );
      resources.cpus = host.cpus;
    }
    if (
      resources.memoryBytes !== undefined &&
      host.memoryBytes > 0 &&
      resources.memoryBytes > host.memoryBytes
    ) {
      log.warn(
        `${runnerId}: group ${group.id} asks for ${formatBytes(resources.memoryBytes)} of memory (resources.memory) but the host has ${formatBytes(host.memoryBytes)}; using ${formatBytes(host.memoryBytes)}`,
      );
      resources.memoryBytes = host.memoryBytes;
    }
    clamped.set(group.id, resources);
  }
  return clamped;
}

/** `512 MiB`, `23.5 GiB`, with the exact byte count when it is not a whole number of the unit. */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const shown = Number.isInteger(value) ? String(value) : value.toFixed(1);
  return Number.isInteger(value) || unit === 0
    ? `${shown} ${units[unit]}`
    : `${shown} ${units[unit]} (${bytes} bytes)`;
}

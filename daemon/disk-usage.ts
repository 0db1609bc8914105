import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';

export interface DiskUsage {
  /**
   * Bytes allocated on disk (as `du` counts them), each file's share divided by its link count: a file
   * linked from a snapshot, the content store and a cache entry counts a third in each, so the usage of
   * several trees adds up to what the disk really holds.
   */
  bytes: number;
  /** The newest modification time of anything in the tree (ms since the epoch); 0 when it is gone. */
  newestMtimeMs: number;
}

/** What `root` holds on disk; entries that vanish while it is measured count as nothing. */
export async function diskUsage(root: string): Promise<DiskUsage> {
  const usage: DiskUsage = { bytes: 0, newestMtimeMs: 0 };
  const visit = async (entry: string): Promise<void> => {
    const info = await lstat(entry).catch(() => undefined);
    if (!info) return;
    // A directory's link count is its subdirectories' `..`, not sharing: it counts whole.
    usage.bytes += (info.blocks * 512) / (info.isDirectory() ? 1 : Math.max(1, info.nlink));
    usage.newestMtimeMs = Math.max(usage.newestMtimeMs, info.mtimeMs);
    if (!info.isDirectory()) return;
    const names = await readdir(entry).catch(() => [] as string[]);
    for (const name of names) await visit(path.join(entry, name));
  };
  await visit(root);
  usage.bytes = Math.round(usage.bytes);
  return usage;
}

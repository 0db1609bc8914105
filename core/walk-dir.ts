/**
 * One directory walker for every place that turns a directory into a list (plan hashes, build contexts,
 * plan archives, outputs archives): depth-first, entries in code-unit order of their names (the same on
 * every machine, whatever the locale), directories before their contents, symlinks reported as such and
 * never followed.
 */
import type { Dirent } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';

export interface WalkEntry {
  /** Path relative to the root, `/`-separated: `src/index.ts`. */
  name: string;
  /** Absolute path on this host. */
  absolute: string;
  kind: 'file' | 'directory' | 'symlink';
}

/** Sockets, fifos and devices are left out: no caller can store them. */
function kindOf(dirent: Dirent): WalkEntry['kind'] | undefined {
  if (dirent.isSymbolicLink()) return 'symlink';
  if (dirent.isDirectory()) return 'directory';
  if (dirent.isFile()) return 'file';
  return undefined;
}

/**
 * Every file, directory and symlink under `root`. `skip` is asked about each entry; a skipped directory
 * is not entered.
 */
export async function walkDir(
  root: string,
  skip: (entry: WalkEntry) => boolean = () => false,
): Promise<WalkEntry[]> {
  const found: WalkEntry[] = [];
  const visit = async (relative: string): Promise<void> => {
    const dirents = await readdir(path.join(root, relative), { withFileTypes: true });
    dirents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const dirent of dirents) {
      const kind = kindOf(dirent);
      if (kind === undefined) continue;
      const name = relative === '' ? dirent.name : `${relative}/${dirent.name}`;
      const entry: WalkEntry = { name, absolute: path.join(root, name), kind };
      if (skip(entry)) continue;
      found.push(entry);
      if (kind === 'directory') await visit(name);
    }
  };
  await visit('');
  return found;
}

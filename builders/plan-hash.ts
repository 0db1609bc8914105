import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { walkDir } from '../core/walk-dir.ts';

const skippedDirectories = new Set(['node_modules', '.git', '.testground']);

/**
 * A digest of every file under `dir` (paths and bytes, in a fixed order) plus `extra`, so an artifact
 * is rebuilt exactly when something that goes into it changed.
 */
export async function hashDirectory(dir: string, extra: string[] = []): Promise<string> {
  const hash = createHash('sha256');
  for (const part of extra) hash.update(`extra\0${part}\0`);
  const entries = await walkDir(
    dir,
    (entry) => entry.kind === 'directory' && skippedDirectories.has(entry.name.split('/').pop() ?? ''),
  );
  for (const entry of entries) {
    if (entry.kind !== 'file') continue;
    hash.update(`file\0${entry.name}\0`);
    hash.update(await readFile(entry.absolute));
  }
  return hash.digest('hex');
}

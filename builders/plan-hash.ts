import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

const skippedDirectories = new Set(['node_modules', '.git', '.testground']);

/**
 * A digest of every file under `dir` (paths and bytes, in a fixed order) plus `extra`, so an artifact
 * is rebuilt exactly when something that goes into it changed.
 */
export async function hashDirectory(dir: string, extra: string[] = []): Promise<string> {
  const hash = createHash('sha256');
  for (const part of extra) hash.update(`extra\0${part}\0`);
  for (const file of await listFiles(dir)) {
    hash.update(`file\0${file}\0`);
    hash.update(await readFile(path.join(dir, file)));
  }
  return hash.digest('hex');
}

async function listFiles(root: string, relative = ''): Promise<string[]> {
  const entries = await readdir(path.join(root, relative), { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const files: string[] = [];
  for (const entry of entries) {
    const child = relative ? `${relative}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      if (!skippedDirectories.has(entry.name)) files.push(...(await listFiles(root, child)));
    } else if (entry.isFile()) {
      files.push(child);
    }
  }
  return files;
}

/** JSON with sorted keys, so equal configs hash equally whatever order their keys came in. */
export function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${stableStringify(item)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

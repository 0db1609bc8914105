import { createReadStream } from 'node:fs';
import { lstat, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pack as tarPack, type Pack } from 'tar-stream';
import { walkDir } from '../core/walk-dir.ts';

/** One entry of a build context tar. `name` is the path inside the context, `/`-separated, relative. */
export type ContextEntry =
  /** A file copied from `source` on the host (symlinks followed, so the entry holds the bytes). */
  | { type: 'file'; name: string; source: string; mode?: number }
  | { type: 'content'; name: string; content: string | Buffer; mode?: number }
  | { type: 'directory'; name: string; mode?: number }
  | { type: 'symlink'; name: string; target: string };

// Files in an image belong to root whatever their owner on the host; a fixed time keeps tars reproducible.
const fixedHeader = { uid: 0, gid: 0, mtime: new Date(0) } as const;

/**
 * Streams `entries` as a tar, the form the engine takes a build context in. Files are read while the tar
 * is consumed, so a large context (the node binary) is never held in memory; a file that cannot be read
 * fails the stream (and with it the build request) with the file's name.
 */
export function packContext(entries: readonly ContextEntry[]): Readable {
  const pack = tarPack();
  writeEntries(pack, entries).then(
    () => pack.finalize(),
    (error: unknown) => pack.destroy(error as Error),
  );
  // tar-stream's streams are streamx streams: they pipe like Node readables, which is all callers do.
  return pack as unknown as Readable;
}

async function writeEntries(pack: Pack, entries: readonly ContextEntry[]): Promise<void> {
  for (const entry of entries) {
    switch (entry.type) {
      case 'content':
        await addEntry(pack, { ...fixedHeader, name: entry.name, mode: entry.mode ?? 0o644 }, entry.content);
        break;
      case 'directory':
        await addEntry(pack, {
          ...fixedHeader,
          name: entry.name,
          type: 'directory',
          mode: entry.mode ?? 0o755,
        });
        break;
      case 'symlink':
        await addEntry(pack, { ...fixedHeader, name: entry.name, type: 'symlink', linkname: entry.target });
        break;
      case 'file':
        await addFile(pack, entry.name, entry.source, entry.mode);
        break;
    }
  }
}

function addEntry(
  pack: Pack,
  header: Parameters<Pack['entry']>[0],
  content?: string | Buffer,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (error?: Error | null): void => (error ? reject(error) : resolve());
    if (content === undefined) pack.entry(header, done);
    else pack.entry(header, content, done);
  });
}

async function addFile(pack: Pack, name: string, source: string, mode: number | undefined): Promise<void> {
  const info = await stat(source).catch((error: Error) => {
    throw new Error(`cannot add ${source} to the build context as ${name}: ${error.message}`, {
      cause: error,
    });
  });
  await new Promise<void>((resolve, reject) => {
    const entry = pack.entry(
      { ...fixedHeader, name, size: info.size, mode: mode ?? info.mode & 0o7777 },
      (error?: Error | null) => (error ? reject(error) : resolve()),
    );
    const input = createReadStream(source);
    input.once('error', (error) =>
      reject(new Error(`cannot read ${source} into the build context: ${error.message}`, { cause: error })),
    );
    input.pipe(entry as unknown as NodeJS.WritableStream);
  });
}

/**
 * Every file, directory and symlink under `dir` as context entries, in {@link walkDir}'s fixed order,
 * skipping any directory or file whose name is in `skip` (at any depth).
 */
export async function listContextDirectory(dir: string, skip: ReadonlySet<string>): Promise<ContextEntry[]> {
  const walked = await walkDir(dir, (entry) => skip.has(path.posix.basename(entry.name)));
  const entries: ContextEntry[] = [];
  for (const { name, absolute, kind } of walked) {
    if (kind === 'file') entries.push({ type: 'file', name, source: absolute });
    else if (kind === 'symlink') entries.push({ type: 'symlink', name, target: await readlink(absolute) });
    else entries.push({ type: 'directory', name, mode: (await lstat(absolute)).mode & 0o7777 });
  }
  return entries;
}

/**
 * Files kept once by content, so a build's copy of a plan costs no disk: each regular file of the copy is a
 * hard link to `<root>/<sha256>[x]` (`x`: executable), and a snapshot the daemon owns gives its own inode to
 * the store instead of being copied. A 400 MB file uploaded once is 400 MB on disk whether one snapshot and
 * three cache entries link to it or only the store does.
 *
 * Stored files are read-only (0444, or 0555 when executable): a build step or a plan that tried to write
 * one in place would change it for every copy, so it fails instead (for any uid but root: builds that run
 * as root can still write them, which is why the files a build rewrites are copied, not linked).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, copyFile, link, lstat, mkdir, readdir, rm, stat, symlink, readlink } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { walkDir } from '../core/walk-dir.ts';

const stagedGraceMs = 3_600_000;

export interface LinkTreeOptions {
  /** Entries (relative, `/`-separated) left out; a skipped directory is not entered. */
  skip?: (relative: string) => boolean;
  /** Files copied as ordinary writable files instead of linked (the ones a build rewrites). */
  copy?: (relative: string) => boolean;
  /**
   * The source is the daemon's own (a task snapshot): its files become the stored ones (a link, no copy).
   * Left false for a directory someone else owns, whose files must keep their modes.
   */
  adopt?: boolean;
}

/** A stored file no copy links to any more: only the store holds it. */
export interface UnreferencedContent {
  path: string;
  bytes: number;
}

export class ContentStore {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  /** Recreates `from` at `to` (which must not exist yet): directories made, files linked to their content. */
  async linkTree(from: string, to: string, options: LinkTreeOptions = {}): Promise<void> {
    await mkdir(to, { recursive: true });
    await mkdir(this.root, { recursive: true });
    const entries = await walkDir(from, (entry) => options.skip?.(entry.name) ?? false);
    for (const entry of entries) {
      const target = path.join(to, entry.name);
      if (entry.kind === 'directory') await mkdir(target, { recursive: true });
      else if (entry.kind === 'symlink') await symlink(await readlink(entry.absolute), target);
      else if (options.copy?.(entry.name)) await copyFile(entry.absolute, target);
      else await this.linkStored(entry.absolute, target, options.adopt ?? false);
    }
  }

  private async linkStored(file: string, target: string, adopt: boolean): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await link(await this.store(file, adopt), target);
        return;
      } catch (error) {
        // The collector removed the stored file between storing and linking (it had no other link
        // yet): store it again.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || attempt === 3) throw error;
      }
    }
  }

  /** The stored file holding `file`'s content, stored now when it was not. */
  private async store(file: string, adopt: boolean): Promise<string> {
    const info = await stat(file);
    const executable = (info.mode & 0o111) !== 0;
    const hash = createHash('sha256');
    await pipeline(createReadStream(file), hash);
    const stored = path.join(this.root, `${hash.digest('hex')}${executable ? 'x' : ''}`);
    const found = await lstat(stored).catch(() => undefined);
    if (found?.isFile()) return stored;
    // Made complete under a private name, then linked into place: a concurrent build storing the same
    // content finds either nothing or the whole file, and the loser of the race uses the winner's.
    const staged = `${stored}.tmp-${randomBytes(4).toString('hex')}`;
    try {
      if (adopt) await link(file, staged).catch(() => copyFile(file, staged));
      else await copyFile(file, staged);
      await chmod(staged, executable ? 0o555 : 0o444);
      await link(staged, stored).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error;
      });
    } finally {
      await rm(staged, { force: true });
    }
    return stored;
  }

  /** Stored files nothing links to any more (their link count is 1), with the bytes each holds. */
  async unreferenced(): Promise<UnreferencedContent[]> {
    const names = await readdir(this.root).catch(() => [] as string[]);
    const found: UnreferencedContent[] = [];
    for (const name of names) {
      const file = path.join(this.root, name);
      const info = await lstat(file).catch(() => undefined);
      if (!info?.isFile() || info.nlink !== 1) continue;
      // A staged file belongs to a build storing it right now; one a crash left behind goes after an hour.
      if (name.includes('.tmp-') && Date.now() - info.mtimeMs < stagedGraceMs) continue;
      found.push({ path: file, bytes: info.blocks * 512 });
    }
    return found;
  }
}

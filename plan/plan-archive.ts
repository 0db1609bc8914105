import { constants as fsConstants, createReadStream } from 'node:fs';
import { type FileHandle, lstat, mkdir, open, readdir, realpath, rm } from 'node:fs/promises';
import path from 'node:path';
import { createGunzip } from 'node:zlib';
import { extract as tarExtract, type Header } from 'tar-stream';
import { ArchiveError, TestgroundError, TooLargeError } from '../core/errors.ts';

/** Limits for one upload. */
export interface PlanArchiveLimits {
  /**
   * Bytes the archive may expand to: the gunzipped tar stream, which is the files' contents plus tar's
   * 512-byte headers and padding. Counting the stream rather than declared file sizes also stops archives
   * that expand into gigabytes of padding or zero blocks without declaring any file.
   */
  maxBytes: number;
  /** Entries (files and directories) the archive may hold. */
  maxEntries: number;
}

const gzipMagic = Buffer.from([0x1f, 0x8b]);
const fileMode = 0o644;
const executableMode = 0o755;
const directoryMode = 0o755;

/**
 * Extracts an untrusted plan archive (`.tar.gz`) into `destDir` and finds the plan in it.
 *
 * Only regular files and directories are accepted. Symbolic links and hard links are rejected outright,
 * whatever their target: a plan is source code and never needs them, and a link that is harmless when
 * extracted can still be followed later by a builder or a later entry writing "through" it. Files keep
 * only their executable bit (0755 or 0644); setuid/setgid/sticky bits and owners are dropped.
 *
 * `destDir` is created when missing and must otherwise be empty: on any failure everything extracted is
 * removed, and that is only safe when everything under `destDir` came from this archive.
 *
 * The plan is `destDir` itself when it holds `manifest.toml`, else the one top-level directory holding one
 * (archives made with `tar czf plan.tgz myplan/`).
 *
 * @throws ArchiveError when the file is not a gzip'd tar, an entry would land outside `destDir`, an entry
 *   is a link, device or fifo, or there is no `manifest.toml`; details name the offending entry.
 * @throws TooLargeError when the archive expands beyond `limits.maxBytes` or holds more than
 *   `limits.maxEntries` entries.
 */
export async function extractPlanArchive(
  archivePath: string,
  destDir: string,
  limits: PlanArchiveLimits,
): Promise<{ planDir: string }> {
  await assertGzip(archivePath);
  const shownRoot = path.resolve(destDir);
  const firstCreated = await mkdir(shownRoot, { recursive: true });
  if (firstCreated === undefined && (await readdir(shownRoot)).length > 0) {
    throw new Error(`cannot extract a plan archive into ${shownRoot}: the directory is not empty`);
  }
  // Containment checks compare real paths, so a symlink among destDir's ancestors cannot confuse them.
  const root = await realpath(shownRoot);
  try {
    await extractEntries(archivePath, root, limits);
    const planDir = await findPlanDir(root);
    return { planDir: planDir === '' ? shownRoot : path.join(shownRoot, planDir) };
  } catch (err) {
    if (firstCreated !== undefined) {
      await rm(firstCreated, { recursive: true, force: true });
    } else {
      for (const name of await readdir(root))
        await rm(path.join(root, name), { recursive: true, force: true });
    }
    throw err;
  }
}

async function assertGzip(archivePath: string): Promise<void> {
  const handle = await open(archivePath, 'r');
  try {
    const head = Buffer.alloc(2);
    const { bytesRead } = await handle.read(head, 0, 2, 0);
    if (bytesRead < 2 || !head.equals(gzipMagic)) {
      const message =
        'the plan archive is not gzip data; upload a .tar.gz (e.g. made with `tar czf plan.tgz -C myplan .`)';
      throw new ArchiveError(message, [{ path: 'archive', message }]);
    }
  } finally {
    await handle.close();
  }
}

/** State of one extraction; lives only as long as the call. */
interface Extraction {
  root: string;
  limits: PlanArchiveLimits;
  entries: number;
  declaredBytes: number;
  /** Directories (relative, "/"-joined) known to be real directories we created or checked. */
  directories: Set<string>;
}

async function extractEntries(archivePath: string, root: string, limits: PlanArchiveLimits): Promise<void> {
  const source = createReadStream(archivePath);
  const gunzip = createGunzip();
  const extractor = tarExtract();
  // The first failure of the byte pipeline wins; tar-stream then only reports that it was destroyed.
  let pipelineFailure: Error | undefined;
  const fail = (err: Error): void => {
    pipelineFailure ??= err;
    extractor.destroy(err);
    gunzip.destroy();
    source.destroy();
  };
  let expandedBytes = 0;
  source.on('error', fail);
  gunzip.on('error', (err) => {
    const message = `the plan archive is not valid gzip data (${err.message}); upload a .tar.gz`;
    fail(new ArchiveError(message, [{ path: 'archive', message }]));
  });
  gunzip.on('data', (chunk: Buffer) => {
    expandedBytes += chunk.length;
    if (expandedBytes > limits.maxBytes) {
      const message =
        `the plan archive expands to more than ${limits.maxBytes} bytes, the limit; ` +
        'leave build outputs and data sets out of the plan (list them in .testgroundignore)';
      fail(new TooLargeError(message, [{ path: 'archive', message }]));
      return;
    }
    // Backpressure: gunzip waits while tar-stream has not consumed what it was given.
    if (!extractor.write(chunk)) gunzip.pause();
  });
  extractor.on('drain', () => gunzip.resume());
  // streamx types `end` with a required argument; null means "no final chunk".
  gunzip.on('end', () => extractor.end(null));
  source.pipe(gunzip);

  const state: Extraction = { root, limits, entries: 0, declaredBytes: 0, directories: new Set(['']) };
  const iterator = extractor[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: Awaited<ReturnType<typeof iterator.next>>;
      try {
        next = await iterator.next();
      } catch (err) {
        throw pipelineFailure ?? notATar(err);
      }
      if (next.done === true) break;
      try {
        await extractEntry(next.value, state);
      } catch (err) {
        // Reading an entry fails when the pipeline broke underneath it; report the cause, not the symptom.
        throw pipelineFailure ?? err;
      }
    }
    if (pipelineFailure !== undefined) throw pipelineFailure;
  } finally {
    extractor.destroy();
    gunzip.destroy();
    source.destroy();
  }
}

function notATar(err: unknown): Error {
  if (err instanceof TestgroundError) return err;
  const reason = err instanceof Error ? err.message : String(err);
  const message = `the plan archive is gzip'd but not a valid tar file (${reason}); upload a .tar.gz`;
  return new ArchiveError(message, [{ path: 'archive', message }]);
}

// NAME_MAX of Linux file systems, and a whole path well inside PATH_MAX (4096) with the home in front.
const maxSegmentBytes = 255;
const maxEntryNameBytes = 1024;

type EntryStream = AsyncIterable<unknown> & { header: Header; resume(): unknown };

async function extractEntry(entry: EntryStream, state: Extraction): Promise<void> {
  const { header } = entry;
  const name = header.name;
  const reject = (reason: string): never => {
    throw new ArchiveError(`plan archive entry ${shownName(name)} ${reason}`, [
      { path: name.length <= 200 ? name : `${name.slice(0, 200)}…`, message: reason },
    ]);
  };

  state.entries += 1;
  if (state.entries > state.limits.maxEntries) {
    const message = `the plan archive holds more than ${state.limits.maxEntries} entries, the limit`;
    throw new TooLargeError(message, [{ path: name, message }]);
  }

  const segments = entrySegments(name, reject);
  const relative = segments.join('/');
  const target = path.resolve(state.root, ...segments);
  // Belt and braces: entrySegments already excludes "..", absolute paths and drive letters.
  if (target !== state.root && !target.startsWith(state.root + path.sep))
    reject('resolves outside the plan directory');

  switch (header.type) {
    case 'directory':
      await ensureDirectory(segments, state, reject);
      entry.resume();
      return;
    case 'file':
    case 'contiguous-file': {
      if (segments.length === 0) reject('is a file named like the archive root');
      state.declaredBytes += header.size;
      if (state.declaredBytes > state.limits.maxBytes) {
        const message = `the plan archive's files add up to more than ${state.limits.maxBytes} bytes, the limit`;
        throw new TooLargeError(message, [{ path: name, message }]);
      }
      await ensureDirectory(segments.slice(0, -1), state, reject);
      await writeFile(entry, target, header, relative, reject);
      return;
    }
    case 'symlink':
      return reject(
        `is a symbolic link (to ${JSON.stringify(header.linkname)}); plan archives may hold only regular files and directories`,
      );
    case 'link':
      return reject(
        `is a hard link (to ${JSON.stringify(header.linkname)}); plan archives may hold only regular files and directories`,
      );
    default:
      return reject(`is a ${String(header.type)}; plan archives may hold only regular files and directories`);
  }
}

/** Splits an entry name into safe path segments, rejecting anything that could leave the root. */
function entrySegments(name: string, reject: (reason: string) => never): string[] {
  if (name.includes('\0')) reject('holds a NUL byte');
  // Past these the file system refuses (ENAMETOOLONG) once the daemon's home is in front of the name.
  if (Buffer.byteLength(name) > maxEntryNameBytes)
    reject(
      `is ${Buffer.byteLength(name)} bytes long; archive paths may be at most ${maxEntryNameBytes} bytes`,
    );
  // Backslashes are separators on Windows and would let "..\\x" slip past a "/"-based check.
  if (name.includes('\\')) reject('holds a backslash; archive paths use "/"');
  if (name.startsWith('/')) reject('is an absolute path; archive paths must be relative to the plan');
  if (/^[A-Za-z]:/.test(name))
    reject('starts with a drive letter; archive paths must be relative to the plan');
  const segments = name.split('/').filter((segment) => segment !== '' && segment !== '.');
  if (segments.includes('..')) reject('holds a ".." segment; archive paths must stay inside the plan');
  const long = segments.find((segment) => Buffer.byteLength(segment) > maxSegmentBytes);
  if (long !== undefined)
    reject(
      `has a ${Buffer.byteLength(long)}-byte file or directory name; names may be at most ${maxSegmentBytes} bytes`,
    );
  return segments;
}

/** An entry name as messages show it: quoted, and cut short when it is long. */
function shownName(name: string): string {
  return name.length <= 200
    ? JSON.stringify(name)
    : `${JSON.stringify(name.slice(0, 200))}… (${name.length} characters)`;
}

/**
 * Creates each missing directory of `segments` one level at a time, checking that every existing level is
 * a real directory (not a file and never a symlink), so no write can be redirected outside the root.
 */
async function ensureDirectory(
  segments: string[],
  state: Extraction,
  reject: (reason: string) => never,
): Promise<void> {
  for (let depth = 1; depth <= segments.length; depth += 1) {
    const relative = segments.slice(0, depth).join('/');
    if (state.directories.has(relative)) continue;
    const absolute = path.join(state.root, ...segments.slice(0, depth));
    try {
      const stats = await lstat(absolute);
      if (!stats.isDirectory())
        reject(`needs ${JSON.stringify(relative)} to be a directory, but an earlier entry made it a file`);
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
      await mkdir(absolute, { mode: directoryMode });
    }
    state.directories.add(relative);
  }
}

async function writeFile(
  entry: EntryStream,
  target: string,
  header: Header,
  relative: string,
  reject: (reason: string) => never,
): Promise<void> {
  const mode = (header.mode & 0o111) !== 0 ? executableMode : fileMode;
  let handle: FileHandle;
  try {
    // O_EXCL: a second entry with the same path is rejected instead of overwriting the first;
    // O_NOFOLLOW: never write through a symlink, even one raced in by someone else.
    const flags = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;
    handle = await open(target, flags, mode);
  } catch (err) {
    if (isErrno(err, 'EEXIST'))
      return reject(`appears twice in the archive (${JSON.stringify(relative)} already exists)`);
    if (isErrno(err, 'ELOOP')) return reject('would be written through a symbolic link');
    if (isErrno(err, 'ENAMETOOLONG')) return reject('has a path too long for this file system');
    throw err;
  }
  try {
    for await (const chunk of entry) {
      const bytes = chunk as Buffer;
      let offset = 0;
      while (offset < bytes.length) {
        const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset);
        offset += bytesWritten;
      }
    }
    // The umask may have stripped bits from the open() mode; set exactly what we promise.
    await handle.chmod(mode);
  } finally {
    await handle.close();
  }
}

/** The plan directory relative to the root: "" for the root itself, or one top-level directory. */
async function findPlanDir(root: string): Promise<string> {
  if (await isRegularFile(path.join(root, 'manifest.toml'))) return '';
  const candidates: string[] = [];
  for (const dirent of await readdir(root, { withFileTypes: true })) {
    if (dirent.isDirectory() && (await isRegularFile(path.join(root, dirent.name, 'manifest.toml')))) {
      candidates.push(dirent.name);
    }
  }
  candidates.sort();
  const [only] = candidates;
  if (only !== undefined && candidates.length === 1) return only;
  const message =
    candidates.length === 0
      ? 'archive holds no manifest.toml at its root; put manifest.toml at the top of the archive or in its single top-level directory'
      : `archive holds several plans (${candidates.join(', ')}); upload one plan per archive`;
  throw new ArchiveError(message, [{ path: 'archive', message }]);
}

async function isRegularFile(file: string): Promise<boolean> {
  try {
    return (await lstat(file)).isFile();
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return false;
    throw err;
  }
}

function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === code;
}

import { lstat, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { pack as tarPack } from 'tar-stream';
import { TooLargeError } from '../core/errors.ts';
import { walkDir } from '../core/walk-dir.ts';

/** The daemon's default upload limit; packing refuses earlier with a better hint. */
export const defaultMaxPlanBytes = 64 * 1024 * 1024;

/** Never useful to a build and often huge; skipped at any depth, whatever `.testgroundignore` says. */
const alwaysIgnored: readonly string[] = Object.freeze(['node_modules', '.git', '.testground']);

/** Fixed metadata so packing the same tree twice gives the same bytes (and the same build cache key). */
const epoch = new Date(0);

const gzipAsync = promisify(gzip);

interface IgnoreRule {
  pattern: RegExp;
  negate: boolean;
  directoryOnly: boolean;
}

interface PlanEntry {
  name: string;
  absolute: string;
  type: 'file' | 'directory';
  size: number;
  mode: number;
}

/**
 * Packs a plan directory into `.tar.gz` bytes for upload, entry paths relative to `dir` (no leading `./`),
 * in a deterministic order (depth first, names sorted) with fixed timestamps and owners.
 *
 * - Only regular files and directories are packed. Symbolic links are skipped, not followed: following
 *   them could pull in files from outside the plan, and the daemon rejects archives holding links anyway.
 *   Sockets, fifos and devices are skipped too.
 * - `node_modules`, `.git` and `.testground` are always skipped, at any depth.
 * - `.testgroundignore` in `dir` is read like a `.gitignore`: blank lines and `#` comments are ignored;
 *   `*`, `?`, `[abc]` and `**` globs; a trailing `/` matches directories only; a leading or inner `/`
 *   anchors the pattern to the plan root, otherwise it matches a name at any depth; `!pattern` re-includes
 *   (last match wins), except inside an ignored directory, which is not descended into (as in git).
 *   `manifest.toml` at the root is always packed.
 * - File modes are reduced to 0755 (any executable bit) or 0644.
 *
 * @throws Error when `dir` holds no `manifest.toml`.
 * @throws TooLargeError when the tar stream (files plus tar headers, i.e. what the daemon counts when it
 *   extracts) would exceed `options.maxBytes` (default 64 MiB).
 */
export async function packPlanDirectory(dir: string, options: { maxBytes?: number } = {}): Promise<Buffer> {
  const root = path.resolve(dir);
  const maxBytes = options.maxBytes ?? defaultMaxPlanBytes;
  const manifest = await lstat(path.join(root, 'manifest.toml')).catch(() => undefined);
  if (manifest === undefined || !manifest.isFile()) {
    throw new Error(`${root} has no manifest.toml; a plan directory needs one at its root`);
  }

  const rules = compileIgnoreRules(await readIgnoreFile(root));
  const entries = await collectEntries(root, rules);

  // Cheap early refusal before reading any file: contents alone already exceed the limit.
  const contentBytes = entries.reduce((sum, entry) => sum + entry.size, 0);
  if (contentBytes > maxBytes) throw tooLarge(root, maxBytes, entries);

  const tar = await packEntries(entries);
  if (tar.length > maxBytes) throw tooLarge(root, maxBytes, entries);
  return gzipAsync(tar);
}

async function readIgnoreFile(root: string): Promise<string> {
  try {
    return await readFile(path.join(root, '.testgroundignore'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

async function collectEntries(root: string, rules: readonly IgnoreRule[]): Promise<PlanEntry[]> {
  const walked = await walkDir(root, (entry) => {
    // Links are skipped, not followed: following them could pull in files from outside the plan.
    if (entry.kind === 'symlink' || alwaysIgnored.includes(path.posix.basename(entry.name))) return true;
    if (entry.kind === 'directory') return isIgnored(rules, entry.name, true);
    return entry.name !== 'manifest.toml' && isIgnored(rules, entry.name, false);
  });
  const entries: PlanEntry[] = [];
  for (const entry of walked) {
    if (entry.kind === 'directory') {
      entries.push({ name: entry.name, absolute: entry.absolute, type: 'directory', size: 0, mode: 0o755 });
    } else {
      const stats = await lstat(entry.absolute);
      const mode = (stats.mode & 0o111) !== 0 ? 0o755 : 0o644;
      entries.push({ name: entry.name, absolute: entry.absolute, type: 'file', size: stats.size, mode });
    }
  }
  return entries;
}

async function packEntries(entries: readonly PlanEntry[]): Promise<Buffer> {
  const packer = tarPack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of packer) chunks.push(chunk as Buffer);
  })();
  const owner = { uid: 0, gid: 0, uname: '', gname: '', mtime: epoch };
  for (const entry of entries) {
    if (entry.type === 'directory') {
      packer.entry({ ...owner, name: `${entry.name}/`, type: 'directory', mode: entry.mode });
    } else {
      // Read now rather than trust the earlier size: the file may have changed since the walk.
      const content = await readFile(entry.absolute);
      packer.entry(
        { ...owner, name: entry.name, type: 'file', mode: entry.mode, size: content.length },
        content,
      );
    }
  }
  packer.finalize();
  await collected;
  return Buffer.concat(chunks);
}

function tooLarge(root: string, maxBytes: number, entries: readonly PlanEntry[]): TooLargeError {
  const largest = entries
    .filter((entry) => entry.type === 'file')
    .sort((a, b) => b.size - a.size)
    .slice(0, 3)
    .map((entry) => `${entry.name} (${entry.size} bytes)`)
    .join(', ');
  const message =
    `plan directory ${root} packs to more than ${maxBytes} bytes, the limit; largest files: ${largest}; ` +
    'list files the plan does not need in .testgroundignore';
  return new TooLargeError(message, [{ path: root, message }]);
}

/** Compiles `.testgroundignore` text into rules; see packPlanDirectory for the supported syntax. */
function compileIgnoreRules(text: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  for (const rawLine of text.split(/\r?\n/)) {
    let line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const negate = line.startsWith('!');
    if (negate) line = line.slice(1);
    // "\#foo" and "\!foo" name files that really start with those characters.
    if (line.startsWith('\\#') || line.startsWith('\\!')) line = line.slice(1);
    const directoryOnly = line.endsWith('/');
    if (directoryOnly) line = line.replace(/\/+$/, '');
    // A slash at the start or in the middle anchors the pattern at the plan root, as in gitignore.
    const anchored = line.includes('/');
    line = line.replace(/^\/+/, '');
    if (line === '') continue;
    const body = globToRegExpSource(line);
    rules.push({ pattern: new RegExp(anchored ? `^${body}$` : `^(?:.*/)?${body}$`), negate, directoryOnly });
  }
  return rules;
}

function isIgnored(rules: readonly IgnoreRule[], name: string, isDirectory: boolean): boolean {
  let ignored = false;
  for (const rule of rules) {
    if (rule.directoryOnly && !isDirectory) continue;
    if (rule.pattern.test(name)) ignored = !rule.negate;
  }
  return ignored;
}

function globToRegExpSource(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i += 1) {
    const ch = glob.charAt(i);
    if (ch === '*') {
      if (glob.charAt(i + 1) === '*') {
        const atSegmentStart = i === 0 || glob.charAt(i - 1) === '/';
        const next = glob.charAt(i + 2);
        if (atSegmentStart && next === '/') {
          out += '(?:.*/)?'; // "**/" spans zero or more directories
          i += 2;
          continue;
        }
        if (atSegmentStart && next === '') {
          out += '.*'; // trailing "/**" matches everything inside
          i += 1;
          continue;
        }
        i += 1; // any other "**" is an ordinary "*"
      }
      out += '[^/]*';
    } else if (ch === '?') {
      out += '[^/]';
    } else if (ch === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close === -1) {
        out += '\\[';
        continue;
      }
      let set = glob.slice(i + 1, close);
      const negated = set.startsWith('!') || set.startsWith('^');
      if (negated) set = set.slice(1);
      out += `[${negated ? '^/' : ''}${set.replace(/[\\\]^]/g, '\\$&')}]`;
      i = close;
    } else if (ch === '\\' && i + 1 < glob.length) {
      i += 1;
      out += escapeRegExp(glob.charAt(i));
    } else {
      out += escapeRegExp(ch);
    }
  }
  return out;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

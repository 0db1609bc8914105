import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { type Header, pack as tarPack } from 'tar-stream';
import { ArchiveError, TooLargeError } from '../../core/errors.ts';
import { extractPlanArchive } from '../../plan/plan-archive.ts';

type Entry = Partial<Header> & { name: string; body?: string | Buffer };

const LIMITS = { maxBytes: 1024 * 1024, maxEntries: 100 };
const MANIFEST = 'name = "p"\n';

/** A tar stream made entry by entry, so tests can write what no honest packer would. */
async function tarOf(entries: Entry[]): Promise<Buffer> {
  const packer = tarPack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of packer) chunks.push(chunk as Buffer);
  })();
  for (const { body, ...header } of entries) packer.entry(header, body ?? '');
  packer.finalize();
  await done;
  return Buffer.concat(chunks);
}

describe('extractPlanArchive', () => {
  let work: string;
  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'tg-plan-archive-'));
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  /**
   * A fresh case directory: `in/plan.tgz` holds the archive, `out/dest` is where it goes, and
   * `out/sentinel` sits next to it so escapes into the parent can be seen.
   */
  async function setUp(archive: Buffer): Promise<{ archivePath: string; dest: string; out: string }> {
    const dir = path.join(work, randomBytes(4).toString('hex'));
    await mkdir(path.join(dir, 'in'), { recursive: true });
    await mkdir(path.join(dir, 'out'));
    await writeFile(path.join(dir, 'out', 'sentinel'), 'untouched');
    const archivePath = path.join(dir, 'in', 'plan.tgz');
    await writeFile(archivePath, archive);
    return { archivePath, dest: path.join(dir, 'out', 'dest'), out: path.join(dir, 'out') };
  }

  /** Extraction must fail, leave nothing behind and write nothing next to destDir. */
  async function assertRejected(
    entries: Entry[] | Buffer,
    expected: typeof ArchiveError | typeof TooLargeError,
    pattern: RegExp,
    limits = LIMITS,
  ): Promise<InstanceType<typeof ArchiveError | typeof TooLargeError>> {
    const archive = Buffer.isBuffer(entries) ? entries : gzipSync(await tarOf(entries));
    const { archivePath, dest, out } = await setUp(archive);
    let caught: unknown;
    try {
      await extractPlanArchive(archivePath, dest, limits);
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof expected, `expected ${expected.name}, got ${String(caught)}`);
    assert.match(caught.message, pattern);
    assert.deepEqual(await readdir(out), ['sentinel'], 'destDir is removed and nothing lands beside it');
    assert.equal(await readFile(path.join(out, 'sentinel'), 'utf8'), 'untouched');
    return caught;
  }

  it('extracts a plan at the archive root, keeping only the executable bit', async () => {
    const archive = gzipSync(
      await tarOf([
        { name: 'manifest.toml', body: MANIFEST },
        { name: 'src/', type: 'directory' },
        { name: 'src/index.ts', body: 'export {};\n', mode: 0o666 },
        { name: 'run.sh', body: '#!/bin/sh\n', mode: 0o4777 },
      ]),
    );
    const { archivePath, dest } = await setUp(archive);
    const { planDir } = await extractPlanArchive(archivePath, dest, LIMITS);
    assert.equal(planDir, dest);
    assert.equal(await readFile(path.join(dest, 'manifest.toml'), 'utf8'), MANIFEST);
    assert.equal(await readFile(path.join(dest, 'src', 'index.ts'), 'utf8'), 'export {};\n');
    assert.equal((await stat(path.join(dest, 'run.sh'))).mode & 0o7777, 0o755);
    assert.equal((await stat(path.join(dest, 'src', 'index.ts'))).mode & 0o7777, 0o644);
  });

  it('finds a plan inside a single top-level directory, as made by the tar command', async () => {
    const source = path.join(work, 'tar-source');
    await mkdir(path.join(source, 'myplan', 'lib'), { recursive: true });
    await writeFile(path.join(source, 'myplan', 'manifest.toml'), MANIFEST);
    await writeFile(path.join(source, 'myplan', 'lib', 'a.ts'), 'a');
    const archive = execFileSync('tar', ['czf', '-', '-C', source, 'myplan']);
    const { archivePath, dest } = await setUp(archive);
    const { planDir } = await extractPlanArchive(archivePath, dest, LIMITS);
    assert.equal(planDir, path.join(dest, 'myplan'));
    assert.equal(await readFile(path.join(planDir, 'lib', 'a.ts'), 'utf8'), 'a');
  });

  it('accepts "./"-prefixed entries from `tar czf - -C dir .`', async () => {
    const source = path.join(work, 'tar-dot');
    await mkdir(source, { recursive: true });
    await writeFile(path.join(source, 'manifest.toml'), MANIFEST);
    const { archivePath, dest } = await setUp(execFileSync('tar', ['czf', '-', '-C', source, '.']));
    assert.equal((await extractPlanArchive(archivePath, dest, LIMITS)).planDir, dest);
  });

  it('rejects ".." entries, naming the entry', async () => {
    const err = await assertRejected(
      [
        { name: 'manifest.toml', body: MANIFEST },
        { name: '../evil', body: 'x' },
      ],
      ArchiveError,
      /entry "\.\.\/evil" holds a "\.\." segment/,
    );
    assert.deepEqual(
      err.details.map((d) => d.path),
      ['../evil'],
    );
    await assertRejected([{ name: 'a/../../evil', body: 'x' }], ArchiveError, /holds a "\.\." segment/);
  });

  it('rejects absolute paths, drive letters and backslashes', async () => {
    const absolute = path.join(work, 'absolute-evil');
    await assertRejected([{ name: absolute, body: 'x' }], ArchiveError, /is an absolute path/);
    assert.equal(existsSync(absolute), false);
    await assertRejected([{ name: 'C:/evil', body: 'x' }], ArchiveError, /starts with a drive letter/);
    await assertRejected([{ name: '..\\evil', body: 'x' }], ArchiveError, /holds a backslash/);
  });

  it('rejects symlinks, inside or outside the root, before anything is written through them', async () => {
    await assertRejected(
      [
        { name: 'manifest.toml', body: MANIFEST },
        { name: 'escape', type: 'symlink', linkname: '..' },
        { name: 'escape/evil', body: 'x' },
      ],
      ArchiveError,
      /entry "escape" is a symbolic link \(to "\.\."\); plan archives may hold only regular files and directories/,
    );
    await assertRejected(
      [
        { name: 'manifest.toml', body: MANIFEST },
        { name: 'alias.toml', type: 'symlink', linkname: 'manifest.toml' },
      ],
      ArchiveError,
      /is a symbolic link/,
    );
  });

  it('rejects hard links', async () => {
    await assertRejected(
      [
        { name: 'manifest.toml', body: MANIFEST },
        { name: 'passwd', type: 'link', linkname: '/etc/passwd' },
      ],
      ArchiveError,
      /entry "passwd" is a hard link \(to "\/etc\/passwd"\)/,
    );
  });

  it('rejects devices and fifos', async () => {
    await assertRejected(
      [{ name: 'tty', type: 'character-device', devmajor: 5, devminor: 0 }],
      ArchiveError,
      /is a character-device/,
    );
    await assertRejected([{ name: 'pipe', type: 'fifo' }], ArchiveError, /is a fifo/);
  });

  it('rejects data that is not gzip, and gzip that is not tar', async () => {
    await assertRejected(
      await tarOf([{ name: 'manifest.toml', body: MANIFEST }]),
      ArchiveError,
      /is not gzip data/,
    );
    await assertRejected(Buffer.alloc(0), ArchiveError, /is not gzip data/);
    await assertRejected(gzipSync(randomBytes(4096)), ArchiveError, /gzip'd but not a valid tar file/);
    await assertRejected(gzipSync('hello'), ArchiveError, /gzip'd but not a valid tar file/);
    const whole = gzipSync(await tarOf([{ name: 'manifest.toml', body: MANIFEST }]));
    await assertRejected(whole.subarray(0, whole.length - 12), ArchiveError, /not valid gzip data/);
  });

  it('rejects more entries than the limit with TooLargeError', async () => {
    const entries = Array.from({ length: 11 }, (_, i) => ({ name: `f${i}`, body: 'x' }));
    await assertRejected(entries, TooLargeError, /holds more than 10 entries/, {
      maxBytes: LIMITS.maxBytes,
      maxEntries: 10,
    });
  });

  it('stops a zip bomb of zeros, declared as a file or as bare padding', async () => {
    const zeros = Buffer.alloc(16 * 1024 * 1024);
    const asFile = gzipSync(
      await tarOf([
        { name: 'manifest.toml', body: MANIFEST },
        { name: 'big', body: zeros },
      ]),
    );
    assert.ok(asFile.length < 200_000, 'the bomb is small when compressed');
    // The declared size is refused at the header, before any of it is written.
    const declared = await assertRejected(asFile, TooLargeError, /files add up to more than 1048576 bytes/);
    assert.deepEqual(
      declared.details.map((d) => d.path),
      ['big'],
    );
    // Declared sizes fit, but with tar headers and padding the stream does not: caught while writing the file.
    const nearLimit = Buffer.alloc(LIMITS.maxBytes - 100);
    await assertRejected(
      gzipSync(
        await tarOf([
          { name: 'manifest.toml', body: MANIFEST },
          { name: 'near', body: nearLimit },
        ]),
      ),
      TooLargeError,
      /expands to more than 1048576 bytes/,
    );
    // Zero blocks are end-of-archive markers tar-stream skips, so only counting the gunzipped bytes catches this.
    await assertRejected(gzipSync(zeros), TooLargeError, /expands to more than 1048576 bytes/);
  });

  it('requires manifest.toml at the root or in a single top-level directory', async () => {
    await assertRejected(
      [{ name: 'src/index.ts', body: 'x' }],
      ArchiveError,
      /^archive holds no manifest\.toml at its root/,
    );
    await assertRejected(
      [
        { name: 'one/manifest.toml', body: MANIFEST },
        { name: 'two/manifest.toml', body: MANIFEST },
      ],
      ArchiveError,
      /archive holds several plans \(one, two\)/,
    );
  });

  it('rejects duplicate entries and files used as directories', async () => {
    await assertRejected(
      [
        { name: 'manifest.toml', body: MANIFEST },
        { name: 'manifest.toml', body: 'name = "other"\n' },
      ],
      ArchiveError,
      /appears twice/,
    );
    await assertRejected(
      [
        { name: 'manifest.toml', body: MANIFEST },
        { name: 'manifest.toml/x', body: 'x' },
      ],
      ArchiveError,
      /needs "manifest\.toml" to be a directory/,
    );
  });

  it('refuses a non-empty destination and leaves it alone', async () => {
    const { archivePath, dest } = await setUp(
      gzipSync(await tarOf([{ name: 'manifest.toml', body: MANIFEST }])),
    );
    await mkdir(dest);
    await writeFile(path.join(dest, 'keep'), 'mine');
    await assert.rejects(extractPlanArchive(archivePath, dest, LIMITS), /is not empty/);
    assert.equal(await readFile(path.join(dest, 'keep'), 'utf8'), 'mine');
  });

  it('empties an existing empty destination on failure but keeps the directory', async () => {
    const archive = gzipSync(
      await tarOf([
        { name: 'a.txt', body: 'x' },
        { name: '../evil', body: 'x' },
      ]),
    );
    const { archivePath, dest, out } = await setUp(archive);
    await mkdir(dest);
    await assert.rejects(extractPlanArchive(archivePath, dest, LIMITS), ArchiveError);
    assert.deepEqual(await readdir(dest), []);
    assert.equal(existsSync(path.join(out, 'evil')), false);
  });
});

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { type Header, extract as tarExtract } from 'tar-stream';
import { packPlanDirectory } from '../../cli/pack-plan.ts';
import { TooLargeError } from '../../core/errors.ts';
import { extractPlanArchive } from '../../plan/plan-archive.ts';

/** The headers of a .tar.gz, in archive order. */
async function readHeaders(archive: Buffer): Promise<Header[]> {
  const extractor = tarExtract();
  const headers: Header[] = [];
  const done = (async () => {
    for await (const entry of extractor) {
      headers.push(entry.header);
      entry.resume();
    }
  })();
  extractor.end(gunzipSync(archive));
  await done;
  return headers;
}

/** Entry names and types of a .tar.gz, in archive order: `d dir/`, `f file`. */
async function listEntries(archive: Buffer): Promise<string[]> {
  return (await readHeaders(archive)).map(
    (header) => `${header.type === 'directory' ? 'd' : 'f'} ${header.name}`,
  );
}

describe('packPlanDirectory', () => {
  let work: string;
  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'tg-pack-plan-'));
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  async function makePlan(files: Record<string, string>): Promise<string> {
    const dir = path.join(work, randomBytes(4).toString('hex'));
    for (const [name, content] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
      await writeFile(path.join(dir, name), content);
    }
    return dir;
  }

  it('round-trips through extractPlanArchive, keeping contents and the executable bit', async () => {
    const dir = await makePlan({
      'manifest.toml': 'name = "p"\n',
      'src/index.ts': 'export const x = 1;\n',
      'src/deep/er/file.json': '{}',
      'bin/run.sh': '#!/bin/sh\n',
      // Longer than ustar's 100-byte name field, so it travels in a pax header.
      [`src/${'long-name-'.repeat(12)}.ts`]: 'long',
    });
    await chmod(path.join(dir, 'bin/run.sh'), 0o755);
    await mkdir(path.join(dir, 'empty'));
    const archive = await packPlanDirectory(dir);

    const dest = path.join(work, `dest-${randomBytes(4).toString('hex')}`);
    const { planDir } = await extractPlanArchive(path.join(await writeTemp(archive)), dest, {
      maxBytes: 1024 * 1024,
      maxEntries: 100,
    });
    assert.equal(planDir, dest);
    const names = [
      'manifest.toml',
      'src/index.ts',
      'src/deep/er/file.json',
      'bin/run.sh',
      `src/${'long-name-'.repeat(12)}.ts`,
    ];
    for (const name of names) {
      assert.equal(
        await readFile(path.join(dest, name), 'utf8'),
        await readFile(path.join(dir, name), 'utf8'),
        name,
      );
    }
    assert.equal((await stat(path.join(dest, 'bin/run.sh'))).mode & 0o777, 0o755);
    assert.equal((await stat(path.join(dest, 'src/index.ts'))).mode & 0o777, 0o644);
    assert.ok((await stat(path.join(dest, 'empty'))).isDirectory());
  });

  async function writeTemp(archive: Buffer): Promise<string> {
    const file = path.join(work, `archive-${randomBytes(4).toString('hex')}.tgz`);
    await writeFile(file, archive);
    return file;
  }

  it('writes relative names in a deterministic order, and the same bytes every time', async () => {
    const dir = await makePlan({
      'manifest.toml': 'name = "p"\n',
      'b.ts': '',
      'a/z.ts': '',
      'a/b.ts': '',
      'C.ts': '',
    });
    const first = await packPlanDirectory(dir);
    assert.deepEqual(await listEntries(first), [
      'f C.ts',
      'd a/',
      'f a/b.ts',
      'f a/z.ts',
      'f b.ts',
      'f manifest.toml',
    ]);
    assert.ok((await packPlanDirectory(dir)).equals(first));
    // Timestamps and owners are fixed, so the bytes do not depend on when or by whom the plan was packed.
    for (const header of await readHeaders(first)) {
      assert.deepEqual(
        [header.mtime.getTime(), header.uid, header.gid, header.uname, header.gname],
        [0, 0, 0, '', ''],
        header.name,
      );
    }
  });

  it('honours .testgroundignore and always skips node_modules, .git, .testground and symlinks', async () => {
    const dir = await makePlan({
      'manifest.toml': 'name = "p"\n',
      '.testgroundignore': [
        '# build output',
        '',
        'dist/',
        '*.log',
        '!keep.log',
        '/only-root.txt',
        'docs/**/*.png',
        'tmp?',
        'secret[12].txt',
        '!node_modules',
        'manifest.toml',
        'data',
      ].join('\n'),
      'src/index.ts': 'x',
      'dist/bundle.js': 'x',
      'src/dist/also.js': 'x',
      'dist.txt': 'a file named like the directory pattern stays',
      'lib/dist': 'a file named exactly like the directory-only pattern stays',
      'app.log': 'x',
      'src/deep.log': 'x',
      'keep.log': 'x',
      'only-root.txt': 'x',
      'src/only-root.txt': 'kept: the pattern is anchored',
      'docs/a/b/pic.png': 'x',
      'docs/pic.png': 'x',
      'docs/readme.md': 'x',
      tmp1: 'x',
      tmp12: 'kept: ? is one character',
      'secret1.txt': 'x',
      'secret3.txt': 'x',
      'data/big.bin': 'x',
      'node_modules/dep/index.js': 'x',
      'src/node_modules/dep/index.js': 'x',
      '.git/HEAD': 'x',
      '.testground/cache': 'x',
    });
    await symlink('/etc/passwd', path.join(dir, 'passwd-link'));
    await symlink('src', path.join(dir, 'src-link'));
    const names = await listEntries(await packPlanDirectory(dir));
    assert.deepEqual(names, [
      'f .testgroundignore',
      'f dist.txt',
      'd docs/',
      'd docs/a/',
      'd docs/a/b/',
      'f docs/readme.md',
      'f keep.log',
      'd lib/',
      'f lib/dist',
      'f manifest.toml',
      'f secret3.txt',
      'd src/',
      'f src/index.ts',
      'f src/only-root.txt',
      'f tmp12',
    ]);
  });

  it('throws naming the directory when it has no manifest.toml', async () => {
    const dir = await makePlan({ 'index.ts': '' });
    await assert.rejects(packPlanDirectory(dir), (err: Error) => {
      assert.equal(err.message, `${dir} has no manifest.toml; a plan directory needs one at its root`);
      return true;
    });
  });

  it('throws TooLargeError over maxBytes, naming the largest files', async () => {
    const dir = await makePlan({
      'manifest.toml': 'name = "p"\n',
      'big.bin': 'x'.repeat(5000),
      'small.txt': 'x',
    });
    await assert.rejects(packPlanDirectory(dir, { maxBytes: 4096 }), (err: unknown) => {
      assert.ok(err instanceof TooLargeError);
      assert.match(
        err.message,
        /packs to more than 4096 bytes, the limit; largest files: big\.bin \(5000 bytes\)/,
      );
      assert.match(err.message, /\.testgroundignore/);
      return true;
    });
    // Contents fit, but tar headers push the stream over: the limit means what the daemon counts.
    const headers = await makePlan({ 'manifest.toml': 'name = "p"\n', 'a.txt': 'x'.repeat(3000) });
    await assert.rejects(packPlanDirectory(headers, { maxBytes: 4096 }), TooLargeError);
    assert.ok((await packPlanDirectory(headers, { maxBytes: 8192 })).length > 0);
  });
});

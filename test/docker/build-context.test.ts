import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { listContextDirectory } from '../../docker/build-context.ts';

let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tg-build-context-'));
  await mkdir(path.join(dir, 'src/node_modules/dep'), { recursive: true });
  await mkdir(path.join(dir, 'node_modules/dep'), { recursive: true });
  await mkdir(path.join(dir, '.git'));
  await writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\n');
  await writeFile(path.join(dir, 'src/index.js'), '');
  await writeFile(path.join(dir, 'src/B.js'), '');
  await writeFile(path.join(dir, 'src/node_modules/dep/index.js'), '');
  await writeFile(path.join(dir, 'node_modules/dep/index.js'), '');
  await symlink('index.js', path.join(dir, 'src/link.js'));
  await chmod(path.join(dir, 'src'), 0o750);
});

after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('listContextDirectory', () => {
  it('lists files, directories (with their modes) and symlinks in a fixed order, skipping names at any depth', async () => {
    const entries = await listContextDirectory(dir, new Set(['node_modules', '.git']));
    assert.deepEqual(entries, [
      { type: 'file', name: 'Dockerfile', source: path.join(dir, 'Dockerfile') },
      { type: 'directory', name: 'src', mode: 0o750 },
      // Code-unit order: upper case before lower case, whatever the locale.
      { type: 'file', name: 'src/B.js', source: path.join(dir, 'src/B.js') },
      { type: 'file', name: 'src/index.js', source: path.join(dir, 'src/index.js') },
      { type: 'symlink', name: 'src/link.js', target: 'index.js' },
    ]);
  });
});

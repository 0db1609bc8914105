import assert from 'node:assert/strict';
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { loadCliBundle as load } from '../../bin/cli-bundle.js';
import { repoRoot, scratchDir } from '../sdk/spawn-instance.ts';

const scratch = scratchDir('cli-bundle');
after(() => scratch.cleanup());

// A checkout of its own: a `cli/main.ts` whose runCli answers `answer`, importing a second file so the
// bundle has more than one input.
function checkout(name: string, answer: number): string {
  const root = path.join(scratch.dir, name);
  mkdirSync(path.join(root, 'cli'), { recursive: true });
  symlinkSync(path.join(repoRoot, 'node_modules'), path.join(root, 'node_modules'));
  writeFileSync(path.join(root, 'cli', 'answer.ts'), `export const answer: number = ${answer};\n`);
  writeFileSync(
    path.join(root, 'cli', 'main.ts'),
    "import { answer } from './answer.ts';\nexport async function runCli(): Promise<number> { return answer; }\n",
  );
  return root;
}

function currentBundle(root: string): string {
  return (
    JSON.parse(readFileSync(path.join(root, '.testground/cli/current.json'), 'utf8')) as { bundle: string }
  ).bundle;
}

describe('the bundled CLI (bin/cli-bundle.js)', () => {
  it('is made from the sources the first time, and reused while none of them changed', async () => {
    const root = checkout('reuse', 7);
    assert.equal(await (await load(root))?.runCli([], {}), 7);
    const first = currentBundle(root);
    assert.equal(await (await load(root))?.runCli([], {}), 7);
    assert.equal(currentBundle(root), first);
  });

  it('is made again when a file it was made from changed, even with the same size', async () => {
    const root = checkout('changed', 7);
    await load(root);
    const first = currentBundle(root);
    // Same size, so only the modification time tells.
    const answerFile = path.join(root, 'cli', 'answer.ts');
    writeFileSync(answerFile, 'export const answer: number = 8;\n');
    const earlier = new Date(Date.now() - 60_000);
    utimesSync(answerFile, earlier, earlier);
    assert.equal(await (await load(root))?.runCli([], {}), 8);
    assert.notEqual(currentBundle(root), first);
  });

  it('is not recorded as current when a source was saved while it was made', async () => {
    const root = checkout('saved-meanwhile', 7);
    await load(root);
    const first = currentBundle(root);
    // A modification time after the build began: the build may have read the file before it was saved.
    const answerFile = path.join(root, 'cli', 'answer.ts');
    writeFileSync(answerFile, 'export const answer: number = 8;\n');
    const later = new Date(Date.now() + 60_000);
    utimesSync(answerFile, later, later);
    assert.equal(await (await load(root))?.runCli([], {}), 8);
    assert.equal(currentBundle(root), first);
  });

  it('is never the old bundle once a file it was made from is gone', async () => {
    const root = checkout('gone', 7);
    await load(root);
    rmSync(path.join(root, 'cli', 'answer.ts'));
    // The sources no longer bundle: no CLI from them, and none from before.
    assert.equal(await load(root), undefined);
  });

  it('is undefined (the caller runs the sources through tsx) when no bundle can be made', async () => {
    const root = checkout('unmakeable', 7);
    // A file where the bundle's directory would be: nothing can be written there.
    mkdirSync(path.join(root, '.testground'));
    writeFileSync(path.join(root, '.testground', 'cli'), '');
    assert.equal(await load(root), undefined);
    const broken = checkout('broken', 7);
    writeFileSync(path.join(broken, 'cli', 'main.ts'), 'export async function runCli( {\n');
    assert.equal(await load(broken), undefined);
    assert.deepEqual(readdirSync(path.join(broken, '.testground', 'cli')), []);
  });
});

/**
 * What `testground plan create` writes type-checks with its own tsconfig.json against this repo's SDK, as it
 * would against the packed `testground-sdk` installed in the plan (the builder checks it the same way).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse as parseToml } from 'smol-toml';
import { planSkeleton } from '../../cli/plan-skeleton.ts';
import { repoRoot, scratchDir } from '../helpers/processes.ts';

describe('the plan create skeleton', () => {
  it('type-checks with its own tsconfig.json against the SDK', async (t) => {
    const scratch = await scratchDir('skeleton');
    t.after(() => scratch.remove());
    for (const [file, text] of Object.entries(planSkeleton('hello'))) {
      await writeFile(path.join(scratch.dir, file), text);
    }
    // The plan's own settings, with `testground-sdk` resolved to the SDK's source instead of an install.
    await writeFile(
      path.join(scratch.dir, 'tsconfig.check.json'),
      JSON.stringify({
        extends: './tsconfig.json',
        compilerOptions: {
          paths: { 'testground-sdk': [path.join(repoRoot, 'sdk/index.ts')] },
          typeRoots: [path.join(repoRoot, 'node_modules/@types')],
          types: ['node'],
        },
      }),
    );
    const tsc = spawnSync(
      process.execPath,
      [path.join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.check.json'],
      { cwd: scratch.dir, encoding: 'utf8' },
    );
    assert.equal(tsc.status, 0, `tsc found errors:\n${tsc.stdout}${tsc.stderr}`);
  });

  it('declares a manifest with a test case and params of every kind describe shows', () => {
    const manifest = parseToml(planSkeleton('my-plan')['manifest.toml']!) as {
      name: string;
      testcases: { name: string; params: Record<string, { type: string; unit?: string; desc: string }> }[];
    };
    assert.equal(manifest.name, 'my-plan');
    assert.deepEqual(
      manifest.testcases.map((testCase) => testCase.name),
      ['hello'],
    );
    assert.equal(manifest.testcases[0]!.params.pause!.unit, 'ms');
  });
});

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { build } from 'esbuild';
import { mapStackToSources } from '../../sdk/stack-source-map.ts';
import { repoRoot, scratchDir } from './spawn-instance.ts';

const run = promisify(execFile);
const scratch = scratchDir('stack-map');
after(() => scratch.cleanup());

// A plan whose test case throws on a known line, bundled with the SDK as exec:node bundles it (its map
// beside it, `linked`) or as it did before (`inline`), then run by a plain `node`, without
// --enable-source-maps, as local:exec runs instances.
async function bundledPlan(sourcemap: 'linked' | 'inline'): Promise<string> {
  const plan = path.join(scratch.dir, 'plan.ts');
  writeFileSync(
    plan,
    [
      `import { describeThrown } from ${JSON.stringify(path.join(repoRoot, 'sdk/event-recorder.ts'))};`,
      'function deepInThePlan(): never {',
      "  throw new Error('peer 3 never answered');",
      '}',
      'try {',
      '  deepInThePlan();',
      '} catch (error) {',
      '  process.stdout.write(describeThrown(error).stack);',
      '}',
    ].join('\n'),
  );
  const outfile = path.join(scratch.dir, sourcemap, 'bundle.mjs');
  await build({
    entryPoints: [plan],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    sourcemap,
  });
  return outfile;
}

describe('mapStackToSources', () => {
  for (const sourcemap of ['linked', 'inline'] as const) {
    it(`records a bundled plan's stack in its own source lines without --enable-source-maps (${sourcemap} map)`, async () => {
      const bundle = await bundledPlan(sourcemap);
      assert.equal(existsSync(`${bundle}.map`), sourcemap === 'linked');
      const { stdout } = await run(process.execPath, [bundle]);
      assert.match(stdout, /^Error: peer 3 never answered\n/);
      assert.match(stdout, new RegExp(`at deepInThePlan \\(${path.join(scratch.dir, 'plan.ts')}:3:9\\)`));
      assert.doesNotMatch(stdout, /bundle\.mjs/);
    });
  }

  it('leaves a stack as the bundle has it when the map it names is gone', async () => {
    const bundle = await bundledPlan('linked');
    rmSync(`${bundle}.map`);
    const { stdout } = await run(process.execPath, [bundle]);
    assert.match(stdout, /^Error: peer 3 never answered\n/);
    assert.match(stdout, /at deepInThePlan \(file:\/\/.*bundle\.mjs:\d+:\d+\)/);
  });

  it('leaves a stack alone when its file names no map, or the stack names another file', () => {
    const own = path.join(repoRoot, 'sdk/stack-source-map.ts');
    const stack = `Error: x\n    at f (file://${own}:10:5)`;
    assert.equal(mapStackToSources(stack, own), stack);
    assert.equal(mapStackToSources(stack, path.join(repoRoot, 'sdk/invoke.ts')), stack);
  });
});

import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { locatePlan, readPlanName } from '../../cli/plan-locator.ts';
import { scratchDir } from '../helpers/processes.ts';

describe('plan locator', () => {
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  const makePlan = async (dir: string, name: string): Promise<void> => {
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'manifest.toml'), `name = "${name}"\n`);
  };
  before(async () => {
    scratch = await scratchDir('locator');
    await makePlan(path.join(scratch.dir, 'home/plans/shared'), 'shared-home');
    await makePlan(path.join(scratch.dir, 'cwd/plans/shared'), 'shared-cwd');
    await makePlan(path.join(scratch.dir, 'cwd/plans/local-only'), 'local-only');
    await makePlan(path.join(scratch.dir, 'elsewhere/mine'), 'mine');
  });
  after(async () => {
    await scratch?.remove();
  });

  it('looks a name up in $TESTGROUND_HOME/plans first, then ./plans, and takes paths as paths', async () => {
    const env = { TESTGROUND_HOME: path.join(scratch.dir, 'home') };
    const cwd = path.join(scratch.dir, 'cwd');
    assert.equal(locatePlan('shared', env, cwd), path.join(scratch.dir, 'home/plans/shared'));
    assert.equal(locatePlan('local-only', env, cwd), path.join(cwd, 'plans/local-only'));
    assert.equal(locatePlan('../elsewhere/mine', env, cwd), path.join(scratch.dir, 'elsewhere/mine'));
    assert.equal(await readPlanName(path.join(scratch.dir, 'elsewhere/mine')), 'mine');
    assert.throws(
      () => locatePlan('nowhere', env, cwd),
      /plan "nowhere" not found: looked for manifest\.toml in/,
    );
  });
});

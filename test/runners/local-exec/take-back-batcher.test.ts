import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TakeBackBatcher } from '../../../runners/local-exec/take-back-batcher.ts';

describe('TakeBackBatcher', () => {
  it('takes the first tree back at once and the trees that end meanwhile in one batch', async () => {
    const batches: string[][] = [];
    let release: () => void = () => {};
    const batcher = new TakeBackBatcher(async (dirs) => {
      batches.push([...dirs]);
      if (batches.length === 1) await new Promise<void>((resolve) => (release = resolve));
    });
    const first = batcher.takeBack('a');
    const rest = ['b', 'c', 'd'].map((dir) => batcher.takeBack(dir));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(batches, [['a']]);
    release();
    await Promise.all([first, ...rest]);
    assert.deepEqual(batches, [['a'], ['b', 'c', 'd']]);
    await batcher.takeBack('e');
    assert.deepEqual(batches.at(-1), ['e']);
  });

  it('rejects every tree of a failed batch with its error, and goes on with the next batch', async () => {
    let calls = 0;
    const batcher = new TakeBackBatcher(async (dirs) => {
      calls += 1;
      if (calls === 1) throw new Error(`chown -R ${dirs.join(' ')} exited with code 1`);
    });
    const failed = batcher.takeBack('x');
    await assert.rejects(failed, /chown -R x exited with code 1/);
    await batcher.takeBack('y');
    assert.equal(calls, 2);
  });
});

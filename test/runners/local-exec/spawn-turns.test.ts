import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SpawnTurns } from '../../../runners/local-exec/spawn-turns.ts';

describe('SpawnTurns', () => {
  it('gives turns in the order asked, with a turn of the event loop between two of them', async () => {
    const turns = new SpawnTurns();
    const order: string[] = [];
    const asked = [1, 2, 3].map((index) =>
      turns.next().then(() => {
        order.push(`turn ${index}`);
        // What a spawn does: block the loop for a while. A timer due meanwhile fires before the next turn.
        setTimeout(() => order.push(`timer after ${index}`), 0);
        const until = performance.now() + 5;
        while (performance.now() < until);
      }),
    );
    await Promise.all(asked);
    await new Promise((resolve) => setTimeout(resolve, 5));
    assert.deepEqual(order, [
      'turn 1',
      'timer after 1',
      'turn 2',
      'timer after 2',
      'turn 3',
      'timer after 3',
    ]);
  });
});

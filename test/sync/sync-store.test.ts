import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SyncStore } from '../../sync/sync-store.ts';

describe('SyncStore states', () => {
  it('counts signals per state from 1', () => {
    const store = new SyncStore<string>();
    assert.equal(store.count('a'), 0);
    assert.equal(store.signalEntry('a'), 1);
    assert.equal(store.signalEntry('a'), 2);
    assert.equal(store.signalEntry('b'), 1);
    assert.equal(store.count('a'), 2);
  });

  it('reports the new count to onCounted before releasing the barrier it reaches', () => {
    const store = new SyncStore<string>();
    const order: string[] = [];
    store.waitBarrier('s', 1, () => order.push('barrier'));
    store.signalEntry('s', (seq) => order.push(`counted ${seq}`));
    assert.deepEqual(order, ['counted 1', 'barrier']);
  });
});

describe('SyncStore barriers', () => {
  it('fires exactly when the counter reaches the target, once', () => {
    const store = new SyncStore<string>();
    let fired = 0;
    store.waitBarrier('s', 3, () => (fired += 1));
    store.signalEntry('s');
    store.signalEntry('s');
    assert.equal(fired, 0);
    store.signalEntry('s');
    assert.equal(fired, 1);
    store.signalEntry('s');
    assert.equal(fired, 1);
  });

  it('fires at once when the target is already reached', () => {
    const store = new SyncStore<string>();
    store.signalEntry('s');
    store.signalEntry('s');
    let fired = 0;
    store.waitBarrier('s', 2, () => (fired += 1));
    store.waitBarrier('s', 1, () => (fired += 1));
    assert.equal(fired, 2);
  });

  it('fires at once for a target of zero or below', () => {
    const store = new SyncStore<string>();
    let fired = 0;
    store.waitBarrier('never-signalled', 0, () => (fired += 1));
    store.waitBarrier('never-signalled', -5, () => (fired += 1));
    assert.equal(fired, 2);
  });

  it('does not fire a cancelled waiter, and keeps the others', () => {
    const store = new SyncStore<string>();
    const fired: string[] = [];
    const cancel = store.waitBarrier('s', 1, () => fired.push('cancelled'));
    store.waitBarrier('s', 1, () => fired.push('kept'));
    cancel();
    cancel();
    store.signalEntry('s');
    assert.deepEqual(fired, ['kept']);
  });

  it('lets a released waiter cancel another waiter of the same release', () => {
    const store = new SyncStore<string>();
    const fired: string[] = [];
    let cancelSecond = (): void => {};
    store.waitBarrier('s', 1, () => {
      fired.push('first');
      cancelSecond();
    });
    cancelSecond = store.waitBarrier('s', 1, () => fired.push('second'));
    store.signalEntry('s');
    assert.deepEqual(fired, ['first']);
  });

  it('releases waiters of different targets at their own counts', () => {
    const store = new SyncStore<string>();
    const fired: number[] = [];
    for (const target of [3, 1, 2]) store.waitBarrier('s', target, () => fired.push(target));
    store.signalEntry('s');
    store.signalEntry('s');
    store.signalEntry('s');
    assert.deepEqual(fired, [1, 2, 3]);
  });

  it('releases 100 000 waiters of one barrier in linear time', () => {
    const store = new SyncStore<string>();
    let fired = 0;
    for (let i = 0; i < 100_000; i += 1) store.waitBarrier('s', 2, () => (fired += 1));
    store.signalEntry('s');
    const started = performance.now();
    store.signalEntry('s');
    assert.equal(fired, 100_000);
    // Quadratic work would take minutes here; linear takes a few milliseconds.
    assert.ok(performance.now() - started < 1_000, 'releasing 100 000 waiters took over a second');
  });
});

describe('SyncStore state counts', () => {
  it('counts signals, the largest target and the barriers still waiting, waited-on states first', () => {
    const store = new SyncStore<string>();
    store.waitBarrier('a', 2, () => {});
    const cancel = store.waitBarrier('a', 5, () => {});
    store.waitBarrier('a', 5, () => {});
    store.signalEntry('a');
    store.signalEntry('b');
    store.signalEntry('a');
    assert.deepEqual(store.stateCounts(), [
      { name: 'a', count: 2, target: 5, waiting: 2 },
      { name: 'b', count: 1, target: 0, waiting: 0 },
    ]);
    cancel();
    store.signalEntry('c');
    assert.deepEqual(
      store.stateCounts().map((state) => [state.name, state.waiting]),
      [
        ['a', 1],
        ['c', 0],
        ['b', 0],
      ],
    );
  });

  it('reports at most the limit asked', () => {
    const store = new SyncStore<string>();
    for (let i = 0; i < 50; i += 1) store.signalEntry(`s${i}`);
    const counts = store.stateCounts(20);
    assert.equal(counts.length, 20);
    assert.equal(counts[0]?.name, 's49');
  });
});

describe('SyncStore topics', () => {
  it('numbers items from 1 per topic', () => {
    const store = new SyncStore<string>();
    assert.equal(store.publish('t', 'a'), 1);
    assert.equal(store.publish('t', 'b'), 2);
    assert.equal(store.publish('u', 'c'), 1);
    assert.equal(store.topicLength('t'), 2);
  });

  it('replays the history in publish order, then delivers live items', () => {
    const store = new SyncStore<string>();
    store.publish('t', 'a');
    store.publish('t', 'b');
    const seen: [string, number][] = [];
    store.subscribe('t', (item, seq) => {
      seen.push([item, seq]);
    });
    assert.deepEqual(seen, [
      ['a', 1],
      ['b', 2],
    ]);
    store.publish('t', 'c');
    store.publish('other', 'x');
    assert.deepEqual(seen, [
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ]);
  });

  it('stops delivering after cancel', () => {
    const store = new SyncStore<string>();
    const seen: string[] = [];
    const subscription = store.subscribe('t', (item) => {
      seen.push(item);
    });
    store.publish('t', 'a');
    subscription.cancel();
    subscription.cancel();
    store.publish('t', 'b');
    assert.deepEqual(seen, ['a']);
  });

  it('pauses when the listener returns false and resumes where it stopped', () => {
    const store = new SyncStore<string>();
    for (const item of ['a', 'b', 'c']) store.publish('t', item);
    const seen: string[] = [];
    let accept = 1;
    const subscription = store.subscribe('t', (item) => {
      seen.push(item);
      accept -= 1;
      return accept > 0;
    });
    assert.deepEqual(seen, ['a']);
    store.publish('t', 'd');
    assert.deepEqual(seen, ['a'], 'a paused subscriber must not get live items');
    accept = 10;
    subscription.resume();
    assert.deepEqual(seen, ['a', 'b', 'c', 'd']);
    store.publish('t', 'e');
    assert.deepEqual(seen, ['a', 'b', 'c', 'd', 'e']);
  });

  it('keeps order when a listener publishes to its own topic', () => {
    const store = new SyncStore<string>();
    const seen: string[] = [];
    store.subscribe('t', (item) => {
      seen.push(item);
      if (item === 'a') store.publish('t', 'b');
    });
    store.publish('t', 'a');
    store.publish('t', 'c');
    assert.deepEqual(seen, ['a', 'b', 'c']);
  });

  it('delivers each item to every subscriber', () => {
    const store = new SyncStore<string>();
    const seen: string[][] = [[], [], []];
    for (const list of seen) {
      store.subscribe('t', (item) => {
        list.push(item);
      });
    }
    store.publish('t', 'a');
    assert.deepEqual(seen, [['a'], ['a'], ['a']]);
  });
});

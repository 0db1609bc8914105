import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NetworkClient, type NetworkRunEnv } from '../../sdk/network-client.ts';

function fakes(sidecar: boolean): { runenv: NetworkRunEnv; calls: string[]; barriers: [string, number][] } {
  const calls: string[] = [];
  const barriers: [string, number][] = [];
  const runenv: NetworkRunEnv = {
    testSidecar: sidecar,
    testInstanceCount: 7,
    recordMessage: (message) => calls.push(`message ${message}`),
    recordStageStart: (name) => calls.push(`stage_start ${name}`),
    recordStageEnd: (name) => calls.push(`stage_end ${name}`),
  };
  return { runenv, calls, barriers };
}

describe('NetworkClient.waitNetworkInitialized', () => {
  it('returns at once without a sidecar, never touching the sync service', async () => {
    const { runenv, calls } = fakes(false);
    const client = new NetworkClient(
      { barrier: () => Promise.reject(new Error('must not be called without a sidecar')) },
      runenv,
    );
    await client.waitNetworkInitialized();
    assert.deepEqual(calls, []);
  });

  it('waits on network-initialized for every instance of the run when a sidecar manages the network', async () => {
    const { runenv, calls, barriers } = fakes(true);
    let release = (): void => {};
    const client = new NetworkClient(
      {
        barrier: (state, target) => {
          barriers.push([state, target]);
          calls.push('barrier');
          return new Promise<void>((resolve) => (release = resolve));
        },
      },
      runenv,
    );
    let done = false;
    const waiting = client.waitNetworkInitialized().then(() => (done = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(done, false);
    release();
    await waiting;
    assert.deepEqual(barriers, [['network-initialized', 7]]);
    assert.deepEqual(calls, [
      'stage_start network-initialized',
      'barrier',
      'stage_end network-initialized',
      'message network initialisation successful',
    ]);
  });

  it('passes a failed barrier on', async () => {
    const { runenv } = fakes(true);
    const client = new NetworkClient({ barrier: () => Promise.reject(new Error('connection lost')) }, runenv);
    await assert.rejects(client.waitNetworkInitialized(), { message: 'connection lost' });
  });
});

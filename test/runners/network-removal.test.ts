import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { removeNetworkThoroughly } from '../../runners/network-removal.ts';

/**
 * The engine's side of a network that refuses to go: `refusals` removals fail with the engine's "active
 * endpoints" answer, while it lists `endpoints` (a stale one among them). The real engine's part is in
 * local-docker-maintenance.test.ts; this one scripts what a real engine only does after big runs.
 */
function refusingEngine(refusals: number, endpoints: { id: string; name: string }[]) {
  const calls: string[] = [];
  let left = refusals;
  return {
    calls,
    engine: {
      removeNetwork: async (network: string) => {
        calls.push(`remove ${network}`);
        if (left > 0) {
          left -= 1;
          throw new Error(
            `remove network ${network}: error while removing network: network ${network} has active endpoints`,
          );
        }
      },
      networkEndpoints: async (network: string) => {
        calls.push(`endpoints ${network}`);
        return endpoints;
      },
      disconnectNetwork: async (network: string, container: string) => {
        calls.push(`disconnect ${container} from ${network}`);
      },
    },
  };
}

describe('removeNetworkThoroughly', () => {
  it('disconnects the endpoints still listed after a refusal, waits and tries again', async () => {
    const { engine, calls } = refusingEngine(2, [
      { id: 'abc123', name: 'tg-run-single-7' },
      { id: 'ep-stale', name: '' },
    ]);
    const waits: number[] = [];
    await removeNetworkThoroughly(engine, 'tg-run', {
      delayMs: 100,
      sleep: async (ms) => void waits.push(ms),
    });
    assert.deepEqual(calls, [
      'remove tg-run',
      'endpoints tg-run',
      'disconnect tg-run-single-7 from tg-run',
      'disconnect ep-stale from tg-run',
      'remove tg-run',
      'endpoints tg-run',
      'disconnect tg-run-single-7 from tg-run',
      'disconnect ep-stale from tg-run',
      'remove tg-run',
    ]);
    assert.deepEqual(waits, [100, 200], 'the wait doubles');
  });

  it('gives up after its attempts, naming the network, the endpoints left and the engine answer', async () => {
    const { engine } = refusingEngine(99, [{ id: 'abc123', name: 'tg-run-single-7' }]);
    await assert.rejects(
      removeNetworkThoroughly(engine, 'tg-run', { attempts: 3, sleep: async () => undefined }),
      /^Error: network tg-run is still there after 3 attempts with endpoints tg-run-single-7: .*has active endpoints; remove it with "docker network rm tg-run"/,
    );
  });
});

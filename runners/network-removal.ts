import type { NetworkClient } from '../docker/container-engine.ts';

export interface NetworkRemovalOptions {
  /** Removal attempts before giving up; default 5. */
  attempts?: number;
  /** The wait between attempts, doubled after each; default 200 ms. */
  delayMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Removes a run's network even when the engine still lists endpoints on it. After runs of 100+
 * containers the engine can keep endpoints of containers it already removed ("has active endpoints"):
 * each failed attempt forcibly disconnects every endpoint still listed, waits, and tries again. Throws,
 * naming the network, the endpoints left and the engine's last answer, when the network outlives every
 * attempt.
 */
export async function removeNetworkThoroughly(
  engine: Pick<NetworkClient, 'removeNetwork' | 'networkEndpoints' | 'disconnectNetwork'>,
  network: string,
  options: NetworkRemovalOptions = {},
): Promise<void> {
  const attempts = options.attempts ?? 5;
  const sleep = options.sleep ?? ((ms: number) => new Promise((resolve) => setTimeout(resolve, ms)));
  let delayMs = options.delayMs ?? 200;
  let lastError: unknown;
  let endpoints: { id: string; name: string }[] = [];
  for (let attempt = 1; attempt <= attempts; attempt += 1) {
    try {
      await engine.removeNetwork(network);
      return;
    } catch (error) {
      lastError = error;
    }
    endpoints = await engine.networkEndpoints(network).catch(() => endpoints);
    for (const endpoint of endpoints) {
      // By name when the engine still knows one: that is how `docker network disconnect -f` clears a
      // stale endpoint whose container no longer exists.
      await engine.disconnectNetwork(network, endpoint.name || endpoint.id).catch(() => undefined);
    }
    if (attempt < attempts) {
      await sleep(delayMs);
      delayMs *= 2;
    }
  }
  const left = endpoints.map((endpoint) => endpoint.name || endpoint.id);
  throw new Error(
    `network ${network} is still there after ${attempts} attempts${left.length > 0 ? ` with endpoints ${left.join(', ')}` : ''}: ${lastError instanceof Error ? lastError.message : String(lastError)}; remove it with "docker network rm ${network}" once they are gone`,
  );
}

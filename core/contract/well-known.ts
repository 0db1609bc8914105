/**
 * Names both sides of the sync service agree on (CONTRACT §3), and the line a sync service prints when it
 * listens, which whoever started it reads. Dependency-free, because plans bundle it.
 */

/** Signalled once per instance by the network side when that instance's network is ready. */
export const networkInitializedState = 'network-initialized';

/** Instances publish their lifecycle events on this topic (the official JS SDK does). */
export const runEventsTopic = 'run_events';

/** The topic an instance publishes its network configuration requests on. */
export function networkTopic(hostname: string): string {
  return `network:${hostname}`;
}

/** What a sync service prints on stdout once it accepts connections. */
export function syncServiceListeningLine(host: string, port: number): string {
  return `sync service listening on ws://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * Where a sync service said it listens, from its output so far; undefined until it has said so. Pass
 * complete lines: output cut inside the port number would read as another port.
 */
export function parseSyncServiceListening(output: string): { host: string; port: number } | undefined {
  const match = /sync service listening on ws:\/\/(\[[^\]]+\]|[^:\s]+):(\d+)/.exec(output);
  if (!match?.[1] || !match[2]) return undefined;
  return { host: match[1].replace(/^\[|\]$/g, ''), port: Number(match[2]) };
}

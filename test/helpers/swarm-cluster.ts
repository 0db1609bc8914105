/**
 * The real 3-node swarm of `scripts/swarm-cluster.sh`, for cluster:swarm's tests: brought up once (the
 * script's `ensure` makes concurrent test files wait for each other) and left up for the next file;
 * `scripts/test.sh` takes it down at the end of the suite.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const script = path.resolve(import.meta.dirname, '../../scripts/swarm-cluster.sh');
/** The script's default state directory. */
export const swarmClusterDir = '/var/lib/tg-swarm';

export interface SwarmCluster {
  /** `unix://…/n1/run/docker.sock`: the manager's engine, as the daemon is pointed at it. */
  manager: string;
  /** `10.240.77.1:5000` */
  registry: string;
  /** Each node's engine socket, node 1 (the manager) first. */
  nodeSockets: string[];
  /** Each node's hostname, node 1 first. */
  nodeHostnames: string[];
  /** The registry's log, one access-log line per request, with the requesting node's address. */
  registryLog: string;
}

export async function ensureSwarmCluster(nodes = 3): Promise<SwarmCluster> {
  const { stdout } = await run('bash', [script, 'ensure', String(nodes)], { timeout: 300_000 });
  const env = Object.fromEntries(
    stdout
      .trim()
      .split('\n')
      .filter((line) => line.includes('='))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
  const manager = env.TESTGROUND_SWARM_MANAGER;
  const registry = env.TESTGROUND_REGISTRY;
  if (!manager || !registry) throw new Error(`swarm-cluster.sh ensure printed no environment: ${stdout}`);
  const indexes = Array.from({ length: nodes }, (_, i) => i + 1);
  return {
    manager,
    registry,
    nodeSockets: indexes.map((i) => path.join(swarmClusterDir, `n${i}`, 'run', 'docker.sock')),
    nodeHostnames: indexes.map((i) => `tgsw-n${i}`),
    registryLog: path.join(swarmClusterDir, 'registry', 'registry.log'),
  };
}

/** Ends node `index` as a power cut would (every process in its namespace); `ensure` brings it back later. */
export async function killSwarmNode(index: number): Promise<void> {
  await run('bash', [script, 'kill-node', String(index)]);
}

/** The registry's access-log lines (`<address> - - [date] "GET /v2/… HTTP/1.1" 200 …`). */
export async function registryRequests(cluster: SwarmCluster): Promise<string[]> {
  const text = await readFile(cluster.registryLog, 'utf8');
  return text.split('\n').filter((line) => /^\d+\.\d+\.\d+\.\d+ - - \[/.test(line));
}

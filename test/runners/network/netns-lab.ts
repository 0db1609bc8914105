/**
 * A small network of real namespaces for the shaper's tests, touching nothing on the host: a "switch"
 * namespace holds two bridges (the data network 10.77.0.0/24 and a control network 10.78.0.0/24, the one
 * `keepReachable` names) and an "outside" address 10.79.0.1 (the host's other networks, for the routing
 * policy); each instance namespace has eth1 on the data network (default route through the switch, as in a
 * Docker container) and eth0 on the control network. A traffic agent runs in every namespace.
 */
import { spawn, execFile, type ChildProcessWithoutNullStreams } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { NetworkTarget } from '../../../runners/network/network-shaper.ts';

export const dataSubnet = '10.77.0.0/24';
export const controlSubnet = '10.78.0.0/24';
export const outsideAddress = '10.79.0.1';

export interface LabInstance {
  name: string;
  netns: string;
  dataAddress: string;
  controlAddress: string;
  target: NetworkTarget;
  agent: TrafficAgent;
}

export interface Lab {
  instances: Record<string, LabInstance>;
  /** The agent in the switch namespace, listening on the outside address. */
  outside: TrafficAgent;
  remove(): Promise<void>;
}

/** Fails loudly, with what to do, when the tests cannot create namespaces. */
export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'the network shaper tests create network namespaces, veth pairs and tc/iptables rules: run them as root ' +
        '(the CI machine does), e.g. sudo node --import tsx --test test/runners/network/*.test.ts',
    );
  }
}

export async function createLab(prefix: string, names: readonly string[]): Promise<Lab> {
  requireRoot();
  const id = `${prefix}${process.pid.toString(36)}`;
  const switchNs = `${id}-sw`;
  const namespaces = [switchNs, ...names.map((name) => `${id}-${name}`)];
  const lines = [
    ...namespaces.map((ns) => `ip netns add ${ns}`),
    ...namespaces.map((ns) => `ip -n ${ns} link set lo up`),
    `ip -n ${switchNs} link add br-data type bridge`,
    `ip -n ${switchNs} link add br-ctl type bridge`,
    `ip -n ${switchNs} addr add 10.77.0.254/24 dev br-data`,
    `ip -n ${switchNs} addr add 10.78.0.254/24 dev br-ctl`,
    // A veth pair with no far side of interest (this kernel may have no dummy interfaces).
    `ip -n ${switchNs} link add outside type veth peer name outside-peer`,
    `ip -n ${switchNs} link set outside-peer up`,
    `ip -n ${switchNs} addr add ${outsideAddress}/24 dev outside`,
    `ip -n ${switchNs} link set br-data up`,
    `ip -n ${switchNs} link set br-ctl up`,
    `ip -n ${switchNs} link set outside up`,
  ];
  names.forEach((name, index) => {
    const ns = `${id}-${name}`;
    lines.push(
      `ip -n ${switchNs} link add d-${name} type veth peer name eth1 netns ${ns}`,
      `ip -n ${switchNs} link add c-${name} type veth peer name eth0 netns ${ns}`,
      `ip -n ${switchNs} link set d-${name} master br-data up`,
      `ip -n ${switchNs} link set c-${name} master br-ctl up`,
      `ip -n ${ns} addr add 10.77.0.${index + 1}/24 dev eth1`,
      `ip -n ${ns} addr add 10.78.0.${index + 1}/24 dev eth0`,
      `ip -n ${ns} link set eth1 up`,
      `ip -n ${ns} link set eth0 up`,
      `ip -n ${ns} route add default via 10.77.0.254 dev eth1`,
    );
  });
  const remove = async (): Promise<void> => {
    await Promise.all(
      namespaces.map((ns) =>
        run('sh', ['-c', `ip netns pids ${ns} | xargs -r kill -9; ip netns del ${ns}`]).catch(() => {}),
      ),
    );
  };
  try {
    await run('sh', ['-ec', lines.join('\n')]);
    const agents = await Promise.all(namespaces.map((ns) => TrafficAgent.start(ns)));
    const [outside, ...instanceAgents] = agents;
    const instances: Record<string, LabInstance> = {};
    names.forEach((name, index) => {
      const netns = `${id}-${name}`;
      instances[name] = {
        name,
        netns,
        dataAddress: `10.77.0.${index + 1}`,
        controlAddress: `10.78.0.${index + 1}`,
        agent: instanceAgents[index]!,
        target: {
          label: `lab/${name}`,
          namespace: { kind: 'named', name: netns },
          dataInterface: 'eth1',
          dataSubnet,
          keepReachable: [{ subnet: controlSubnet }],
        },
      };
    });
    return {
      instances,
      outside: outside!,
      remove: async () => {
        await Promise.all(agents.map((agent) => agent.stop()));
        await remove();
      },
    };
  } catch (error) {
    await remove();
    throw error;
  }
}

const agentScript = path.join(import.meta.dirname, 'traffic-agent.ts');

/** The test's hands inside one namespace. */
export class TrafficAgent {
  private readonly pending = new Map<
    number,
    (answer: { ok: boolean; result?: unknown; error?: string }) => void
  >();
  private nextId = 1;

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    readonly netns: string,
  ) {}

  static async start(netns: string): Promise<TrafficAgent> {
    const child = spawn('ip', ['netns', 'exec', netns, process.execPath, '--import', 'tsx', agentScript], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    // Above the rest of the suite (nice -10; `ip netns exec` execs the agent in place, same pid): the
    // figures should measure the shaper, not how late a busy machine schedules the sender and receiver.
    if (child.pid !== undefined) os.setPriority(child.pid, -10);
    const agent = new TrafficAgent(child, netns);
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const lines = createInterface({ input: child.stdout });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`traffic agent in ${netns} did not start: ${stderr}`)),
        20_000,
      );
      child.once('exit', (code) =>
        reject(new Error(`traffic agent in ${netns} exited (${code}): ${stderr}`)),
      );
      lines.on('line', (line) => {
        const message = JSON.parse(line) as { id?: number; ready?: boolean; ok: boolean };
        if (message.ready) {
          clearTimeout(timer);
          resolve();
          return;
        }
        const waiter = message.id === undefined ? undefined : agent.pending.get(message.id);
        if (message.id !== undefined) agent.pending.delete(message.id);
        waiter?.(message);
      });
    });
    return agent;
  }

  get pid(): number {
    return this.child.pid!;
  }

  async call<T>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    const answer = await new Promise<{ ok: boolean; result?: unknown; error?: string }>((resolve) => {
      this.pending.set(id, resolve);
      this.child.stdin.write(`${JSON.stringify({ id, cmd, ...args })}\n`);
    });
    if (!answer.ok) throw new Error(`${cmd} in ${this.netns} failed: ${answer.error}`);
    return answer.result as T;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 2_000);
    await exited;
    clearTimeout(timer);
  }
}

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, (error, stdout, stderr) => {
      if (error)
        reject(new Error(`${command} ${args.join(' ').slice(0, 200)} failed: ${stderr || error.message}`));
      else resolve(stdout);
    });
  });
}

/**
 * A plan that looks at its own network, for local:exec's namespace runs: which address and hostname an
 * instance has, whom it reaches, and what latency and bandwidth it measures once it asked for a shape.
 * It publishes configurations the way both SDKs' configureNetwork do (wire keys, nanoseconds).
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import { invokeMap, NetworkClient, type RunEnv, type SyncClientApi } from 'testground-sdk';

const port = 7_000;

interface Peer {
  hostname: string;
  address: string;
  /** Its address on the control network (`ctl0`), where only the sync service should be reachable. */
  control?: string;
}

/** The instance's address in TEST_SUBNET, the way the SDKs' getDataNetworkIP finds it. */
function dataAddress(runenv: RunEnv): string {
  const [base, prefixText] = runenv.testSubnet.split('/');
  const toNumber = (address: string): number =>
    address.split('.').reduce((value, octet) => value * 256 + Number(octet), 0);
  const size = 2 ** (32 - Number(prefixText));
  const start = toNumber(base ?? '');
  for (const addresses of Object.values(os.networkInterfaces())) {
    for (const candidate of addresses ?? []) {
      if (candidate.family !== 'IPv4') continue;
      const value = toNumber(candidate.address);
      if (value >= start && value < start + size) return candidate.address;
    }
  }
  throw new Error(
    `no address in TEST_SUBNET ${runenv.testSubnet}: ${JSON.stringify(os.networkInterfaces())}`,
  );
}

/** What configureNetwork sends: a link shape for all egress, and the state the network side signals. */
async function configureNetwork(
  runenv: RunEnv,
  client: SyncClientApi,
  shape: { latency?: number; jitter?: number; bandwidth?: number },
  callbackState: string,
  rules: readonly Record<string, unknown>[] = [],
): Promise<void> {
  const started = Date.now();
  await client.publish(`network:${os.hostname()}`, {
    network: 'default',
    enable: true,
    default: { latency: 0, jitter: 0, bandwidth: 0, loss: 0, ...shape },
    rules,
    callback_state: callbackState,
    callback_target: runenv.testInstanceCount,
    routing_policy: 'allow_all',
  });
  await client.barrier(callbackState, runenv.testInstanceCount);
  runenv.recordMessage(`network configured (${callbackState}) in ${Date.now() - started} ms`);
}

/** Every instance's hostname and data address, this one's included. */
async function meetPeers(runenv: RunEnv, client: SyncClientApi, me: Peer): Promise<Peer[]> {
  const { subscription } = await client.publishSubscribe<Peer>('peers', me);
  const peers: Peer[] = [];
  for await (const peer of subscription) {
    peers.push(peer);
    if (peers.length === runenv.testInstanceCount) break;
  }
  return peers;
}

function serve(address: string, handle: (socket: net.Socket) => void): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer(handle);
    server.once('error', reject);
    server.listen(port, address, () => resolve(server));
  });
}

function connect(address: string, timeoutMs = 10_000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: address, port, noDelay: true }, () => {
      clearTimeout(timer);
      resolve(socket);
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no connection to ${address}:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

async function reach(runenv: RunEnv, client: SyncClientApi): Promise<void> {
  await new NetworkClient(client, runenv).waitNetworkInitialized();
  const control = os.networkInterfaces().ctl0?.find((address) => address.family === 'IPv4')?.address;
  const me: Peer = { hostname: os.hostname(), address: dataAddress(runenv), ...(control ? { control } : {}) };
  runenv.recordMessage(`hostname ${me.hostname} address ${me.address}`);
  const server = await serve('0.0.0.0', (socket) => socket.end(`${me.hostname}\n`));
  const peers = await meetPeers(runenv, client, me);
  const answers: string[] = [];
  for (const peer of peers) {
    const socket = await connect(peer.address);
    let text = '';
    for await (const chunk of socket) text += String(chunk);
    if (text.trim() !== peer.hostname) {
      throw new Error(`${peer.address} answered ${JSON.stringify(text)}, expected ${peer.hostname}`);
    }
    answers.push(`${peer.hostname}@${peer.address}`);
  }
  runenv.recordMessage(`reached ${answers.sort().join(' ')}`);
  const others = peers.filter((peer) => peer.hostname !== me.hostname && peer.control);
  const isolated = await Promise.all(
    others.map((peer) =>
      connect(peer.control!, 500).then(
        (socket) => (socket.destroy(), false),
        () => true,
      ),
    ),
  );
  runenv.recordMessage(
    `control network: ${isolated.filter(Boolean).length} of ${others.length} peers unreachable`,
  );
  await configureNetwork(runenv, client, {}, 'network-configured');
  await client.signalAndWait('done', runenv.testInstanceCount);
  server.close();
}

async function stall(runenv: RunEnv, client: SyncClientApi): Promise<void> {
  await new NetworkClient(client, runenv).waitNetworkInitialized();
  // A session of its own: stopping the instance's process group does not stop it; its namespace does.
  const orphan = spawn('sleep', ['600'], { detached: true, stdio: 'ignore' });
  orphan.unref();
  runenv.recordMessage(`stalling; left process ${orphan.pid} in ${os.hostname()}`);
  await new Promise<void>(() => {
    setInterval(() => {}, 60_000);
  });
}

/** Both instances ask for the shape, then instance 1 measures against instance 2; both finish together. */
async function measure(
  runenv: RunEnv,
  client: SyncClientApi,
  shape: { latency?: number; jitter?: number; bandwidth?: number },
  serveSocket: (socket: net.Socket) => void,
  probe: (socket: net.Socket) => Promise<string>,
): Promise<void> {
  await new NetworkClient(client, runenv).waitNetworkInitialized();
  const me = { hostname: os.hostname(), address: dataAddress(runenv) };
  const server = await serve(me.address, serveSocket);
  const peers = await meetPeers(runenv, client, me);
  await configureNetwork(runenv, client, shape, 'shaped');
  const seq = await client.signalEntry('roles');
  if (seq === 1) {
    const peer = peers.find((candidate) => candidate.hostname !== me.hostname);
    if (!peer) throw new Error('no peer to measure against');
    const socket = await connect(peer.address);
    runenv.recordMessage(await probe(socket));
    socket.destroy();
  }
  await client.signalAndWait('measured', runenv.testInstanceCount);
  server.close();
}

async function latency(runenv: RunEnv, client: SyncClientApi): Promise<void> {
  const ms = 1_000_000;
  const rounds = 100;
  await measure(
    runenv,
    client,
    { latency: runenv.intParam('latency_ms') * ms, jitter: runenv.intParam('jitter_ms') * ms },
    (socket) => socket.pipe(socket),
    async (socket) => {
      const rtts: number[] = [];
      for (let round = 0; round < rounds; round += 1) {
        const sent = performance.now();
        const echoed = new Promise((resolve) => socket.once('data', resolve));
        socket.write('x');
        await echoed;
        rtts.push(performance.now() - sent);
      }
      rtts.sort((a, b) => a - b);
      const median = rtts[Math.floor(rtts.length / 2)]!;
      return `rtt median ${median.toFixed(2)} ms over ${rounds} round trips`;
    },
  );
}

async function bandwidth(runenv: RunEnv, client: SyncClientApi): Promise<void> {
  const seconds = runenv.intParam('seconds');
  await measure(
    runenv,
    client,
    { bandwidth: runenv.intParam('bandwidth_mbit') * 1_000_000 },
    // Counts what arrived and reports it when the sender stops.
    (socket) => {
      let received = 0;
      socket.on('data', (chunk: Buffer) => (received += chunk.length));
      socket.on('end', () => socket.end(`${received}\n`));
    },
    async (socket) => {
      const chunk = Buffer.alloc(64 * 1024);
      const started = performance.now();
      while (performance.now() - started < seconds * 1_000) {
        if (!socket.write(chunk)) await new Promise((resolve) => socket.once('drain', resolve));
      }
      const answer = new Promise<string>((resolve) => {
        let text = '';
        socket.on('data', (data: Buffer) => (text += data.toString()));
        socket.on('end', () => resolve(text));
      });
      socket.end();
      const received = Number((await answer).trim());
      const elapsedS = (performance.now() - started) / 1_000;
      return `throughput ${((received * 8) / elapsedS / 1_000_000).toFixed(2)} Mbit/s (${received} bytes in ${elapsedS.toFixed(2)} s)`;
    },
  );
}

/**
 * Instance 1 asks for a filter the model does not have (`filter: 7`; 0, 1 and 2 exist); the others ask
 * for no shaping. All wait for the callback, which never comes for instance 1: the runner must end the run.
 */
async function refused(runenv: RunEnv, client: SyncClientApi): Promise<void> {
  await new NetworkClient(client, runenv).waitNetworkInitialized();
  const seq = await client.signalEntry('roles');
  const filter = seq === 1 ? runenv.intParam('filter') : 0;
  runenv.recordMessage(`asking for filter ${filter} toward ${runenv.testSubnet}`);
  await configureNetwork(runenv, client, {}, 'configured', [{ subnet: runenv.testSubnet, filter }]);
}

await invokeMap({ reach, stall, latency, bandwidth, refused });

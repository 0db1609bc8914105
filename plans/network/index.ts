// Network emulation, measured: each case shapes the data network with our SDK's configureNetwork, sends
// real traffic between instances, and the instance that measured writes the figures to
// $TEST_OUTPUTS_PATH/measurement.json (and records them as a message). Roles go by the order instances
// signal `role` (1, 2, 3); endpoints are exchanged through the sync service, which shaping never touches.
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { invokeMap, NetworkClient, type RunEnv, type SyncClientApi } from 'testground-sdk';
import {
  ping,
  quantile,
  sendDatagrams,
  sendFor,
  sleep,
  tcpAcceptor,
  throughputReceiver,
  tryConnect,
  udpCounter,
  udpEcho,
  type ConnectAttempt,
  type Endpoint,
  type Throughput,
} from './traffic.ts';

interface Instance {
  network: NetworkClient;
  /** 1 for the first instance to signal `role`, 2 for the next… */
  role: number;
  /** This instance's address on the data network. */
  ip: string;
}

async function start(runenv: RunEnv, client: SyncClientApi): Promise<Instance> {
  const network = new NetworkClient(client, runenv);
  await network.waitNetworkInitialized();
  const role = await client.signalEntry('role');
  return { network, role, ip: network.getDataNetworkIP() };
}

function record(runenv: RunEnv, measurement: Record<string, unknown>): void {
  writeFileSync(
    path.join(runenv.testOutputsPath, 'measurement.json'),
    `${JSON.stringify(measurement, null, 2)}\n`,
  );
  runenv.recordMessage(`measurement: ${JSON.stringify(measurement)}`);
}

/** The first item of a topic (what one instance announced). */
async function first<T>(client: SyncClientApi, topic: string): Promise<T> {
  const subscription = client.subscribe<T>(topic);
  try {
    const { value, done } = await subscription.next();
    if (done) throw new Error(`the topic ${topic} ended before anything was published on it`);
    return value;
  } finally {
    subscription.cancel();
  }
}

/** The first `count` items of a topic. */
async function collect<T>(client: SyncClientApi, topic: string, count: number): Promise<T[]> {
  const items: T[] = [];
  for await (const item of client.subscribe<T>(topic)) {
    items.push(item);
    if (items.length === count) break;
  }
  return items;
}

const round = (value: number, digits = 2): number => Number(value.toFixed(digits));

async function bandwidth(runenv: RunEnv, client: SyncClientApi): Promise<void> {
  const { network, role, ip } = await start(runenv, client);
  const rate = runenv.stringParam('bandwidth');
  await network.configureNetwork({ default: { bandwidth: rate } });
  runenv.recordMessage(`egress bandwidth ${rate} in effect on every instance`);
  if (role === 2) {
    const receiver = await throughputReceiver(ip, runenv.durationParam('warmup'));
    await client.publish('bandwidth-receiver', receiver.endpoint);
    const measured = await receiver.result;
    receiver.close();
    record(runenv, { case: 'bandwidth', configured: rate, ...measured });
  } else if (role === 1) {
    const bytes = await sendFor(
      await first<Endpoint>(client, 'bandwidth-receiver'),
      runenv.durationParam('duration'),
    );
    runenv.recordMessage(`sent ${bytes} bytes`);
  }
  await client.signalAndWait('done', runenv.testInstanceCount);
}

async function latency(runenv: RunEnv, client: SyncClientApi): Promise<void> {
  const { network, role, ip } = await start(runenv, client);
  const latencyMs = runenv.durationParam('latency');
  const jitterMs = runenv.durationParam('jitter');
  await network.configureNetwork({ default: { latency: `${latencyMs}ms`, jitter: `${jitterMs}ms` } });
  runenv.recordMessage(`egress latency ${latencyMs} ms ± ${jitterMs} ms in effect on every instance`);
  if (role === 2) {
    const echo = await udpEcho(ip);
    await client.publish('latency-echo', echo.endpoint);
    await client.barrier('pinged', 1);
    echo.close();
  } else if (role === 1) {
    const pings = runenv.intParam('pings');
    const { sent, rttMs } = await ping(
      await first<Endpoint>(client, 'latency-echo'),
      pings,
      runenv.durationParam('interval'),
      Math.max(1_000, 4 * (latencyMs + jitterMs)),
    );
    await client.signalEntry('pinged');
    if (rttMs.length === 0) throw new Error(`none of ${sent} pings was answered`);
    record(runenv, {
      case: 'latency',
      latencyMs,
      jitterMs,
      // Both instances delay what they send: a round trip crosses two delayed egresses.
      appliedBy: 'the egress of both instances',
      expectedRttMs: 2 * latencyMs,
      sent,
      answered: rttMs.length,
      medianRttMs: round(quantile(rttMs, 0.5)),
      p10RttMs: round(quantile(rttMs, 0.1)),
      p90RttMs: round(quantile(rttMs, 0.9)),
      minRttMs: round(Math.min(...rttMs)),
      maxRttMs: round(Math.max(...rttMs)),
    });
  }
  await client.signalAndWait('done', runenv.testInstanceCount);
}

async function loss(runenv: RunEnv, client: SyncClientApi): Promise<void> {
  const { network, role, ip } = await start(runenv, client);
  const percent = runenv.floatParam('loss');
  await network.configureNetwork({ default: { loss: percent } });
  runenv.recordMessage(`egress loss ${percent}% in effect on every instance`);
  if (role === 2) {
    const counter = await udpCounter(ip);
    await client.publish('loss-receiver', counter.endpoint);
    const { sent } = await first<{ sent: number }>(client, 'loss-sent');
    // Datagrams still on their way when the sender said it was done.
    await sleep(500);
    const received = counter.received('loss');
    counter.close();
    record(runenv, {
      case: 'loss',
      configuredLossPercent: percent,
      sent,
      received,
      lossPercent: round((100 * (sent - received)) / sent),
    });
  } else if (role === 1) {
    const packets = runenv.intParam('packets');
    await sendDatagrams(await first<Endpoint>(client, 'loss-receiver'), 'loss', packets);
    await client.publish('loss-sent', { sent: packets });
  }
  await client.signalAndWait('done', runenv.testInstanceCount);
}

interface PartitionTarget {
  udp: Endpoint;
  tcp: Endpoint;
}

interface PhaseProbe {
  tcp: ConnectAttempt;
  /** A signal_entry round trip to the sync service during the phase: it stays reachable throughout. */
  syncRoundTripMs: number;
}

async function partition(runenv: RunEnv, client: SyncClientApi): Promise<void> {
  const { network } = await start(runenv, client);
  const from = runenv.stringParam('from');
  const to = runenv.stringParam('to');
  const probes = runenv.intParam('probes');
  const inGroup = await client.signalEntry(`in-${runenv.testGroupId}`);
  const prober = runenv.testGroupId === from && inGroup === 1;
  const target = runenv.testGroupId === to && inGroup === 1;
  const all = runenv.testInstanceCount;

  let counter: Awaited<ReturnType<typeof udpCounter>> | undefined;
  let acceptor: Awaited<ReturnType<typeof tcpAcceptor>> | undefined;
  if (target) {
    const ip = network.getDataNetworkIP();
    counter = await udpCounter(ip);
    acceptor = await tcpAcceptor(ip);
    await client.publish('partition-target', { udp: counter.endpoint, tcp: acceptor.endpoint });
  }
  const endpoints = prober ? await first<PartitionTarget>(client, 'partition-target') : undefined;
  const results: Record<string, PhaseProbe> = {};
  const probe = async (phase: string, connectTimeoutMs: number): Promise<void> => {
    if (endpoints !== undefined) {
      await sendDatagrams(endpoints.udp, phase, probes);
      const tcp = await tryConnect(endpoints.tcp, connectTimeoutMs);
      const started = performance.now();
      await client.signalEntry(`sync-probe-${phase}`);
      results[phase] = { tcp, syncRoundTripMs: round(performance.now() - started) };
      runenv.recordMessage(`${phase}: TCP ${tcp.result} after ${tcp.elapsedMs} ms`);
    }
    await client.signalAndWait(`${phase}-probed`, all);
  };

  await probe('baseline', 2_000);
  await network.partition({ from, to, mode: 'drop', callbackState: 'partitioned-drop' });
  await probe('drop', 1_000);
  await network.partition({ from, to, mode: 'reject', callbackState: 'partitioned-reject' });
  await probe('reject', 1_000);
  await network.configureNetwork({ callbackState: 'healed' });
  await probe('healed', 2_000);

  if (counter !== undefined) {
    await client.barrier('probes-done', 1);
    await sleep(500);
    const received = Object.fromEntries(
      ['baseline', 'drop', 'reject', 'healed'].map((phase) => [phase, counter.received(phase)]),
    );
    counter.close();
    acceptor?.close();
    await client.publish('partition-received', received);
  }
  if (prober) {
    await client.signalEntry('probes-done');
    const received = await first<Record<string, number>>(client, 'partition-received');
    record(runenv, {
      case: 'partition',
      from,
      to,
      probes,
      phases: Object.fromEntries(
        Object.entries(results).map(([phase, result]) => [
          phase,
          { udpReceived: received[phase], ...result },
        ]),
      ),
    });
  }
  await client.signalAndWait('done', all);
}

async function routing(runenv: RunEnv, client: SyncClientApi): Promise<void> {
  const { network, role, ip } = await start(runenv, client);
  const policy = runenv.stringParam('policy');
  if (policy !== 'allow_all' && policy !== 'deny_all') {
    throw new Error(`test param policy must be allow_all or deny_all, got ${JSON.stringify(policy)}`);
  }
  const timeoutMs = runenv.durationParam('timeout');
  const peer = role === 2 ? await tcpAcceptor(ip) : undefined;
  if (peer) await client.publish('routing-peer', peer.endpoint);
  await network.configureNetwork({ routingPolicy: policy });
  runenv.recordMessage(`routing policy ${policy} in effect on every instance`);
  if (role === 1) {
    const [host = '', port = ''] = runenv.stringParam('target').split(/:(?=\d+$)/);
    const outside = await tryConnect({ host, port: Number(port) }, timeoutMs);
    const inside =
      runenv.testInstanceCount > 1
        ? await tryConnect(await first<Endpoint>(client, 'routing-peer'), timeoutMs)
        : undefined;
    // The host is also the gateway of both networks: of the sync service's, which deny_all must not open,
    // and of the data network, which is inside TEST_SUBNET (reachable under deny_all, as in the original).
    const gatewayPort = runenv.intParam('gateway_port');
    const gateways: Record<string, ConnectAttempt & { target: string }> = {};
    if (gatewayPort > 0) {
      const addresses = { control: controlGateway(runenv.testSubnet), data: firstAddress(runenv.testSubnet) };
      for (const [network, address] of Object.entries(addresses)) {
        const attempt = await tryConnect({ host: address, port: gatewayPort }, timeoutMs);
        gateways[network] = { target: `${address}:${gatewayPort}`, ...attempt };
      }
    }
    const started = performance.now();
    await client.signalEntry('sync-probe');
    record(runenv, {
      case: 'routing',
      policy,
      target: `${host}:${port}`,
      outside,
      ...(gatewayPort > 0 ? { gateways } : {}),
      ...(inside ? { peer: inside } : {}),
      syncRoundTripMs: round(performance.now() - started),
    });
  }
  await client.signalAndWait('done', runenv.testInstanceCount);
  peer?.close();
}

const toNumber = (address: string): number =>
  address.split('.').reduce((value, octet) => value * 256 + Number(octet), 0);
const toAddress = (value: number): string => [24, 16, 8, 0].map((shift) => (value >>> shift) & 255).join('.');

/** The first address of `subnet` (a.b.c.d/n): where local:docker puts the host, the network's gateway. */
function firstAddress(subnet: string): string {
  const [base = '', prefix = '32'] = subnet.split('/');
  const size = 2 ** (32 - Number(prefix));
  return toAddress(Math.floor(toNumber(base) / size) * size + 1);
}

/**
 * The gateway of the instance's other network (the one the sync service is on, not TEST_SUBNET): on
 * local:docker the host, at the subnet's first address.
 */
function controlGateway(dataSubnet: string): string {
  const [dataBase = '', dataPrefix = '32'] = dataSubnet.split('/');
  const inData = (address: string): boolean => {
    const size = 2 ** (32 - Number(dataPrefix));
    return Math.floor(toNumber(address) / size) === Math.floor(toNumber(dataBase) / size);
  };
  const other = Object.values(os.networkInterfaces())
    .flat()
    .find((info) => info?.family === 'IPv4' && !info.internal && !inData(info.address));
  if (other === undefined) throw new Error(`this instance has no network besides ${dataSubnet}`);
  const mask = toNumber(other.netmask);
  return toAddress(((toNumber(other.address) & mask) >>> 0) + 1);
}

async function perLink(runenv: RunEnv, client: SyncClientApi): Promise<void> {
  const { network, role, ip } = await start(runenv, client);
  const rate = runenv.stringParam('bandwidth');
  const warmupMs = runenv.durationParam('warmup');
  if (role === 1) {
    const [toB, toC] = await Promise.all([
      first<Endpoint>(client, 'per-link-2'),
      first<Endpoint>(client, 'per-link-3'),
    ]);
    // Only the link toward the second instance is shaped; everything else is left as it is.
    await network.configureNetwork({ rules: [{ subnet: `${toB.host}/32`, bandwidth: rate }] });
    runenv.recordMessage(`egress toward ${toB.host} limited to ${rate}; toward ${toC.host} unlimited`);
    const durationMs = runenv.durationParam('duration');
    await sendFor(toB, durationMs);
    await sendFor(toC, durationMs);
    const results = await collect<{ role: number; throughput: Throughput }>(client, 'per-link-results', 2);
    const of = (which: number): Throughput | undefined =>
      results.find((result) => result.role === which)?.throughput;
    record(runenv, { case: 'per-link', configured: rate, shapedLink: of(2), unshapedLink: of(3) });
  } else {
    const receiver = await throughputReceiver(ip, warmupMs);
    await client.publish(`per-link-${role}`, receiver.endpoint);
    await network.configureNetwork({});
    const throughput = await receiver.result;
    receiver.close();
    runenv.recordMessage(`received ${Math.round(throughput.bitsPerSecond / 1e3) / 1e3} Mbit/s`);
    await client.publish('per-link-results', { role, throughput });
  }
  await client.signalAndWait('done', runenv.testInstanceCount);
}

/**
 * Publishes `config` exactly as given (the wire form, snake_case, nanoseconds) on this instance's network
 * topic, bypassing the SDK's checks, and waits for its callback: what the network side does with a
 * configuration it must refuse. A refused one never releases the barrier; the run ends the instance.
 */
async function rawConfig(runenv: RunEnv, client: SyncClientApi): Promise<void> {
  const network = new NetworkClient(client, runenv);
  await network.waitNetworkInitialized();
  const text = runenv.stringParam('config');
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(text) as Record<string, unknown>;
  } catch (error) {
    throw new Error(`test param config must be a JSON object, got ${text}: ${(error as Error).message}`);
  }
  const state = typeof config.callback_state === 'string' ? config.callback_state : 'raw-configured';
  config.callback_state = state;
  await client.publish(`network:${os.hostname()}`, config);
  runenv.recordMessage(`published ${JSON.stringify(config)}; waiting for ${state}`);
  await client.barrier(state, 1);
  runenv.recordMessage(`the network side applied it and signalled ${state}`);
}

await invokeMap({
  bandwidth,
  latency,
  loss,
  partition,
  routing,
  'per-link': perLink,
  'raw-config': rawConfig,
});

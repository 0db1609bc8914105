// Written only against the official @testground/sdk 0.1.2 (from npm), as its users write plans: the
// network is shaped through its configureNetwork (camelCase keys, nanoseconds, its own `bandwith`
// spelling) and the data address comes from its getDataNetworkIP.
import dgram from 'node:dgram';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import sdk from '@testground/sdk';

const { invokeMap, network } = sdk;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function numberParam(runenv, name, fallback) {
  const text = runenv.testInstanceParams[name];
  const value = text === undefined ? fallback : Number(text);
  if (!Number.isFinite(value))
    throw new Error(`test param ${name} must be a number, got ${JSON.stringify(text)}`);
  return value;
}

async function firstItem(client, topic) {
  const subscription = await client.subscribe(topic);
  for await (const item of subscription.wait) {
    subscription.cancel();
    return item;
  }
  throw new Error(`the topic ${topic} ended before anything was published on it`);
}

async function pong(host, client) {
  const socket = dgram.createSocket('udp4');
  socket.on('message', (message, from) => socket.send(message, from.port, from.address));
  await new Promise((resolve) => socket.bind(0, host, resolve));
  await client.publish('pong', { host, port: socket.address().port });
  const pinged = await client.barrier('pinged', 1);
  await pinged.wait;
  socket.close();
}

async function ping(endpoint, count, graceMs) {
  const socket = dgram.createSocket('udp4');
  const sentAt = new Map();
  const rtts = new Map();
  socket.on('message', (message) => {
    const seq = message.readUInt32BE(0);
    if (sentAt.has(seq) && !rtts.has(seq)) rtts.set(seq, performance.now() - sentAt.get(seq));
  });
  await new Promise((resolve) => socket.bind(0, resolve));
  for (let seq = 0; seq < count; seq += 1) {
    const message = Buffer.alloc(64);
    message.writeUInt32BE(seq, 0);
    sentAt.set(seq, performance.now());
    socket.send(message, endpoint.port, endpoint.host);
    await sleep(20);
  }
  await sleep(graceMs);
  socket.close();
  return [...rtts.values()].sort((a, b) => a - b);
}

// The SDK connects a sync client only for functions that declare two parameters.
async function pingPong(runenv, client) {
  const net = network.newClient(client, runenv);
  await net.waitNetworkInitialized();
  const latencyMs = numberParam(runenv, 'latency_ms', 50);
  const jitterMs = numberParam(runenv, 'jitter_ms', 0);
  await net.configureNetwork({
    network: 'default',
    enable: true,
    default: {
      latency: latencyMs * 1e6,
      jitter: jitterMs * 1e6,
      bandwith: 0,
      loss: 0,
      corrupt: 0,
      corruptCorr: 0,
      reorder: 0,
      reorderCorr: 0,
      duplicate: 0,
      duplicateCorr: 0,
    },
    callbackState: 'latency-configured',
    callbackTarget: 0,
    routingPolicy: network.DENY_ALL,
    IPv4: '',
    IPv6: '',
  });
  runenv.recordMessage(`egress latency ${latencyMs} ms ± ${jitterMs} ms in effect`);
  const ip = net.getDataNetworkIP();
  const seq = await client.signalEntry('role');
  if (seq === 2) {
    await pong(ip, client);
  } else if (seq === 1) {
    const count = numberParam(runenv, 'pings', 100);
    const rtts = await ping(
      await firstItem(client, 'pong'),
      count,
      Math.max(1000, 4 * (latencyMs + jitterMs)),
    );
    await client.signalEntry('pinged');
    if (rtts.length === 0) throw new Error(`none of ${count} pings was answered`);
    const median = rtts[Math.floor((rtts.length - 1) / 2)];
    const measurement = {
      case: 'ping-pong',
      sdk: '@testground/sdk@0.1.2',
      latencyMs,
      jitterMs,
      expectedRttMs: 2 * latencyMs,
      sent: count,
      answered: rtts.length,
      medianRttMs: Number(median.toFixed(2)),
      minRttMs: Number(rtts[0].toFixed(2)),
      maxRttMs: Number(rtts[rtts.length - 1].toFixed(2)),
    };
    writeFileSync(
      path.join(runenv.testOutputsPath, 'measurement.json'),
      `${JSON.stringify(measurement, null, 2)}\n`,
    );
    runenv.recordMessage(`measurement: ${JSON.stringify(measurement)}`);
  }
  const done = await client.barrier('done', runenv.testInstanceCount);
  await client.signalEntry('done');
  await done.wait;
}

// The SDK rejects (and records nothing) for an unknown TEST_CASE; say so instead of an unhandled rejection.
invokeMap({ 'ping-pong': pingPong }).catch((error) => {
  process.stderr.write(`network-official plan: ${error.message}\n`);
  process.exitCode = 1;
});

/**
 * The shaper against real namespaces and real traffic (netns-lab.ts): every knob is measured with packets
 * sent by Node inside the namespaces. Latency is applied on egress, so a configuration on both ends of a
 * ping-pong doubles it: the latency cases configure both and expect an RTT of 2 × latency.
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  NetworkConfigError,
  parseNetworkConfig,
  type NetworkConfig,
} from '../../../core/contract/network-config.ts';
import { LinuxNetworkShaper } from '../../../runners/network/linux-network-shaper.ts';
import { UnsupportedNetworkFeatureError } from '../../../runners/network/network-shaper.ts';
import { createLab, outsideAddress, type Lab, type LabInstance } from './netns-lab.ts';

const ms = 1_000_000;
const mbit = 1_000_000;
const echoPort = 7000;
const sinkPort = 7001;

interface Ping {
  sent: number;
  received: number;
  rtts: number[];
  sendErrors: number;
}

function configure(wire: Record<string, unknown>): NetworkConfig {
  return parseNetworkConfig({ callback_state: 'configured', ...wire });
}

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

describe('LinuxNetworkShaper on real namespaces', { concurrency: false }, () => {
  let lab: Lab;
  let a: LabInstance;
  let b: LabInstance;
  let c: LabInstance;
  let shaper: LinuxNetworkShaper;
  const warnings: string[] = [];

  const ping = (from: LabInstance, to: string, options: Record<string, unknown> = {}): Promise<Ping> =>
    from.agent.call<Ping>('udpPing', {
      host: to,
      port: echoPort,
      count: 60,
      intervalMs: 10,
      waitMs: 600,
      ...options,
    });
  const connect = (from: LabInstance, host: string, timeoutMs = 1_000) =>
    from.agent.call<{ outcome: string; ms: number }>('tcpConnect', { host, port: sinkPort, timeoutMs });
  /** TCP throughput from → to, measured by the receiver over [1 s, durationMs] of the transfer. */
  const throughput = async (from: LabInstance, to: LabInstance, durationMs = 5_000): Promise<number> => {
    await from.agent.call('tcpStream', { host: to.dataAddress, port: sinkPort, durationMs });
    const rate = await to.agent.call<{ mbps: number }>('tcpSinkRate', {
      port: sinkPort,
      fromMs: 1_000,
      toMs: durationMs - 100,
    });
    return rate.mbps;
  };
  const reset = () =>
    Promise.all([a, b, c].map((i) => shaper.apply(i.target, configure({ routing_policy: 'allow_all' }))));

  before(async () => {
    lab = await createLab('tgshp', ['a', 'b', 'c']);
    ({ a, b, c } = lab.instances as Record<'a' | 'b' | 'c', LabInstance>);
    shaper = new LinuxNetworkShaper({
      buildDir: path.join(os.tmpdir(), 'testground-packet-delayer'),
      onWarning: (message) => warnings.push(message),
    });
    await Promise.all(
      [a, b, c, { agent: lab.outside }].flatMap(({ agent }) => [
        agent.call('udpEcho', { port: echoPort }),
        agent.call('tcpSink', { port: sinkPort }),
      ]),
    );
  });

  after(async () => {
    await shaper?.close();
    await lab?.remove();
  });

  test('detects what the kernel can do, in a throwaway namespace', async () => {
    const features = await shaper.features();
    // The mechanisms every host running these tests must have; netem may or may not be there.
    assert.equal(features.htb, true, JSON.stringify(features));
    assert.equal(features.u32, true, JSON.stringify(features));
    assert.equal(features.iptables, true, JSON.stringify(features));
    assert.equal(features.netem || features.nfqueueDelayer, true, JSON.stringify(features));
    assert.equal(await shaper.features(), features, 'detected once per shaper');
  });

  for (const latencyMs of [50, 100]) {
    test(`latency ${latencyMs} ms on both ends: the RTT median is 2 × ${latencyMs} ms ± 10 %`, async (t) => {
      const config = configure({ default: { latency: latencyMs * ms }, routing_policy: 'allow_all' });
      await Promise.all([shaper.apply(a.target, config), shaper.apply(b.target, config)]);
      const result = await ping(a, b.dataAddress, { count: 50, waitMs: 2.5 * latencyMs });
      const median = quantile(result.rtts, 0.5);
      t.diagnostic(`network-fidelity lab latency ${latencyMs}ms rtt-median ${median.toFixed(1)}ms`);
      assert.equal(result.received, result.sent);
      assert.ok(Math.abs(median - 2 * latencyMs) <= 0.1 * 2 * latencyMs, `RTT median ${median} ms`);
      // Without jitter the delay is a floor: no round trip is shorter than 2 × latency, and the fastest tenth
      // sit right on it. Slower ones are the machine, not the shaper: on two cores shared with the rest of
      // the suite the ping agents and the userspace delayer wake late, which only ever adds.
      assert.ok(Math.min(...result.rtts) >= 2 * latencyMs - 0.5, `fastest ${Math.min(...result.rtts)} ms`);
      assert.ok(
        quantile(result.rtts, 0.1) <= 2 * latencyMs + 3,
        `10th percentile ${quantile(result.rtts, 0.1)} ms`,
      );
    });
  }

  test('jitter 10 ms spreads the RTT, around the same median', async (t) => {
    const config = configure({ default: { latency: 50 * ms, jitter: 10 * ms }, routing_policy: 'allow_all' });
    await Promise.all([shaper.apply(a.target, config), shaper.apply(b.target, config)]);
    const result = await ping(a, b.dataAddress, { count: 100, waitMs: 300 });
    const median = quantile(result.rtts, 0.5);
    assert.ok(Math.abs(median - 100) <= 10, `RTT median ${median} ms`);
    const spread = quantile(result.rtts, 0.9) - quantile(result.rtts, 0.1);
    t.diagnostic(
      `network-fidelity lab latency 50ms±10ms rtt-median ${median.toFixed(1)}ms p10-p90 ${spread.toFixed(1)}ms`,
    );
    // Two uniform ±10 ms delays: the 10–90 % range of their sum is about 22 ms.
    assert.ok(spread > 10 && spread < 40, `10–90 % spread ${spread} ms`);
    // Each end adds 50 ± 10 ms, so nothing is faster than 80 ms; no upper bound, for the reason above.
    assert.ok(Math.min(...result.rtts) >= 78, `fastest ${Math.min(...result.rtts)} ms`);
  });

  test('loss 10 %: between 7 % and 13 % of 5,000 UDP packets are lost, silently', async (t) => {
    await reset();
    await shaper.apply(a.target, configure({ default: { loss: 10 }, routing_policy: 'allow_all' }));
    const result = await ping(a, b.dataAddress, { count: 5_000, perTick: 25, intervalMs: 5, waitMs: 500 });
    const lost = 1 - result.received / result.sent;
    t.diagnostic(`network-fidelity lab loss 10% measured ${(lost * 100).toFixed(2)}% of ${result.sent}`);
    assert.equal(result.sent, 5_000);
    assert.equal(result.sendErrors, 0, 'a lost packet is lost on the wire, not refused to the sender');
    assert.ok(lost >= 0.07 && lost <= 0.13, `lost ${(lost * 100).toFixed(2)} %`);
  });

  for (const rate of [10, 50]) {
    test(`bandwidth ${rate} Mbit/s: TCP throughput within ± 10 %`, async (t) => {
      await shaper.apply(
        a.target,
        configure({ default: { bandwidth: rate * mbit }, routing_policy: 'allow_all' }),
      );
      const measured = await throughput(a, b);
      t.diagnostic(`network-fidelity lab bandwidth ${rate}Mbit/s measured ${measured.toFixed(2)}Mbit/s`);
      assert.ok(Math.abs(measured - rate) <= 0.1 * rate, `${measured.toFixed(2)} Mbit/s`);
    });
  }

  test('per-rule shaping: toward B at 10 Mbit/s, toward C unlimited', async (t) => {
    await shaper.apply(
      a.target,
      configure({
        rules: [{ subnet: `${b.dataAddress}/32`, bandwidth: 10 * mbit }],
        routing_policy: 'allow_all',
      }),
    );
    // Over the same window as the default-class tests: over [1 s, 2.9 s] TCP was still recovering from
    // its slow-start overshoot of the 10 Mbit/s queue in some runs (8.4 Mbit/s), alone on a quiet machine.
    const towardB = await throughput(a, b);
    const towardC = await throughput(a, c, 3_000);
    t.diagnostic(
      `network-fidelity lab per-link toward-B(10Mbit/s) ${towardB.toFixed(2)}Mbit/s toward-C(unlimited) ${towardC.toFixed(0)}Mbit/s`,
    );
    assert.ok(Math.abs(towardB - 10) <= 1, `toward B ${towardB.toFixed(2)} Mbit/s`);
    assert.ok(towardC > 100, `toward C ${towardC.toFixed(2)} Mbit/s`);
  });

  test('per-rule latency: toward B delayed, toward C not', async () => {
    await shaper.apply(
      a.target,
      configure({
        rules: [{ subnet: `${b.dataAddress}/32`, latency: 50 * ms }],
        routing_policy: 'allow_all',
      }),
    );
    const [towardB, towardC] = await Promise.all([
      ping(a, b.dataAddress, { count: 20, waitMs: 200 }),
      ping(a, c.dataAddress, { count: 20, waitMs: 200 }),
    ]);
    assert.ok(Math.abs(quantile(towardB.rtts, 0.5) - 50) <= 5, `toward B ${towardB.rtts}`);
    assert.ok(quantile(towardC.rtts, 0.5) < 5, `toward C ${towardC.rtts}`);
  });

  test('ingress bandwidth (ours): B limits what it receives to 10 Mbit/s', async (t) => {
    await reset();
    await shaper.apply(
      b.target,
      configure({ ingress: { bandwidth: 10 * mbit }, routing_policy: 'allow_all' }),
    );
    const measured = await throughput(a, b);
    t.diagnostic(`network-fidelity lab ingress-bandwidth 10Mbit/s measured ${measured.toFixed(2)}Mbit/s`);
    assert.ok(Math.abs(measured - 10) <= 1, `${measured.toFixed(2)} Mbit/s`);
    await shaper.apply(b.target, configure({ routing_policy: 'allow_all' }));
  });

  test('filters: reject refuses at once, drop is silence, the control network stays reachable', async () => {
    await shaper.apply(
      a.target,
      configure({
        rules: [
          { subnet: `${b.dataAddress}/32`, filter: 1 },
          { subnet: `${c.dataAddress}/32`, filter: 2 },
        ],
        routing_policy: 'allow_all',
      }),
    );
    const rejected = await connect(a, b.dataAddress);
    assert.equal(rejected.outcome, 'refused');
    assert.ok(rejected.ms < 100, `refused after ${rejected.ms} ms`);
    const dropped = await connect(a, c.dataAddress, 1_000);
    assert.equal(dropped.outcome, 'timeout');
    const udp = await ping(a, c.dataAddress, { count: 20, waitMs: 200 });
    assert.equal(udp.received, 0);
    assert.equal(udp.sendErrors, 0, 'a dropped datagram vanishes; its send succeeds');
    assert.equal((await connect(a, b.controlAddress)).outcome, 'connected');
    assert.equal((await connect(a, c.controlAddress)).outcome, 'connected');
  });

  test('routing policy: deny_all reaches only the data and control networks, allow_all reaches outside', async () => {
    await shaper.apply(a.target, configure({}));
    const denied = await connect(a, outsideAddress);
    assert.notEqual(denied.outcome, 'connected');
    assert.ok(
      denied.ms < 100,
      `deny_all fails at once like a missing route (${denied.outcome}, ${denied.ms} ms)`,
    );
    assert.equal((await connect(a, b.dataAddress)).outcome, 'connected');
    assert.equal((await connect(a, b.controlAddress)).outcome, 'connected');
    await shaper.apply(a.target, configure({ routing_policy: 'allow_all' }));
    assert.equal((await connect(a, outsideAddress)).outcome, 'connected');
  });

  test('enable = false cuts the data interface off both ways; the control network stays; true restores it', async () => {
    await shaper.apply(a.target, configure({ enable: false, routing_policy: 'allow_all' }));
    assert.equal((await connect(a, b.dataAddress, 500)).outcome, 'timeout');
    assert.equal((await connect(b, a.dataAddress, 500)).outcome, 'timeout');
    assert.equal((await ping(a, b.dataAddress, { count: 10, waitMs: 200 })).received, 0);
    assert.equal((await connect(a, b.controlAddress)).outcome, 'connected');
    await shaper.apply(a.target, configure({ routing_policy: 'allow_all' }));
    assert.equal((await connect(a, b.dataAddress)).outcome, 'connected');
    assert.equal((await connect(b, a.dataAddress)).outcome, 'connected');
  });

  test('a second apply replaces the first completely, and stops the delayer it no longer needs', async () => {
    await shaper.apply(
      a.target,
      configure({
        default: { latency: 80 * ms },
        rules: [{ subnet: `${c.dataAddress}/32`, filter: 2 }],
        routing_policy: 'deny_all',
      }),
    );
    const delayerPid = shaper.delayerPid(a.target.namespace);
    assert.ok(delayerPid, 'a delayer runs for the latency');
    assert.ok(quantile((await ping(a, b.dataAddress, { count: 10, waitMs: 300 })).rtts, 0.5) > 75);
    await shaper.apply(
      a.target,
      configure({ default: { bandwidth: 50 * mbit }, routing_policy: 'allow_all' }),
    );
    assert.ok(quantile((await ping(a, b.dataAddress, { count: 10, waitMs: 100 })).rtts, 0.5) < 5);
    assert.equal((await connect(a, c.dataAddress)).outcome, 'connected');
    assert.equal((await connect(a, outsideAddress)).outcome, 'connected');
    assert.equal(shaper.delayerPid(a.target.namespace), undefined);
    assert.throws(() => process.kill(delayerPid, 0), { code: 'ESRCH' });
  });

  test('release() stops the delayer; traffic then flows undelayed (--queue-bypass)', async () => {
    await shaper.apply(a.target, configure({ default: { latency: 60 * ms }, routing_policy: 'allow_all' }));
    const delayerPid = shaper.delayerPid(a.target.namespace);
    assert.ok(delayerPid);
    await shaper.release(a.target);
    assert.throws(() => process.kill(delayerPid, 0), { code: 'ESRCH' });
    const result = await ping(a, b.dataAddress, { count: 10, waitMs: 100 });
    assert.equal(result.received, 10);
    assert.ok(quantile(result.rtts, 0.5) < 5, `${result.rtts}`);
    await shaper.release(a.target); // nothing left to release: fine
  });

  test('a target given by pid (a container) is shaped through nsenter', async () => {
    await reset();
    const byPid = { ...c.target, namespace: { kind: 'pid' as const, pid: c.agent.pid } };
    await shaper.apply(byPid, configure({ default: { latency: 40 * ms }, routing_policy: 'allow_all' }));
    const result = await ping(c, a.dataAddress, { count: 20, waitMs: 200 });
    assert.ok(Math.abs(quantile(result.rtts, 0.5) - 40) <= 4, `${result.rtts}`);
    await shaper.release(byPid);
    await shaper.apply(byPid, configure({ routing_policy: 'allow_all' }));
  });

  test('IPv4 moves the data address; the routes stay', async () => {
    await shaper.apply(a.target, configure({ IPv4: '10.77.0.11/24', routing_policy: 'allow_all' }));
    assert.equal((await connect(b, '10.77.0.11')).outcome, 'connected');
    assert.notEqual((await connect(b, a.dataAddress, 500)).outcome, 'connected');
    assert.equal((await connect(a, outsideAddress)).outcome, 'connected', 'the default route survived');
    await shaper.apply(a.target, configure({ IPv4: a.dataAddress, routing_policy: 'allow_all' }));
    assert.equal((await connect(b, a.dataAddress)).outcome, 'connected');
  });

  test('refusals leave the previous configuration in place', async () => {
    await shaper.apply(
      a.target,
      configure({ default: { bandwidth: 10 * mbit }, routing_policy: 'allow_all' }),
    );
    await assert.rejects(
      shaper.apply(a.target, configure({ IPv4: '10.99.0.5/24' })),
      (error: unknown) => error instanceof NetworkConfigError && error.problems[0]?.path === 'IPv4',
    );
    const features = await shaper.features();
    if (!features.netem) {
      for (const knob of ['duplicate', 'corrupt', 'reorder']) {
        await assert.rejects(
          shaper.apply(a.target, configure({ default: { [knob]: 5, latency: 10 * ms } })),
          (error: unknown) =>
            error instanceof UnsupportedNetworkFeatureError &&
            error.knob === `default.${knob}` &&
            error.feature === 'sch_netem' &&
            error.message.includes('sch_netem'),
        );
      }
    }
    const measured = await throughput(a, b, 2_000);
    assert.ok(Math.abs(measured - 10) <= 1, `the earlier 10 Mbit/s still holds: ${measured.toFixed(2)}`);
    assert.deepEqual(warnings, []);
  });
});

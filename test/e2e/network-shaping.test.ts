/**
 * Network emulation on local:docker, measured (issue 8's acceptance): plans/network through the real CLI,
 * daemon (with its LinuxNetworkShaper) and Docker engine, real traffic between two containers.
 * - bandwidth 10 and 50 Mbit/s: TCP throughput from the first instance to the second within ± 10 %;
 * - latency 50 and 100 ms ± 10 ms jitter: the UDP round trip's median within ± 10 % of 2 × latency (both
 *   instances delay their own egress, so a round trip crosses two delayed links);
 * - loss 10 %: between 7 and 13 % of ≥ 5,000 UDP datagrams lost.
 * One task per case, its settings as [[runs]], so the plan is built once for both. Each figure is printed
 * as `network-fidelity …` for the README.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  assertSucceeded,
  assertWithin,
  figure,
  mbit,
  measurementOf,
  NetworkE2e,
  report,
} from './network-fidelity.ts';
import { connectEngine } from '../docker/docker-fixtures.ts';
import { scratchDir, startDaemonProcess, type DaemonProcess } from '../helpers/processes.ts';

describe('network shaping on local:docker, measured between two containers', () => {
  let e2e: NetworkE2e;
  let daemon: DaemonProcess | undefined;
  let scratch: Awaited<ReturnType<typeof scratchDir>> | undefined;
  before(async () => {
    scratch = await scratchDir('network-shaping');
    daemon = await startDaemonProcess({ home: path.join(scratch.dir, 'home') });
    e2e = new NetworkE2e({ daemon, engine: await connectEngine(), dir: scratch.dir });
  });
  after(async () => {
    await daemon?.stop();
    await scratch?.remove();
  });

  it('limits TCP throughput to 10 and 50 Mbit/s within ± 10 %', async () => {
    const rates = [10, 50];
    const run = await e2e.run({
      plan: 'network',
      testCase: 'bandwidth',
      groups: { single: 2 },
      params: { duration: '6s', warmup: '1s' },
      runs: rates.map((rate) => ({ id: `bw${rate}`, params: { bandwidth: `${rate}Mbit` } })),
    });
    assertSucceeded(run);
    for (const rate of rates) {
      const measured = mbit(figure(measurementOf(run, `bw${rate}`), 'bitsPerSecond'));
      report('bandwidth', `${rate}Mbit/s`, measured, 'Mbit/s');
      assertWithin(measured, rate, 0.1, `TCP throughput shaped to ${rate} Mbit/s`);
    }
  });

  it('delays by 50 and 100 ms ± 10 ms jitter: the median round trip is 2 × latency ± 10 %', async () => {
    const latencies = [50, 100];
    const run = await e2e.run({
      plan: 'network',
      testCase: 'latency',
      groups: { single: 2 },
      params: { jitter: '10ms', pings: 150, interval: '20ms' },
      runs: latencies.map((latency) => ({ id: `lat${latency}`, params: { latency: `${latency}ms` } })),
    });
    assertSucceeded(run);
    for (const latency of latencies) {
      const measurement = measurementOf(run, `lat${latency}`);
      const median = figure(measurement, 'medianRttMs');
      report(
        'latency',
        `${latency}ms±10ms`,
        `rtt-median ${median} p10 ${figure(measurement, 'p10RttMs')} p90 ${figure(measurement, 'p90RttMs')}`,
        'ms',
      );
      assert.equal(figure(measurement, 'answered'), figure(measurement, 'sent'), 'every ping answered');
      assertWithin(median, 2 * latency, 0.1, `median round trip with ${latency} ms on each egress`);
      // Jitter is applied: the round trips spread, not all at 2 × latency.
      assert.ok(
        figure(measurement, 'p90RttMs') - figure(measurement, 'p10RttMs') >= 5,
        `jitter spreads the round trips: ${JSON.stringify(measurement)}`,
      );
    }
  });

  it('drops 10 % of UDP datagrams: between 7 and 13 % of 6000 lost', async () => {
    const run = await e2e.run({
      plan: 'network',
      testCase: 'loss',
      groups: { single: 2 },
      params: { loss: 10, packets: 6000 },
    });
    assertSucceeded(run);
    const measurement = measurementOf(run);
    const lost = figure(measurement, 'lossPercent');
    report('loss', '10%', lost, `% of ${figure(measurement, 'sent')} datagrams`);
    assert.ok(figure(measurement, 'sent') >= 5000);
    assert.ok(lost >= 7 && lost <= 13, `loss ${lost} % is between 7 and 13 %`);
  });

  it('leaves no container or network behind', async () => {
    assert.deepEqual(await e2e.leftovers(), []);
  });
});

/**
 * Who reaches whom on local:docker (issue 8's acceptance), plans/network through the real CLI, daemon and
 * Docker engine:
 * - partition: group a drops group b's traffic (0 datagrams arrive, TCP connects time out), then rejects it
 *   (refused in < 100 ms), then heals (traffic again); the sync service answers in every phase;
 * - routing: deny_all cannot reach the host on another network (the docker0 bridge's address) nor through
 *   the gateways of the run's control and data networks, allow_all can; both reach their peer;
 * - per-link: the first instance's link to the second shaped to 10 Mbit/s, its link to the third not.
 * Only addresses of this machine are ever tried.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
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

const execFileAsync = promisify(execFile);

interface Phase {
  udpReceived: number;
  tcp: { result: string; elapsedMs: number };
  syncRoundTripMs: number;
}

/**
 * An IPv4 address of this host on a network no run uses: the default Docker bridge's. Read with `ip`:
 * Node's os.networkInterfaces() leaves out a bridge without containers (not RUNNING).
 */
async function hostBridgeAddress(): Promise<string> {
  const { stdout } = await execFileAsync('ip', ['-4', '-o', 'addr', 'show', 'dev', 'docker0']).catch(() => ({
    stdout: '',
  }));
  const address = /inet ([\d.]+)\//.exec(stdout)?.[1];
  assert.ok(
    address,
    'this test needs the docker0 bridge (an address of the host outside the run networks); is dockerd running?',
  );
  return address;
}

describe('partitions, routing policies and per-link shaping on local:docker', () => {
  let e2e: NetworkE2e;
  let daemon: DaemonProcess | undefined;
  let scratch: Awaited<ReturnType<typeof scratchDir>> | undefined;
  let listener: net.Server | undefined;
  before(async () => {
    scratch = await scratchDir('network-topology');
    daemon = await startDaemonProcess({ home: path.join(scratch.dir, 'home') });
    e2e = new NetworkE2e({ daemon, engine: await connectEngine(), dir: scratch.dir });
  });
  after(async () => {
    listener?.close();
    await daemon?.stop();
    await scratch?.remove();
  });

  it('partitions a from b (drop, then reject), heals, and keeps the sync service reachable throughout', async () => {
    const run = await e2e.run({
      plan: 'network',
      testCase: 'partition',
      groups: { a: 1, b: 1 },
      params: { from: 'a', to: 'b', probes: 100 },
    });
    assertSucceeded(run);
    const phases = measurementOf(run).phases as Record<string, Phase>;
    for (const [name, phase] of Object.entries(phases)) {
      report(
        'partition',
        name,
        `udp ${phase.udpReceived}/100 tcp ${phase.tcp.result} ${phase.tcp.elapsedMs}ms sync ${phase.syncRoundTripMs}ms`,
      );
      assert.ok(Number.isFinite(phase.syncRoundTripMs), `the sync service answered during ${name}`);
    }
    assert.equal(phases.baseline?.udpReceived, 100);
    assert.equal(phases.baseline?.tcp.result, 'connected');
    assert.equal(phases.drop?.udpReceived, 0, 'drop: no datagram arrives');
    assert.equal(phases.drop?.tcp.result, 'timeout', 'drop: silence');
    assert.equal(phases.reject?.udpReceived, 0, 'reject: no datagram arrives');
    assert.equal(phases.reject?.tcp.result, 'refused');
    assert.ok((phases.reject?.tcp.elapsedMs ?? Infinity) < 100, 'reject: refused in < 100 ms');
    assert.equal(phases.healed?.udpReceived, 100, 'healed: traffic again');
    assert.equal(phases.healed?.tcp.result, 'connected');
  });

  it('deny_all cannot reach the host’s other networks; allow_all reaches the daemon host', async () => {
    const host = await hostBridgeAddress();
    // On every address of the host: the control network's gateway (also the host) exists only once the
    // run does. It accepts and closes, nothing more, for the few seconds of the runs.
    listener = net.createServer((socket) => socket.end());
    await new Promise<void>((resolve) => listener?.listen(0, '0.0.0.0', resolve));
    const port = (listener.address() as net.AddressInfo).port;
    const target = `${host}:${port}`;
    const run = await e2e.run({
      plan: 'network',
      testCase: 'routing',
      groups: { single: 2 },
      params: { target, timeout: '2s', gateway_port: port },
      runs: ['deny_all', 'allow_all'].map((policy) => ({ id: policy.replace('_', '-'), params: { policy } })),
    });
    assertSucceeded(run);
    type Attempt = Phase['tcp'] & { target: string };
    const outcome = (name: string): Record<'outside' | 'controlGateway' | 'dataGateway' | 'peer', string> => {
      const measurement = measurementOf(run, name);
      const gateways = measurement.gateways as Record<'control' | 'data', Attempt>;
      const outside = measurement.outside as Attempt;
      const peer = measurement.peer as Attempt;
      report(
        'routing',
        measurement.policy as string,
        `docker0 ${target} ${outside.result}, control-gateway ${gateways.control.target} ${gateways.control.result}, data-gateway ${gateways.data.target} ${gateways.data.result}, peer ${peer.result}`,
      );
      return {
        outside: outside.result,
        controlGateway: gateways.control.result,
        dataGateway: gateways.data.result,
        peer: peer.result,
      };
    };
    const denied = outcome('deny-all');
    assert.notEqual(denied.outside, 'connected', `deny_all reached ${target}`);
    assert.notEqual(
      denied.controlGateway,
      'connected',
      'deny_all reached the host through the control network',
    );
    assert.equal(denied.peer, 'connected', 'deny_all still reaches its peer on the data network');
    // The data network's gateway is an address of TEST_SUBNET but the host's: deny_all cuts it too.
    assert.notEqual(denied.dataGateway, 'connected', 'deny_all reached the host through the data network');
    assert.deepEqual(outcome('allow-all'), {
      outside: 'connected',
      controlGateway: 'connected',
      dataGateway: 'connected',
      peer: 'connected',
    });
  });

  it('shapes one link only: a→b at 10 Mbit/s while a→c is unlimited', async () => {
    const run = await e2e.run({
      plan: 'network',
      testCase: 'per-link',
      groups: { single: 3 },
      params: { bandwidth: '10Mbit', duration: '5s', warmup: '1s' },
    });
    assertSucceeded(run);
    const measurement = measurementOf(run);
    const shaped = mbit(figure(measurement, 'shapedLink.bitsPerSecond'));
    const unshaped = mbit(figure(measurement, 'unshapedLink.bitsPerSecond'));
    report('per-link', 'a→b 10Mbit/s', shaped, 'Mbit/s');
    report('per-link', 'a→c unlimited', unshaped, 'Mbit/s');
    assertWithin(shaped, 10, 0.1, 'the shaped link');
    assert.ok(unshaped > 30, `the unshaped link runs well above 10 Mbit/s: ${unshaped} Mbit/s`);
  });

  it('leaves no container or network behind', async () => {
    assert.deepEqual(await e2e.leftovers(), []);
  });
});

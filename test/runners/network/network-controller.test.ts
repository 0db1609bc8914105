/**
 * NetworkController against a real sync service, with our SDK's NetworkClient as the instances and a fake
 * shaper behind the real interface: topics read from their beginning, configurations applied in order per
 * instance and in parallel across instances, callbacks signalled once per configuration, and the failure
 * rule (refused, named, never signalled).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { perfectLink, type NetworkConfig } from '../../../core/contract/network-config.ts';
import { networkTopic } from '../../../core/contract/well-known.ts';
import {
  NetworkController,
  summarize,
  type NetworkRefusal,
} from '../../../runners/network/network-controller.ts';
import {
  UnsupportedNetworkFeatureError,
  type NetworkTarget,
} from '../../../runners/network/network-shaper.ts';
import { NetworkClient, type NetworkRunEnv } from '../../../sdk/network-client.ts';
import { connectSyncClient, type SyncClient } from '../../../sdk/sync-client.ts';
import { startSyncService, type SyncService } from '../../../sync/sync-service.ts';
import { MemoryTaskLog } from '../../helpers/memory-task-log.ts';
import { FakeNetworkShaper } from './fake-network-shaper.ts';

const testLimits = { timeout: 15_000 };
const dataSubnet = '10.192.16.0/20';

let service: SyncService;
const clients: SyncClient[] = [];
let runCounter = 0;

before(async () => {
  service = await startSyncService();
});
after(async () => {
  await Promise.all(clients.map((client) => client.close()));
  await service.close();
});

/** A fresh run on the shared service: the daemon's client and a way to make instances. */
async function newRun(instanceCount: number) {
  runCounter += 1;
  const scope = { runId: `run${runCounter}`, plan: 'network', testCase: 'case' };
  const connect = async (): Promise<SyncClient> => {
    const client = await connectSyncClient({ host: '127.0.0.1', port: service.port, ...scope });
    clients.push(client);
    return client;
  };
  const daemonClient = await connect();
  const log = new MemoryTaskLog();
  const shaper = new FakeNetworkShaper();
  const refusals: NetworkRefusal[] = [];
  const controller = new NetworkController({ sync: daemonClient, shaper, log });
  const targetOf = (label: string): NetworkTarget => ({
    label,
    namespace: { kind: 'pid', pid: 4242 },
    dataInterface: 'eth1',
    dataSubnet,
    keepReachable: [{ subnet: '10.208.0.0/20' }],
  });
  const serve = (label: string, hostname: string, target = async () => targetOf(label)): void =>
    controller.serve({ label, hostname, target, onRefused: (refusal) => refusals.push(refusal) });
  const instance = async (hostname: string, group = 'single') => {
    const client = await connect();
    const messages: string[] = [];
    const runenv: NetworkRunEnv = {
      testSidecar: true,
      testInstanceCount: instanceCount,
      testSubnet: dataSubnet,
      testGroupId: group,
      recordMessage: (message) => messages.push(message),
      recordStageStart: () => undefined,
      recordStageEnd: () => undefined,
    };
    return { client, messages, network: new NetworkClient(client, runenv, { hostname: () => hostname }) };
  };
  return { daemonClient, controller, shaper, log, refusals, serve, instance, connect, targetOf };
}

/** Resolves once `probe` holds, polling; fails the test after `timeoutMs`. */
async function eventually(what: string, probe: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('NetworkController', { concurrency: true }, () => {
  it(
    'applies each instance’s configurations in order and releases configureNetwork once every instance has its own',
    testLimits,
    async () => {
      const run = await newRun(2);
      run.serve('single[0]', 'single-0');
      run.serve('single[1]', 'single-1');
      const a = await run.instance('single-0');
      const b = await run.instance('single-1');
      await Promise.all([
        a.network.configureNetwork({ default: { latency: '50ms', jitter: '10ms', bandwidth: '10Mbit' } }),
        b.network.configureNetwork({ default: { loss: 10 }, routingPolicy: 'allow_all' }),
      ]);
      await Promise.all([
        a.network.configureNetwork({ callbackState: 'second', default: { latency: 100_000_000 } }),
        b.network.configureNetwork({ callbackState: 'second' }),
      ]);
      const first = run.shaper.appliedTo('single[0]');
      assert.deepEqual(
        first.map((config) => [config.callbackState, config.default.latency, config.default.bandwidth]),
        [
          ['network-configured-1', 50_000_000, 10_000_000],
          ['second', 100_000_000, 0],
        ],
      );
      assert.equal(first[0]?.default.jitter, 10_000_000);
      assert.equal(first[0]?.routingPolicy, 'deny_all', 'the original’s default');
      const second = run.shaper.appliedTo('single[1]');
      assert.deepEqual(
        second.map((config) => [config.callbackState, config.default.loss, config.routingPolicy]),
        [
          ['network-configured-1', 10, 'allow_all'],
          ['second', 0, 'deny_all'],
        ],
      );
      assert.deepEqual(run.shaper.applied[0]?.target, run.targetOf(run.shaper.applied[0]!.target.label));
      // Exactly one signal per instance and configuration: one more makes three.
      assert.equal(await run.daemonClient.signalEntry('network-configured-1'), 3);
      assert.equal(await run.daemonClient.signalEntry('second'), 3);
      assert.match(
        run.log.text(),
        /^single\[0\]: network configured \(latency 50ms ±10ms bandwidth 10Mbit\/s, deny_all\); signalled network-configured-1$/m,
      );
      await run.controller.close();
      assert.deepEqual(run.shaper.released.map((target) => target.label).sort(), ['single[0]', 'single[1]']);
    },
  );

  it(
    'applies a configuration published before the instance was served (topics replay from the start)',
    testLimits,
    async () => {
      const run = await newRun(1);
      const early = await run.instance('early-0');
      const configured = early.network.configureNetwork({ default: { bandwidth: '50Mbit' } });
      // The configuration is on the topic before the controller reads it.
      const reader = run.daemonClient.subscribe(networkTopic('early-0'));
      await reader.next();
      reader.cancel();
      run.serve('single[0]', 'early-0');
      await configured;
      assert.equal(run.shaper.appliedTo('single[0]')[0]?.default.bandwidth, 50_000_000);
      await run.controller.close();
    },
  );

  it(
    'serves instances in parallel: a slow application for one does not hold another',
    testLimits,
    async () => {
      const run = await newRun(1);
      let releaseSlow = (): void => {};
      run.shaper.behaviour = (target) =>
        target.label === 'slow[0]' ? new Promise<void>((resolve) => (releaseSlow = resolve)) : undefined;
      run.serve('slow[0]', 'slow-0');
      run.serve('fast[0]', 'fast-0');
      const slow = await run.instance('slow-0');
      const fast = await run.instance('fast-0');
      const slowDone = slow.network.configureNetwork({ callbackState: 'slow', callbackTarget: 1 });
      await fast.network.configureNetwork({ callbackState: 'fast', callbackTarget: 1 });
      assert.deepEqual(
        run.shaper.applied.map((entry) => entry.target.label),
        ['fast[0]'],
      );
      releaseSlow();
      await slowDone;
      await run.controller.close();
    },
  );

  for (const { name, payload, keys } of [
    {
      name: 'a fractional latency',
      payload: { default: { latency: 1.5 } },
      keys: ['default.latency'],
    },
    {
      name: 'filter 7',
      payload: { rules: [{ subnet: '10.192.16.5/32', filter: 7 }] },
      keys: ['rules[0].filter'],
    },
    { name: 'an unknown key', payload: { default: { latency: 0 }, bandwidth: 5 }, keys: ['bandwidth'] },
  ]) {
    it(`refuses ${name}, naming the key, and never signals its callback`, testLimits, async () => {
      const run = await newRun(1);
      run.serve('peers[3]', 'peers-3');
      const raw = await run.connect();
      await raw.publish(networkTopic('peers-3'), { callback_state: 'configured', ...payload });
      await raw.publish(networkTopic('peers-3'), { callback_state: 'after', default: { latency: 5 } });
      await eventually('the refusal', () => run.refusals.length > 0);
      assert.equal(run.refusals.length, 1);
      const [refusal] = run.refusals;
      assert.equal(refusal?.label, 'peers[3]');
      assert.deepEqual(refusal?.keys, keys);
      assert.match(
        refusal?.reason ?? '',
        new RegExp(`^network configuration refused: ${keys[0]?.replace(/[[\]]/g, '\\$&')}: `),
      );
      assert.match(
        run.log.text(),
        new RegExp(`^ERROR peers\\[3\\]: ${refusal?.reason.replace(/[[\]().*+?|{}^$\\]/g, '\\$&')}$`, 'm'),
      );
      // Nothing was applied, the callback was never signalled, and the later configuration was not read.
      assert.equal(run.shaper.applied.length, 0);
      assert.equal(await raw.signalEntry('configured'), 1);
      assert.equal(await raw.signalEntry('after'), 1);
      await run.controller.close();
    });
  }

  it(
    'refuses a knob the host lacks with the shaper’s own words: the key and the missing feature',
    testLimits,
    async () => {
      const run = await newRun(1);
      run.shaper.behaviour = (_target, config) => {
        if (config.default.duplicate > 0) {
          throw new UnsupportedNetworkFeatureError(
            'default.duplicate',
            'sch_netem',
            'load the sch_netem module',
          );
        }
      };
      run.serve('peers[0]', 'peers-0');
      const peer = await run.instance('peers-0');
      // It never returns: its callback is never signalled.
      peer.network.configureNetwork({ default: { duplicate: 5 } }).catch(() => undefined);
      await eventually('the refusal', () => run.refusals.length > 0);
      assert.deepEqual(run.refusals[0]?.keys, ['default.duplicate']);
      assert.equal(
        run.refusals[0]?.reason,
        'network configuration refused: default.duplicate needs sch_netem, which this host lacks; load the sch_netem module',
      );
      await run.controller.close();
    },
  );

  it(
    'refuses every configuration when it has no shaper, and when the namespace cannot be reached',
    testLimits,
    async () => {
      const run = await newRun(1);
      const bare = new NetworkController({ sync: run.daemonClient, shaper: undefined, log: run.log });
      const refusals: NetworkRefusal[] = [];
      bare.serve({
        label: 'a[0]',
        hostname: 'bare-0',
        target: async () => run.targetOf('a[0]'),
        onRefused: (refusal) => refusals.push(refusal),
      });
      run.serve('b[0]', 'lost-0', () => Promise.reject(new Error('cannot read /proc/77/net/route: ENOENT')));
      const raw = await run.connect();
      await raw.publish(networkTopic('bare-0'), { callback_state: 'x' });
      await raw.publish(networkTopic('lost-0'), { callback_state: 'x' });
      await eventually('both refusals', () => refusals.length > 0 && run.refusals.length > 0);
      assert.match(
        refusals[0]?.reason ?? '',
        /^network configuration refused: this daemon has no network shaper/,
      );
      assert.equal(
        run.refusals[0]?.reason,
        "network configuration refused: cannot reach the instance's network namespace: cannot read /proc/77/net/route: ENOENT",
      );
      await Promise.all([bare.close(), run.controller.close()]);
    },
  );

  it(
    'stops reading an instance it released, even in the middle of an application, and reports nothing for it',
    testLimits,
    async () => {
      const run = await newRun(1);
      let failSlowly: (() => void) | undefined;
      run.shaper.behaviour = () =>
        new Promise<void>((_resolve, reject) => {
          failSlowly = () => reject(new Error('Cannot open network namespace'));
        });
      run.serve('gone[0]', 'gone-0');
      const raw = await run.connect();
      await raw.publish(networkTopic('gone-0'), { callback_state: 'x' });
      await eventually('the application to start', () => failSlowly !== undefined);
      const released = run.controller.release('gone-0');
      failSlowly?.();
      await released;
      assert.deepEqual(run.refusals, [], 'an instance that ended is not refused for its vanished namespace');
      assert.deepEqual(
        run.shaper.released.map((target) => target.label),
        ['gone[0]'],
      );
      // Released twice, or never served: nothing happens.
      await run.controller.release('gone-0');
      await run.controller.release('never-served');
    },
  );

  it(
    'does not refuse an instance that exited by itself before its configuration could be applied',
    testLimits,
    async () => {
      const run = await newRun(1);
      let attempts = 0;
      let asked = 0;
      run.shaper.behaviour = () => {
        attempts += 1;
        throw new Error('nsenter: cannot open /proc/887/ns/net: No such file or directory');
      };
      let running = true;
      const refusals: NetworkRefusal[] = [];
      for (const hostname of ['exited-0', 'alive-0']) {
        run.controller.serve({
          label: hostname,
          hostname,
          target: async () => run.targetOf(hostname),
          onRefused: (refusal) => refusals.push(refusal),
          running: async () => {
            asked += 1;
            return hostname === 'alive-0' ? true : running;
          },
        });
      }
      running = false;
      const raw = await run.connect();
      await raw.publish(networkTopic('exited-0'), { callback_state: 'x' });
      await raw.publish(networkTopic('alive-0'), { callback_state: 'x' });
      await eventually('both to be tried, and asked whether they run', () => attempts === 2 && asked === 2);
      await eventually('the refusal of the live one', () => refusals.length > 0);
      await run.controller.close();
      assert.deepEqual(
        refusals.map((refusal) => [refusal.label, refusal.reason]),
        [
          [
            'alive-0',
            'network configuration refused: could not apply it: nsenter: cannot open /proc/887/ns/net: No such file or directory',
          ],
        ],
      );
    },
  );

  it('refuses to serve one hostname twice', testLimits, async () => {
    const run = await newRun(1);
    run.serve('a[0]', 'same');
    assert.throws(() => run.serve('b[0]', 'same'), /already serves hostname same \(a\[0\]\)/);
    await run.controller.close();
  });
});

describe('summarize', () => {
  const plain: NetworkConfig = {
    network: 'default',
    enable: true,
    default: { ...perfectLink },
    rules: [],
    callbackState: 'x',
    callbackTarget: 0,
    routingPolicy: 'deny_all',
    ipv4: '',
  };
  it('says what a configuration does in a few words', () => {
    assert.equal(
      summarize({
        ...plain,
        default: { ...perfectLink, latency: 100_000_000, bandwidth: 1_500_000, loss: 2.5 },
        rules: [{ ...perfectLink, subnet: '10.0.0.1/32', filter: 2 }],
        routingPolicy: 'allow_all',
        ingress: { ...perfectLink, bandwidth: 2_000_000_000 },
      }),
      'latency 100ms bandwidth 1.5Mbit/s loss 2.5%, 1 rule, ingress bandwidth 2Gbit/s, allow_all',
    );
    assert.equal(summarize({ ...plain, enable: false }), 'data interface down, deny_all');
    assert.equal(summarize(plain), 'no shaping, deny_all');
  });
});

import assert from 'node:assert/strict';
import type { NetworkInterfaceInfo } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { NetworkConfigError, parseNetworkConfig } from '../../core/contract/network-config.ts';
import { NetworkClient, type NetworkRunEnv, type NetworkSyncClient } from '../../sdk/network-client.ts';
import { connectSyncClient, type SyncClient } from '../../sdk/sync-client.ts';
import { TopicSubscription } from '../../sdk/topic-subscription.ts';
import { startSyncService, type SyncService } from '../../sync/sync-service.ts';

function fakes(sidecar: boolean): { runenv: NetworkRunEnv; calls: string[] } {
  const calls: string[] = [];
  const runenv: NetworkRunEnv = {
    testSidecar: sidecar,
    testInstanceCount: 7,
    testSubnet: '10.192.16.0/20',
    testGroupId: 'peers',
    recordMessage: (message) => calls.push(`message ${message}`),
    recordStageStart: (name) => calls.push(`stage_start ${name}`),
    recordStageEnd: (name) => calls.push(`stage_end ${name}`),
  };
  return { runenv, calls };
}

/** A sync client that records what it is asked and answers barriers with `barrier`. */
function recordingClient(
  barrier: (state: string, target: number) => Promise<void> = () => Promise.resolve(),
) {
  const calls: string[] = [];
  const published: { topic: string; payload: unknown }[] = [];
  const client: NetworkSyncClient = {
    barrier: (state, target) => {
      calls.push(`barrier ${state} ${target}`);
      return barrier(state, target);
    },
    publish: (topic, payload) => {
      calls.push(`publish ${topic}`);
      published.push({ topic, payload });
      return Promise.resolve(published.length);
    },
    subscribe: <T>() => new TopicSubscription<T>(() => undefined),
  };
  return { client, calls, published };
}

const interfaces = (entries: Record<string, string[]>): NodeJS.Dict<NetworkInterfaceInfo[]> =>
  Object.fromEntries(
    Object.entries(entries).map(([name, addresses]) => [
      name,
      addresses.map((address): NetworkInterfaceInfo => ({
        address,
        netmask: '255.255.240.0',
        family: 'IPv4',
        mac: '02:42:0a:c0:10:05',
        internal: name === 'lo',
        cidr: `${address}/20`,
      })),
    ]),
  );

describe('NetworkClient.waitNetworkInitialized', () => {
  it('returns at once without a sidecar, never touching the sync service', async () => {
    const { runenv, calls } = fakes(false);
    const client = new NetworkClient(
      recordingClient(() => Promise.reject(new Error('must not be called without a sidecar'))).client,
      runenv,
    );
    await client.waitNetworkInitialized();
    assert.deepEqual(calls, []);
  });

  it('waits on network-initialized for every instance of the run when a sidecar manages the network', async () => {
    const { runenv, calls } = fakes(true);
    let release = (): void => {};
    const sync = recordingClient(() => new Promise<void>((resolve) => (release = resolve)));
    const client = new NetworkClient(sync.client, runenv);
    let done = false;
    const waiting = client.waitNetworkInitialized().then(() => (done = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(done, false);
    release();
    await waiting;
    assert.deepEqual(sync.calls, ['barrier network-initialized 7']);
    assert.deepEqual(calls, [
      'stage_start network-initialized',
      'stage_end network-initialized',
      'message network initialisation successful',
    ]);
  });

  it('passes a failed barrier on', async () => {
    const { runenv } = fakes(true);
    const client = new NetworkClient(
      recordingClient(() => Promise.reject(new Error('connection lost'))).client,
      runenv,
    );
    await assert.rejects(client.waitNetworkInitialized(), { message: 'connection lost' });
  });
});

describe('NetworkClient.configureNetwork', () => {
  it('publishes the wire form on network:<hostname>, then waits on its callback state for every instance', async () => {
    const { runenv } = fakes(true);
    const sync = recordingClient();
    const client = new NetworkClient(sync.client, runenv, { hostname: () => 'peers-3' });
    await client.configureNetwork({
      default: { latency: '50ms', jitter: '10ms', bandwidth: '10Mbit' },
      rules: [{ subnet: '10.192.16.9/32', filter: 'drop' }],
      routingPolicy: 'allow_all',
    });
    await client.configureNetwork({ callbackState: 'mine', callbackTarget: 2 });
    await client.configureNetwork();
    assert.deepEqual(sync.calls, [
      'publish network:peers-3',
      'barrier network-configured-1 7',
      'publish network:peers-3',
      'barrier mine 2',
      'publish network:peers-3',
      'barrier network-configured-3 7',
    ]);
    // What the controller reads back is what was asked, in the original's units.
    const first = parseNetworkConfig(sync.published[0]?.payload);
    assert.equal(first.default.latency, 50_000_000);
    assert.equal(first.default.jitter, 10_000_000);
    assert.equal(first.default.bandwidth, 10_000_000);
    assert.deepEqual(
      first.rules.map((rule) => [rule.subnet, rule.filter]),
      [['10.192.16.9/32', 2]],
    );
    assert.equal(first.routingPolicy, 'allow_all');
    assert.equal(first.callbackState, 'network-configured-1');
    const payload = sync.published[0]?.payload as Record<string, unknown>;
    assert.equal(payload.callback_state, 'network-configured-1', 'snake_case on the wire');
  });

  it('throws a NetworkConfigError naming the key before publishing anything', async () => {
    const { runenv } = fakes(true);
    const sync = recordingClient();
    const client = new NetworkClient(sync.client, runenv, { hostname: () => 'peers-3' });
    await assert.rejects(
      client.configureNetwork({ default: { latency: '50 ms', loss: 120 } }),
      (error: NetworkConfigError) => {
        assert.ok(error instanceof NetworkConfigError);
        assert.deepEqual(
          error.problems.map((problem) => problem.path),
          ['default.latency', 'default.loss'],
        );
        assert.match(error.message, /default\.latency: "50 ms" is not a duration/);
        assert.match(error.message, /default\.loss: expected a percentage from 0 to 100, got 120/);
        return true;
      },
    );
    assert.deepEqual(sync.calls, []);
  });

  it('records a message and returns without a sidecar, as the official SDKs do', async () => {
    const { runenv, calls } = fakes(false);
    const sync = recordingClient();
    await new NetworkClient(sync.client, runenv).configureNetwork({ default: { latency: '10ms' } });
    assert.deepEqual(sync.calls, []);
    assert.match(
      calls.join('\n'),
      /ignoring the network configuration: this runner does not shape the network/,
    );
  });
});

describe('NetworkClient.getDataNetworkIP', () => {
  it('answers the address inside TEST_SUBNET, whatever the interface order', () => {
    const { runenv } = fakes(true);
    const client = new NetworkClient(recordingClient().client, runenv, {
      networkInterfaces: () => interfaces({ lo: ['127.0.0.1'], eth0: ['10.208.3.2'], eth1: ['10.192.16.5'] }),
    });
    assert.equal(client.getDataNetworkIP(), '10.192.16.5');
  });

  it('fails naming the subnet and the addresses it saw when a sidecar should have given one', () => {
    const { runenv } = fakes(true);
    const client = new NetworkClient(recordingClient().client, runenv, {
      networkInterfaces: () => interfaces({ lo: ['127.0.0.1'], eth0: ['10.208.3.2'] }),
    });
    assert.throws(
      () => client.getDataNetworkIP(),
      /no interface has an IPv4 address in the data subnet 10\.192\.16\.0\/20 \(TEST_SUBNET\); addresses: lo 127\.0\.0\.1, eth0 10\.208\.3\.2/,
    );
  });

  it('answers 127.0.0.1 without a sidecar (local:exec), as the official SDKs do', () => {
    const { runenv } = fakes(false);
    const client = new NetworkClient(recordingClient().client, runenv, {
      networkInterfaces: () => interfaces({ lo: ['127.0.0.1'], eth0: ['192.0.2.2'] }),
    });
    assert.equal(client.getDataNetworkIP(), '127.0.0.1');
  });
});

describe('NetworkClient.dataNetworkPeers and partition, against a real sync service', () => {
  let service: SyncService;
  const clients: SyncClient[] = [];
  before(async () => {
    service = await startSyncService();
  });
  after(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await service.close();
  });

  it('collects every instance’s address, and each group cuts only the other side', async () => {
    const members = [
      { group: 'a', ip: '10.192.16.2' },
      { group: 'a', ip: '10.192.16.3' },
      { group: 'b', ip: '10.192.16.4' },
      { group: 'c', ip: '10.192.16.5' },
    ];
    const instances = await Promise.all(
      members.map(async (member, index) => {
        const sync = await connectSyncClient({
          host: '127.0.0.1',
          port: service.port,
          runId: 'partition-run',
          plan: 'network',
          testCase: 'partition',
        });
        clients.push(sync);
        const published: unknown[] = [];
        const runenv: NetworkRunEnv = {
          ...fakes(true).runenv,
          testInstanceCount: members.length,
          testGroupId: member.group,
        };
        // The real client for the peers topic; the configuration is recorded, its barrier answered at once.
        const client = new NetworkClient(
          {
            publish: (topic, payload) => {
              if (topic.startsWith('network:')) published.push(payload);
              return sync.publish(topic, payload);
            },
            subscribe: (topic) => sync.subscribe(topic),
            barrier: () => Promise.resolve(),
          },
          runenv,
          {
            hostname: () => `${member.group}-${index}`,
            networkInterfaces: () => interfaces({ eth0: ['10.208.3.2'], eth1: [member.ip] }),
          },
        );
        return { client, published };
      }),
    );
    const peers = await Promise.all(instances.map(({ client }) => client.dataNetworkPeers()));
    for (const list of peers) {
      assert.deepEqual(
        list.map((peer) => peer.ip).sort(),
        members.map((member) => member.ip),
      );
    }
    assert.deepEqual(
      peers[0]?.find((peer) => peer.ip === '10.192.16.4'),
      { group: 'b', hostname: 'b-2', ip: '10.192.16.4' },
    );
    await Promise.all(
      instances.map(({ client }) =>
        client.partition({ from: 'a', to: 'b', mode: 'reject', base: { default: { latency: '5ms' } } }),
      ),
    );
    const rulesOf = (index: number): [string, number][] =>
      parseNetworkConfig(instances[index]?.published[0]).rules.map((rule) => [rule.subnet, rule.filter]);
    assert.deepEqual(rulesOf(0), [['10.192.16.4/32', 1]]);
    assert.deepEqual(rulesOf(1), [['10.192.16.4/32', 1]]);
    assert.deepEqual(
      rulesOf(2).sort(),
      [
        ['10.192.16.2/32', 1],
        ['10.192.16.3/32', 1],
      ],
      'a partition cuts both ways by default',
    );
    assert.deepEqual(rulesOf(3), [], 'an uninvolved group configures no rule, and still meets the barrier');
    assert.equal(
      parseNetworkConfig(instances[3]?.published[0]).default.latency,
      5_000_000,
      'the base applies',
    );
  });
});

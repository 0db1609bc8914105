import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NetworkConfigError } from '../../core/contract/network-config.ts';
import { bandwidthToBitsPerSecond } from '../../core/contract/units.ts';
import { toNetworkConfig } from '../../sdk/network-config-input.ts';
import { partitionRules, type DataNetworkPeer } from '../../sdk/network-partition.ts';

describe('bandwidthToBitsPerSecond', () => {
  it('reads tc’s bit units, bps as bits, and plain bits per second', () => {
    const cases: [string | number, number][] = [
      [0, 0],
      [10_000_000, 10_000_000],
      ['2500', 2500],
      ['10Mbit', 10_000_000],
      ['10mbit', 10_000_000],
      ['10 Mbit/s', 10_000_000],
      ['512kbit', 512_000],
      ['1.5Gbit', 1_500_000_000],
      ['1Mibit', 1_048_576],
      ['100Mbps', 100_000_000],
      ['64bit', 64],
      ['1Tbit', 1e12],
    ];
    for (const [input, bits] of cases) assert.equal(bandwidthToBitsPerSecond(input), bits, String(input));
  });

  it('refuses what it would have to guess: bytes, fractions of a bit, negative or unitless rates', () => {
    for (const input of [
      '10MB',
      '10MiB/s',
      '10 MB/s',
      '1.5bit',
      '1.5',
      '-1Mbit',
      '10/s',
      'fast',
      '10Mbps/s',
      -5,
      1.5,
    ]) {
      assert.equal(bandwidthToBitsPerSecond(input), undefined, String(input));
    }
  });
});

describe('toNetworkConfig', () => {
  it('converts units and names into the contract’s numbers, with the original’s defaults', () => {
    const config = toNetworkConfig(
      {
        default: { latency: '100ms', jitter: 10_000_000, bandwidth: '50Mbit', loss: 1.5 },
        rules: [
          { subnet: '10.192.16.7/32', filter: 'reject' },
          { subnet: '10.192.16.8/32', bandwidth: '10Mbit', latency: '1.5s' },
          { subnet: '10.192.16.9/32', filter: 2 },
        ],
        ingress: { bandwidth: '1Gbit' },
      },
      'fallback',
    );
    assert.deepEqual(
      [config.default.latency, config.default.jitter, config.default.bandwidth, config.default.loss],
      [100_000_000, 10_000_000, 50_000_000, 1.5],
    );
    assert.deepEqual(
      config.rules.map((rule) => [rule.subnet, rule.filter, rule.bandwidth, rule.latency]),
      [
        ['10.192.16.7/32', 1, 0, 0],
        ['10.192.16.8/32', 0, 10_000_000, 1_500_000_000],
        ['10.192.16.9/32', 2, 0, 0],
      ],
    );
    assert.equal(config.ingress?.bandwidth, 1_000_000_000);
    assert.equal(config.callbackState, 'fallback');
    assert.equal(config.network, 'default');
    assert.equal(config.enable, true);
    assert.equal(config.routingPolicy, 'deny_all');
    assert.equal(config.callbackTarget, 0);
  });

  it('reports every problem at once, each by its key', () => {
    assert.throws(
      () =>
        toNetworkConfig(
          {
            default: { latency: 1.5, bandwidth: '10MB' },
            rules: [{ subnet: 'nowhere', filter: 'block' as 'drop' }],
            routingPolicy: 'allow_some' as 'allow_all',
          },
          'x',
        ),
      (error: NetworkConfigError) => {
        assert.ok(error instanceof NetworkConfigError);
        assert.deepEqual(error.problems.map((problem) => problem.path).sort(), [
          'default.bandwidth',
          'default.latency',
          'routingPolicy',
          'rules[0].filter',
          'rules[0].subnet',
        ]);
        assert.match(
          error.message,
          /default\.latency: expected whole nanoseconds or a duration like "50ms", got 1\.5/,
        );
        assert.match(error.message, /default\.bandwidth: "10MB": use whole bits per second/);
        assert.match(error.message, /rules\[0\]\.filter: expected "accept", "reject" or "drop", got "block"/);
        return true;
      },
    );
  });
});

describe('partitionRules', () => {
  const peers: DataNetworkPeer[] = [
    { group: 'a', hostname: 'a-0', ip: '10.192.16.2' },
    { group: 'b', hostname: 'b-0', ip: '10.192.16.3' },
    { group: 'b', hostname: 'b-1', ip: '10.192.16.4' },
  ];

  it('cuts one way only when asked', () => {
    const options = { from: 'a', to: ['b'], mode: 'drop', bidirectional: false } as const;
    assert.deepEqual(partitionRules(peers, { group: 'a', ip: '10.192.16.2' }, options), [
      { subnet: '10.192.16.3/32', filter: 'drop' },
      { subnet: '10.192.16.4/32', filter: 'drop' },
    ]);
    assert.deepEqual(partitionRules(peers, { group: 'b', ip: '10.192.16.3' }, options), []);
  });

  it('never cuts an instance off from itself, even within a group on both sides', () => {
    assert.deepEqual(
      partitionRules(peers, { group: 'b', ip: '10.192.16.3' }, { from: 'b', to: 'b', mode: 'reject' }),
      [{ subnet: '10.192.16.4/32', filter: 'reject' }],
    );
  });

  it('fails on a group no instance is in, naming the run’s groups', () => {
    assert.throws(
      () => partitionRules(peers, { group: 'a', ip: '10.192.16.2' }, { from: 'a', to: ['c'], mode: 'drop' }),
      /partition to: no instance is in group c; the run's groups are a, b/,
    );
  });
});

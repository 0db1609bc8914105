import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  encodeNetworkConfig,
  NetworkConfigError,
  parseNetworkConfig,
  perfectLink,
  type NetworkConfig,
} from '../../../core/contract/network-config.ts';

const problemsOf = (value: unknown): string[] => {
  try {
    parseNetworkConfig(value);
  } catch (error) {
    assert.ok(error instanceof NetworkConfigError, String(error));
    return error.problems.map((problem) => `${problem.path}: ${problem.message}`);
  }
  assert.fail('expected the configuration to be refused');
};

describe('network configuration on the wire (CONTRACT §3)', () => {
  it('reads what the official JS SDK publishes, its `bandwith` spelling included', () => {
    // @testground/sdk@0.1.2 turns camelCase into snake_case and keeps IPv4/IPv6 as they are.
    const config = parseNetworkConfig({
      network: 'default',
      enable: true,
      default: { latency: 100_000_000, jitter: 0, bandwith: 10_000_000, loss: 0 },
      callback_state: 'network-configured',
      callback_target: 0,
      routing_policy: 'allow_all',
      IPv4: '',
      IPv6: '',
    });
    assert.equal(config.default.latency, 100_000_000);
    assert.equal(config.default.bandwidth, 10_000_000);
    assert.equal(config.routingPolicy, 'allow_all');
    assert.equal(config.callbackState, 'network-configured');
  });

  it('round-trips what our SDK encodes, rules and ingress included', () => {
    const config: NetworkConfig = {
      network: 'default',
      enable: true,
      default: { ...perfectLink, latency: 50_000_000, jitter: 5_000_000, loss: 10 },
      rules: [{ ...perfectLink, subnet: '16.0.2.0/24', filter: 2, bandwidth: 1_000_000 }],
      callbackState: 'shaped',
      callbackTarget: 4,
      routingPolicy: 'deny_all',
      ipv4: '16.0.1.7/16',
      ingress: { ...perfectLink, bandwidth: 5_000_000 },
    };
    assert.deepEqual(parseNetworkConfig(JSON.parse(JSON.stringify(encodeNetworkConfig(config)))), config);
  });

  it('treats a missing or unknown routing policy as deny_all, as the original did', () => {
    assert.equal(parseNetworkConfig({ callback_state: 's' }).routingPolicy, 'deny_all');
    assert.equal(
      parseNetworkConfig({ callback_state: 's', routing_policy: 'maybe' }).routingPolicy,
      'deny_all',
    );
  });

  it('refuses bad values and unknown keys, naming each', () => {
    const problems = problemsOf({
      callback_state: 's',
      default: { latency: 1.5, loss: 120, latencyy: 3 },
      rules: [{ subnet: '16.0.0.0/33', filter: 7 }],
      bogus: true,
    });
    assert.deepEqual(problems.map((problem) => problem.slice(0, problem.indexOf(':'))).sort(), [
      'bogus',
      'default.latency',
      'default.latencyy',
      'default.loss',
      'rules[0].filter',
      'rules[0].subnet',
    ]);
    assert.ok(
      problems.some((problem) => /default\.latency: expected whole nanoseconds .* got 1\.5/.test(problem)),
    );
    assert.ok(
      problems.some((problem) =>
        /rules\[0\]\.filter: expected 0 \(accept\), 1 \(reject\) or 2 \(drop\), got 7/.test(problem),
      ),
    );
    assert.match(problemsOf({}).join('\n'), /callback_state: expected the name of the state to signal/);
  });
});

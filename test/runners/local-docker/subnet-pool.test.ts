import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gatewayOf, parseCidr, subnetCandidates } from '../../../runners/local-docker/subnet-pool.ts';

describe('subnet pool', () => {
  it('yields every subnet of the pool exactly once, aligned, from a seed-dependent start', () => {
    const all = [...subnetCandidates({ cidr: '10.192.0.0/12', subnetPrefix: 20 }, 'run-a')];
    assert.equal(all.length, 256);
    assert.equal(new Set(all).size, 256);
    for (const subnet of all) {
      const { base, prefix } = parseCidr(subnet);
      assert.equal(prefix, 20);
      assert.equal(base % 4096, 0);
      assert.ok(subnet.startsWith('10.19') || subnet.startsWith('10.20'), subnet);
    }
    assert.ok(all.includes('10.192.0.0/20') && all.includes('10.207.240.0/20'));
    const other = [...subnetCandidates({ cidr: '10.192.0.0/12', subnetPrefix: 20 }, 'run-b')];
    assert.notEqual(all[0], other[0], 'different runs start at different subnets');
    assert.deepEqual(
      [...subnetCandidates({ cidr: '10.192.0.0/12', subnetPrefix: 20 }, 'run-a')],
      all,
      'deterministic',
    );
  });

  it('computes the gateway and rejects malformed or unaligned pools with a hint', () => {
    assert.equal(gatewayOf('10.192.16.0/20'), '10.192.16.1');
    assert.throws(() => parseCidr('10.192.0.1/12'), /not aligned.*10\.192\.0\.0/);
    assert.throws(() => parseCidr('10.300.0.0/16'), /not an IPv4 CIDR/);
    assert.throws(
      () => [...subnetCandidates({ cidr: '10.0.0.0/16', subnetPrefix: 12 }, 'x')],
      /does not fit/,
    );
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  bridgeAlias,
  cidrsOverlap,
  maxNetnsInstances,
  netnsBlockCandidates,
  netnsLayout,
  netnsShortId,
  parseBridgeAlias,
  shortIdOfLink,
  shortIdOfNetns,
} from '../../../runners/netns/netns-layout.ts';

describe('netns layout', () => {
  it('splits a /19 into the data and control /20s, gateways first, instances after', () => {
    const layout = netnsLayout('run-1', 3, '10.172.160.0/19');
    const shortId = netnsShortId('run-1');
    assert.match(shortId, /^[0-9a-f]{7}$/);
    assert.deepEqual(
      { ...layout, instances: layout.instances.length },
      {
        runId: 'run-1',
        shortId,
        dataBridge: `tg${shortId}`,
        controlBridge: `tg${shortId}c`,
        dataSubnet: '10.172.160.0/20',
        dataGateway: '10.172.160.1',
        controlSubnet: '10.172.176.0/20',
        controlGateway: '10.172.176.1',
        instances: 3,
      },
    );
    assert.deepEqual(layout.instances[2], {
      index: 2,
      netns: `tg-${shortId}-2`,
      hostname: `tg-${shortId}-2`,
      dataVeth: `tg${shortId}d2`,
      controlVeth: `tg${shortId}c2`,
      dataAddress: '10.172.160.4',
      controlAddress: '10.172.176.4',
    });
  });

  it('keeps every interface name within Linux’s 15 characters, up to the last address of the subnet', () => {
    const layout = netnsLayout('a run with a long name', maxNetnsInstances, '10.160.0.0/19');
    const last = layout.instances.at(-1)!;
    assert.equal(last.dataAddress, '10.160.15.254', 'the broadcast address .255 is not given out');
    for (const name of [layout.dataBridge, layout.controlBridge, last.dataVeth, last.controlVeth]) {
      assert.ok(name.length <= 15, `${name} is ${name.length} characters`);
    }
    assert.throws(
      () => netnsLayout('r', maxNetnsInstances + 1, '10.160.0.0/19'),
      /4094 instances do not fit in a \/20 data subnet; run_config.network = "netns" takes at most 4093/,
    );
  });

  it('tells its own names from anyone else’s', () => {
    for (const name of ['tg1a2b3c4', 'tg1a2b3c4c', 'tg1a2b3c4d0', 'tg1a2b3c4c4092']) {
      assert.equal(shortIdOfLink(name), '1a2b3c4', name);
    }
    for (const name of [
      'docker0',
      'tg1a2b3c',
      'tg1a2b3c4x',
      'tg1a2b3c4d',
      'br-1a2b3c4d5e6f',
      'veth1a2b3c4',
    ]) {
      assert.equal(shortIdOfLink(name), undefined, name);
    }
    assert.equal(shortIdOfNetns('tg-1a2b3c4-17'), '1a2b3c4');
    for (const name of ['tg-1a2b3c4', 'tA', 'tg-1a2b3c4-x', 'tg-run-1']) {
      assert.equal(shortIdOfNetns(name), undefined, name);
    }
  });

  it('marks bridges with the daemon and the run, in characters ip -batch takes, within IFALIASZ', () => {
    assert.deepEqual(parseBridgeAlias(bridgeAlias('d1a2', 'task1-run "x"')), {
      daemonId: 'd1a2',
      runId: 'task1-run__x_',
    });
    assert.equal(bridgeAlias('d', 'r'.repeat(400)).length, 255);
    assert.equal(parseBridgeAlias('some other bridge'), undefined);
  });

  it('offers every /19 of 10.160.0.0/11 once, none inside Docker’s 10.192.0.0/12', () => {
    const blocks = [...netnsBlockCandidates('run-1')];
    assert.equal(blocks.length, 256);
    assert.equal(new Set(blocks).size, 256);
    assert.ok(blocks.every((block) => cidrsOverlap(block, '10.160.0.0/11')));
    assert.ok(blocks.every((block) => !cidrsOverlap(block, '10.192.0.0/12')));
    assert.notEqual(blocks[0], [...netnsBlockCandidates('run-2')][0], 'runs start at different blocks');
  });

  it('finds overlaps between subnets and host routes', () => {
    assert.equal(cidrsOverlap('10.160.0.0/19', '10.0.0.0/8'), true);
    assert.equal(cidrsOverlap('10.160.0.0/19', '10.160.31.255'), true);
    assert.equal(cidrsOverlap('10.160.0.0/19', '10.160.32.0/20'), false);
    assert.equal(cidrsOverlap('10.160.0.0/19', '192.168.0.0/16'), false);
  });
});

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import {
  findDataInterface,
  interfaceForSubnet,
  parseRouteTable,
} from '../../../runners/local-docker/data-interface.ts';
import { assignHostnames } from '../../../runners/local-docker/instance-hostnames.ts';

// A container on two networks, as /proc/<pid>/net/route shows it on a little-endian host: the data
// network (10.250.0.0/24) is eth1 although it was the network the container was created on.
const routeTable = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0100FB0A\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth1\t0000FA0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth0\t0000FB0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
`;

describe('the data interface of a container', () => {
  it('is the interface whose link route is the data subnet', () => {
    const routes = parseRouteTable(routeTable, 'LE');
    assert.equal(interfaceForSubnet(routes, '10.250.0.0/24'), 'eth1');
    assert.equal(interfaceForSubnet(routes, '10.251.0.0/24'), 'eth0');
    assert.equal(interfaceForSubnet(routes, '10.250.0.0/20'), undefined, 'the prefix must match too');
  });

  it('reads big-endian hosts’ tables in their own byte order', () => {
    const routes = parseRouteTable(
      'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\nnet1\t0AC01000\t00000000\t0001\t0\t0\t0\tFFFFF000\n',
      'BE',
    );
    assert.equal(interfaceForSubnet(routes, '10.192.16.0/20'), 'net1');
  });

  it('says why when there is none, or the process cannot be seen', async () => {
    await assert.rejects(
      findDataInterface(42, '10.192.16.0/20', async () => routeTable),
      /no interface of process 42 has a route for the data subnet 10\.192\.16\.0\/20 \(interfaces with routes: eth0, eth1\)/,
    );
    await assert.rejects(
      findDataInterface(42, '10.192.16.0/20', () => Promise.reject(new Error('ENOENT: no such file'))),
      /cannot read \/proc\/42\/net\/route \(ENOENT: no such file\); the daemon must see the host's processes/,
    );
    await assert.rejects(findDataInterface(0, '10.192.16.0/20'), /has no running process \(pid 0\)/);
  });

  it('is found in this very process’s namespace', async () => {
    // The loopback route is not a link route in /proc/net/route; any interface with an IPv4 link route will do.
    const routes = parseRouteTable(await readFile('/proc/self/net/route', 'utf8'));
    const link = routes.find((route) => route.destination !== 0);
    if (link === undefined) return;
    const prefix = 32 - Math.log2(2 ** 32 - link.mask);
    const subnet = `${[24, 16, 8, 0].map((shift) => (link.destination >>> shift) & 255).join('.')}/${prefix}`;
    assert.equal(await findDataInterface(process.pid, subnet), link.iface);
  });
});

describe('assignHostnames', () => {
  it('names each instance <group>-<index>, as a valid DNS label', () => {
    assert.deepEqual(
      assignHostnames([
        { group: 'peers', index: 0 },
        { group: 'peers', index: 1 },
        { group: 'Big_Group.v2', index: 0 },
        { group: '--', index: 3 },
      ]),
      ['peers-0', 'peers-1', 'big-group-v2-0', 'instance-3'],
    );
  });

  it('keeps hostnames unique when groups read alike, and short enough', () => {
    const long = 'g'.repeat(80);
    const names = assignHostnames([
      { group: 'a_b', index: 0 },
      { group: 'a.b', index: 0 },
      { group: 'a-b', index: 0 },
      { group: long, index: 12 },
    ]);
    assert.deepEqual(names.slice(0, 3), ['a-b-0', 'a-b-0-2', 'a-b-0-3']);
    assert.equal(names[3], `${'g'.repeat(60)}-12`);
    for (const name of names)
      assert.ok(name.length <= 63 && /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name), name);
  });
});

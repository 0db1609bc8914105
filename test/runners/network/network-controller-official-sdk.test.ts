/**
 * The official `@testground/sdk` (0.1.2) configuring its network against our NetworkController, unchanged:
 * it publishes camelCase keys made snake_case (and spells bandwidth `bandwith`) on `network:<os.hostname()>`,
 * then waits on the callback state. Its own process (node --test runs each file apart): the SDK reads the
 * sync service's address from process.env and writes a file named `stdout` into the working directory.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import tg from '@testground/sdk';
import { NetworkController, type NetworkRefusal } from '../../../runners/network/network-controller.ts';
import { connectSyncClient, type SyncClient } from '../../../sdk/sync-client.ts';
import { startSyncService, type SyncService } from '../../../sync/sync-service.ts';
import { MemoryTaskLog } from '../../helpers/memory-task-log.ts';
import { FakeNetworkShaper } from './fake-network-shaper.ts';

const testLimits = { timeout: 15_000 };

describe('the official SDK’s configureNetwork against our network controller', () => {
  let service: SyncService;
  let workDir: string;
  let daemonClient: SyncClient;
  const originalCwd = process.cwd();
  const officialClients: { close: () => void }[] = [];

  before(async () => {
    service = await startSyncService();
    workDir = await mkdtemp(path.join(os.tmpdir(), 'tg-official-network-'));
    process.chdir(workDir);
    process.env.SYNC_SERVICE_HOST = '127.0.0.1';
    process.env.SYNC_SERVICE_PORT = String(service.port);
    process.env.LOG_LEVEL = 'error';
    daemonClient = await connectSyncClient({
      host: '127.0.0.1',
      port: service.port,
      runId: 'official-run',
      plan: 'network-official',
      testCase: 'ping-pong',
    });
  });

  after(async () => {
    for (const client of officialClients) client.close();
    await daemonClient.close();
    await service.close();
    process.chdir(originalCwd);
    await rm(workDir, { recursive: true, force: true });
  });

  it('applies its configuration and releases its callback barrier', testLimits, async () => {
    const shaper = new FakeNetworkShaper();
    const refusals: NetworkRefusal[] = [];
    const controller = new NetworkController({ sync: daemonClient, shaper, log: new MemoryTaskLog() });
    // The official SDK publishes on network:<os.hostname()>: the one hostname this process has.
    controller.serve({
      label: 'single[0]',
      hostname: os.hostname(),
      target: async () => ({
        label: 'single[0]',
        namespace: { kind: 'pid', pid: process.pid },
        dataInterface: 'eth0',
        dataSubnet: '10.192.16.0/20',
        keepReachable: [],
      }),
      onRefused: (refusal) => refusals.push(refusal),
    });
    const runenv = tg.runtime.parseRunEnv({
      TEST_RUN: 'official-run',
      TEST_PLAN: 'network-official',
      TEST_CASE: 'ping-pong',
      TEST_GROUP_ID: 'single',
      TEST_INSTANCE_COUNT: '1',
      TEST_GROUP_INSTANCE_COUNT: '1',
      TEST_SUBNET: '10.192.16.0/20',
      TEST_SIDECAR: 'true',
    });
    const client = await tg.sync.newBoundClient(runenv);
    officialClients.push(client);
    const network = tg.network.newClient(client, runenv);
    // Written as the SDK's README and its types have it (ALLOW_ALL, `bandwith`, nanoseconds).
    await network.configureNetwork({
      network: 'default',
      enable: true,
      default: {
        latency: 50 * 1e6,
        jitter: 10 * 1e6,
        bandwith: 10_000_000,
        loss: 0,
        corrupt: 0,
        corruptCorr: 0,
        reorder: 0,
        reorderCorr: 0,
        duplicate: 0,
        duplicateCorr: 0,
      },
      callbackState: 'latency-configured',
      callbackTarget: 0,
      routingPolicy: tg.network.ALLOW_ALL,
      IPv4: '',
      IPv6: '',
    });
    assert.deepEqual(refusals, []);
    const [applied] = shaper.appliedTo('single[0]');
    assert.ok(applied, 'the controller applied it');
    assert.equal(applied.default.latency, 50_000_000);
    assert.equal(applied.default.jitter, 10_000_000);
    assert.equal(applied.default.bandwidth, 10_000_000, '`bandwith` is the bandwidth');
    assert.equal(applied.routingPolicy, 'allow_all');
    assert.equal(applied.callbackState, 'latency-configured');
    await controller.close();
  });
});

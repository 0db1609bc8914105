/**
 * A process that runs the netns-check plan's `stall` case in namespaces through a LocalExecRunner and
 * never ends by itself: the stand-in for a daemon that is SIGKILLed during a run.
 *
 * Usage: node --import tsx netns-runner-child.ts <scratch> <runId> <bundle path>
 */
import path from 'node:path';
import { LocalExecRunner } from '../../../runners/local-exec/local-exec-runner.ts';
import { SyncServiceBundle } from '../../../runners/sync-service-bundle.ts';
import { FakeNetworkShaper } from '../network/fake-network-shaper.ts';
import { netnsRunInput, silentLogger } from './netns-runs.ts';

const [scratch, runId, bundlePath] = process.argv.slice(2);
if (!scratch || !runId || !bundlePath)
  throw new Error('usage: netns-runner-child.ts <scratch> <runId> <bundle>');
const runner = new LocalExecRunner({
  logger: silentLogger,
  syncService: new SyncServiceBundle(path.join(scratch, 'sync-service')),
  daemonId: 'test',
  networkShaper: new FakeNetworkShaper(),
});
const input = await netnsRunInput({
  runId,
  testCase: 'stall',
  groups: { single: 2 },
  bundle: { kind: 'bundle', path: bundlePath, cached: true },
  scratch,
});
await runner.run(input);

// The network controller under a storm: every instance publishes its configuration at once and measures
// publish → callback, the wait a plan sees in configureNetwork.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { invokeMap, NetworkClient, type RunEnv, type SyncClientApi } from 'testground-sdk';

async function configure(runenv: RunEnv, client: SyncClientApi): Promise<void> {
  const network = new NetworkClient(client, runenv);
  await network.waitNetworkInitialized();
  // Start together: the storm is the point.
  await client.signalAndWait('initialized', runenv.testInstanceCount);
  const started = performance.now();
  await network.configureNetwork({
    default: { latency: `${runenv.durationParam('latency')}ms`, bandwidth: runenv.stringParam('bandwidth') },
  });
  const configureMs = performance.now() - started;
  writeFileSync(path.join(runenv.testOutputsPath, 'configure.json'), JSON.stringify({ configureMs }));
  runenv.recordMessage(`configured in ${configureMs.toFixed(1)} ms`);
  await client.signalAndWait('done', runenv.testInstanceCount);
}

await invokeMap({ configure });

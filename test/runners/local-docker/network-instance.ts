/**
 * The instance the local:docker network tests run (bundled with our SDK into an image): what it does is
 * named by its group. `shape`: configures its network (waiting for the whole run's) and reports its hostname
 * and data address.
 * `refuse`: publishes a configuration the controller must refuse, then waits for its callback (forever,
 * unless the run ends it). `wait`: waits at a barrier nobody else reaches.
 */
import os from 'node:os';
import { networkTopic } from '../../../core/contract/well-known.ts';
import { invoke, NetworkClient } from '../../../sdk/index.ts';

await invoke(async (runenv, client) => {
  const network = new NetworkClient(client, runenv);
  await network.waitNetworkInitialized();
  switch (runenv.testGroupId) {
    case 'shape':
      // The callback state is shared: with the default target (every instance) none goes on before its own
      // configuration is in effect, as a target of 1 would let it on another's.
      await network.configureNetwork({ default: { latency: '20ms', bandwidth: '10Mbit' } });
      runenv.recordMessage(`configured: host ${os.hostname()} data ${network.getDataNetworkIP()}`);
      return;
    case 'refuse':
      await client.publish(networkTopic(os.hostname()), {
        callback_state: 'refused',
        default: { latency: 1.5 },
      });
      await client.barrier('refused', 1);
      return;
    default:
      await client.barrier('never', 1_000);
  }
});

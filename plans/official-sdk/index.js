// Written only against the official @testground/sdk (CommonJS, from npm), exactly as its users write
// plans, to show that our daemon and sync service serve them unchanged.
import sdk from '@testground/sdk';

const { invokeMap, network } = sdk;

// The SDK connects a sync client only for functions that declare two parameters.
async function syncCase(runenv, client) {
  await network.newClient(client, runenv).waitNetworkInitialized();
  const total = runenv.testInstanceCount;

  const seq = await client.signalEntry('entered');
  runenv.recordMessage(`my sequence ID: ${seq}`);
  const barrier = await client.barrier('entered', total);
  await barrier.wait;
  runenv.recordMessage(`all ${total} instances entered`);

  const { sub } = await client.publishSubscribe('peers', { group: runenv.testGroupId, seq });
  const seen = new Set();
  for await (const peer of sub.wait) {
    seen.add(peer.seq);
    if (seen.size === total) break;
  }
  sub.cancel();
  if (seen.size !== total) {
    throw new Error(`the peers topic ended after ${seen.size} of ${total} peers`);
  }
  runenv.recordMessage(`received all ${total} peers`);
}

// The SDK rejects (and records nothing) for an unknown TEST_CASE; say so instead of an unhandled rejection.
invokeMap({ sync: syncCase }).catch((error) => {
  process.stderr.write(`official-sdk plan: ${error.message}\n`);
  process.exitCode = 1;
});

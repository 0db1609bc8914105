import { invokeMap, type RunEnv, type SyncClientApi } from 'testground-sdk';

// The seed's example: the first instance to enrol leads, and releases the others once all are ready.
async function sync(runenv: RunEnv, client: SyncClientApi): Promise<void> {
  const seq = await client.signalEntry('enrolled');
  runenv.recordMessage(`my sequence ID: ${seq}`);

  if (seq === 1) {
    runenv.recordMessage("i'm the leader.");
    const followers = runenv.testInstanceCount - 1;
    runenv.recordMessage(`waiting for ${followers} followers to be ready`);
    await client.barrier('ready', followers);
    runenv.recordMessage('all followers are ready; releasing them');
    await client.signalEntry('released');
  } else {
    runenv.recordMessage("i'm a follower.");
    await client.signalEntry('ready');
    runenv.recordMessage('waiting to be released');
    await client.barrier('released', 1);
    runenv.recordMessage('i have been released');
  }
  runenv.recordMessage('done');
}

interface Peer {
  group: string;
  seq: number;
}

// Every instance announces itself on a topic and reads it until it knows every instance of the run.
async function pubsub(runenv: RunEnv, client: SyncClientApi): Promise<void> {
  const seq = await client.signalEntry('peers-enrolled');
  const { subscription } = await client.publishSubscribe<Peer>('peers', { group: runenv.testGroupId, seq });
  runenv.recordMessage(`published myself as peer ${seq} of group ${runenv.testGroupId}`);

  const seen = new Set<number>();
  for await (const peer of subscription) {
    seen.add(peer.seq);
    if (seen.size === runenv.testInstanceCount) break;
  }
  if (seen.size !== runenv.testInstanceCount) {
    throw new Error(`the peers topic ended after ${seen.size} of ${runenv.testInstanceCount} peers`);
  }
  runenv.recordMessage(`received all ${seen.size} peers`);
}

await invokeMap({ sync, pubsub });

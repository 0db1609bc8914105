import { invokeMap, NetworkClient, type RunEnv, type SyncClientApi } from 'testground-sdk';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// What the seed's SDK (sdk-go's run.InvokeMap) does before every test case: wait until the network side
// has set up every instance's network (at once where there is none, like local:exec without
// run_config.network = "netns"), then claim a global and a group sequence number.
async function initialize(runenv: RunEnv, client: SyncClientApi): Promise<void> {
  runenv.recordMessage('waiting for network to initialize');
  await new NetworkClient(client, runenv).waitNetworkInitialized();
  runenv.recordMessage('network initialization complete');
  const globalSeq = await client.signalEntry('initialized_global');
  const groupSeq = await client.signalEntry(`initialized_group_${runenv.testGroupId}`);
  runenv.recordMessage(
    `claimed sequence numbers; global=${globalSeq}, group(${runenv.testGroupId})=${groupSeq}`,
  );
}

// The seed's example: the first instance to enrol leads. Followers get ready after a random 0–4 s; the
// leader waits until all are, counts "ready…", "set…" (1 s, then 5 s) and releases them. `sleep_scale`
// multiplies every sleep (1, the default, is the seed's timing).
async function sync(runenv: RunEnv, client: SyncClientApi): Promise<void> {
  await initialize(runenv, client);
  const secondMs = 1_000 * runenv.floatParam('sleep_scale');

  const seq = await client.signalEntry('enrolled');
  runenv.recordMessage(`my sequence ID: ${seq}`);

  if (seq === 1) {
    runenv.recordMessage("i'm the leader.");
    const followers = runenv.testInstanceCount - 1;
    runenv.recordMessage(`waiting for ${followers} instances to become ready`);
    await client.barrier('ready', followers);
    runenv.recordMessage('the followers are all ready');
    runenv.recordMessage('ready...');
    await sleep(1 * secondMs);
    runenv.recordMessage('set...');
    await sleep(5 * secondMs);
    runenv.recordMessage('go, release followers!');
    await client.signalEntry('released');
    return;
  }

  const seconds = Math.floor(Math.random() * 5);
  runenv.recordMessage(`i'm a follower; signalling ready after ${seconds} seconds`);
  await sleep(seconds * secondMs);
  runenv.recordMessage('follower signalling now');
  await client.signalEntry('ready');
  await client.barrier('released', 1);
  runenv.recordMessage('i have been released');
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

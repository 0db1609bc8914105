import { invokeMap, type RunEnv, type SyncClientApi } from 'testground-sdk';

interface Ball {
  round: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function pingPong(runenv: RunEnv, client: SyncClientApi): Promise<void> {
  const role = runenv.stringParam('role');
  const rounds = runenv.intParam('rounds');
  const holdMs = runenv.durationParam('hold');
  const others = runenv.testInstanceCount - runenv.testGroupInstanceCount;
  if (others !== runenv.testGroupInstanceCount) {
    throw new Error(
      `group ${runenv.testGroupId} has ${runenv.testGroupInstanceCount} instances and the other group ${others}; ` +
        'give both groups as many instances, so that each ping has a pong',
    );
  }

  // Each instance draws a number within its role: ping 1 plays pong 1, ping 2 plays pong 2, ...
  const pair = await client.signalEntry(`joined-${role}`);
  // Nobody starts before every instance has its partner.
  await client.signalAndWait('paired', runenv.testInstanceCount);
  runenv.recordMessage(`${role} ${pair} is at the table`);

  const opposite = role === 'ping' ? 'pong' : 'ping';
  const incoming = client.subscribe<Ball>(`to-${role}-${pair}`);
  const roundTrip = runenv.metrics.histogram('round_trip', 'ms');
  for (let round = 1; round <= rounds; round += 1) {
    const sentAt = performance.now();
    if (role === 'ping') await client.publish(`to-${opposite}-${pair}`, { round });
    const { value: ball, done } = await incoming.next();
    if (done || ball.round !== round) {
      throw new Error(`${role} ${pair} expected ball ${round} and got ${done ? 'none' : ball.round}`);
    }
    if (role === 'ping') {
      roundTrip.record(performance.now() - sentAt);
    } else {
      await sleep(holdMs);
      await client.publish(`to-${opposite}-${pair}`, ball);
    }
  }
  incoming.cancel();
  runenv.recordMessage(`${role} ${pair} played ${rounds} rounds`);
}

await invokeMap({ 'ping-pong': pingPong });

import { invokeMap, type RunEnv } from 'testground-sdk';

// Long enough to outlast any run timeout; only keeps the process alive, nothing waits for it.
const stallTickMs = 60_000;

await invokeMap({
  ok: (runenv: RunEnv) => {
    runenv.recordMessage('placebo: nothing to do');
  },

  failure: () => {
    throw new Error('placebo failure');
  },

  // Thrown from a timer, outside the test case's promise: only the SDK's crash handler can see it.
  crash: () =>
    new Promise<void>(() => {
      setTimeout(() => {
        throw new Error('placebo crash');
      }, 10);
    }),

  // A pending promise alone would let Node exit (the SDK would call that a crash); the timer keeps it up.
  stall: () =>
    new Promise<void>(() => {
      setInterval(() => {}, stallTickMs);
    }),

  // Grows past any small memory limit (run it with a group memory limit, e.g. 64MiB, on local:docker):
  // the kernel's OOM killer ends it, and the runner reports that rather than a plain crash.
  oom: (runenv: RunEnv) => {
    const held: Buffer[] = [];
    for (let mib = 0; mib < 256; mib += 1) held.push(Buffer.alloc(1024 * 1024, mib));
    runenv.recordMessage(`placebo: holding ${held.length} MiB`);
  },

  // Outlives a cluster node killed under it (cluster:swarm's tests), then succeeds.
  sleep: async (runenv: RunEnv) => {
    await new Promise((resolve) => setTimeout(resolve, runenv.intParam('seconds') * 1_000));
    runenv.recordMessage('placebo: slept');
  },

  // Leaves before the SDK can record how the test case ended.
  'no-outcome': () => {
    process.exit(0);
  },
});

/**
 * Runs a plan's test case as one instance: records `start`, runs it, records how it ended, and exits
 * with a code that agrees with the recorded outcome.
 */
import { describeThrown } from './event-recorder.ts';
import { LazySyncClient, type SyncClientApi } from './lazy-sync-client.ts';
import { parseRunEnv, type RunEnv, type RunEnvOptions } from './runenv.ts';
import { connectSyncClient } from './sync-client.ts';
import { syncClientOptionsFor } from './sync-connect.ts';

/** A test case: resolve to succeed, throw to fail. The sync client connects when first used. */
export type TestCase = (runenv: RunEnv, client: SyncClientApi) => Promise<void> | void;

/** What {@link runTestCase} needs from the outside world; {@link invoke} passes the real process. */
export interface RunTestCaseDeps {
  env: NodeJS.ProcessEnv;
  /** Opens the sync connection; called on the test case's first sync operation, if any. */
  connect: (runenv: RunEnv) => Promise<SyncClientApi>;
  /** Registers `onCrash` for errors that escape the test case, for the rest of the process's life. */
  watchCrashes: (onCrash: (error: unknown) => void) => void;
  writeStderr: (text: string) => void;
  runEnvOptions?: RunEnvOptions;
  /** How long closing the sync client may take before the instance exits anyway; default 2000 ms. */
  closeTimeoutMs?: number;
}

const defaultCloseTimeoutMs = 2_000;

/** The metrics.out point recorded when the sync connection opens: its `ts` is when, its value how long it took. */
export const syncConnectMark = 'sync:connect';

type Verdict = { outcome: 'ok' } | { outcome: 'failure' | 'crash'; error: unknown };

/**
 * Runs one test case and records its outcome; resolves with the exit code the instance should end with:
 * 0 when success was recorded, 1 otherwise. Does not exit.
 */
export async function runTestCase(testCase: TestCase, deps: RunTestCaseDeps): Promise<number> {
  let runenv: RunEnv;
  try {
    runenv = parseRunEnv(deps.env, deps.runEnvOptions);
    runenv.recordStart();
  } catch (error) {
    deps.writeStderr(`testground-sdk: cannot start the test case: ${describeThrown(error).message}\n`);
    return 1;
  }
  // The instance's lifecycle marks, for any plan: when its sync connection opened (`sync:connect`, how long
  // opening it took) and when each barrier released it (`barrier:<state>`, how long it waited), as points
  // in metrics.out whose `ts` is the moment. Benchmarks read a run's phases from them.
  const recordMark = (name: string, ms: number): void => {
    try {
      runenv.metrics.recordPoint(name, ms, 'ms');
    } catch {
      // A measurement that cannot be written never fails the operation it measured.
    }
  };
  const client = new LazySyncClient(
    async () => {
      const started = performance.now();
      const connected = await deps.connect(runenv);
      recordMark(syncConnectMark, performance.now() - started);
      return connected;
    },
    (state, waitedMs) => recordMark(`barrier:${state}`, waitedMs),
  );

  let decided = false;
  const crashed = new Promise<Verdict>((resolve) => {
    deps.watchCrashes((error) => {
      if (!decided) {
        resolve({ outcome: 'crash', error });
        return;
      }
      // The outcome stands: this comes from work the test case left running (e.g. a request the
      // closing sync client rejected), not from the test itself.
      const { message, stack } = describeThrown(error);
      deps.writeStderr(`testground-sdk: error after the outcome was recorded: ${stack || message}\n`);
    });
  });

  const verdict = await Promise.race([runCase(testCase, runenv, client), crashed]);
  decided = true;
  if (verdict.outcome === 'ok') runenv.recordSuccess();
  else if (verdict.outcome === 'failure') runenv.recordFailure(verdict.error);
  else runenv.recordCrash(verdict.error);

  await closeWithin(client, deps.closeTimeoutMs ?? defaultCloseTimeoutMs, deps.writeStderr);
  // The test case may have recorded its own outcome before returning; that one was kept.
  return runenv.recordedOutcome === 'ok' ? 0 : 1;
}

async function runCase(testCase: TestCase, runenv: RunEnv, client: SyncClientApi): Promise<Verdict> {
  try {
    await testCase(runenv, client);
    return { outcome: 'ok' };
  } catch (error) {
    return { outcome: 'failure', error };
  }
}

async function closeWithin(
  client: SyncClientApi,
  timeoutMs: number,
  writeStderr: (text: string) => void,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  try {
    const result = await Promise.race([client.close().then(() => 'closed' as const), timedOut]);
    if (result === 'timeout') {
      writeStderr(`testground-sdk: the sync client did not close within ${timeoutMs} ms; exiting anyway\n`);
    }
  } catch (error) {
    writeStderr(`testground-sdk: could not close the sync client: ${describeThrown(error).message}\n`);
  } finally {
    clearTimeout(timer);
  }
}

/** A test case that runs the one of `cases` named by `TEST_CASE`, and fails naming the known ones otherwise. */
export function dispatchTestCase(cases: Readonly<Record<string, TestCase>>): TestCase {
  return (runenv, client) => {
    const testCase = Object.hasOwn(cases, runenv.testCase) ? cases[runenv.testCase] : undefined;
    if (testCase === undefined) {
      const known = Object.keys(cases);
      throw new Error(
        `unknown test case ${JSON.stringify(runenv.testCase)}; this plan has: ${known.length > 0 ? known.join(', ') : 'no test cases'}`,
      );
    }
    return testCase(runenv, client);
  };
}

/**
 * Runs `testCase` as this instance and exits the process: code 0 after recording success, 1 after a
 * failure (the test case threw) or a crash (an uncaught exception or unhandled rejection).
 */
export async function invoke(testCase: TestCase): Promise<never> {
  const code = await runTestCase(testCase, {
    env: process.env,
    connect: (runenv) => connectSyncClient(syncClientOptionsFor(runenv)),
    watchCrashes: watchProcessCrashes,
    writeStderr: (text) => void process.stderr.write(text),
  });
  // Where stdout is asynchronous (pipes on Windows, a slow terminal), process.exit() drops queued
  // writes; the events must reach the runner.
  await Promise.all([drain(process.stdout), drain(process.stderr)]);
  process.exit(code);
}

/** {@link invoke} for a plan with several test cases: runs the one named by `TEST_CASE`. */
export function invokeMap(cases: Readonly<Record<string, TestCase>>): Promise<never> {
  return invoke(dispatchTestCase(cases));
}

function watchProcessCrashes(onCrash: (error: unknown) => void): void {
  process.on('uncaughtException', (error) => onCrash(error));
  process.on('unhandledRejection', (reason) => onCrash(reason));
  // Node would otherwise exit 0 here with the test case still pending, and no outcome recorded.
  process.on('beforeExit', () =>
    onCrash(
      new Error(
        'the test case never finished: nothing was left to run while it was still pending (it awaits a promise that can never settle)',
      ),
    ),
  );
}

function drain(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    // The callback of an empty write runs once everything queued before it is written (or failed).
    stream.write('', () => resolve());
  });
}

/**
 * The run environment an instance gets from its runner (CONTRACT §2), typed test params, and the event
 * recording methods plans call.
 */
import { tmpdir } from 'node:os';
import { parseInstanceEnv, RunEnvError, type InstanceEnvironment } from '../core/contract/instance-env.ts';
import { byteSizeHint, byteSizeToBytes, durationHint, durationToMs } from '../core/contract/units.ts';
import type { RunEnvSummary } from '../core/contract/events.ts';
import { describeThrown, EventRecorder, type EventRecorderOptions } from './event-recorder.ts';
import { Metrics } from './metrics.ts';

/** Everything the runner tells an instance, parsed and checked (CONTRACT §2). */
export type RunParams = InstanceEnvironment;

export { RunEnvError };

/** A test param is missing or does not hold a value of the requested type. */
export class TestParamError extends Error {
  readonly code = 'test_param_invalid';
  readonly param: string;
  readonly value: string | undefined;

  constructor(message: string, param: string, value: string | undefined) {
    super(message);
    this.name = 'TestParamError';
    this.param = param;
    this.value = value;
  }
}

/** Options of {@link parseRunEnv}, for tests. */
export interface RunEnvOptions {
  /** Where event lines go besides `run.out`; default stdout. */
  writeStdout?: EventRecorderOptions['writeStdout'];
  /** Unix time in nanoseconds stamped on events. */
  clock?: EventRecorderOptions['clock'];
  /** Used for `testStartTime` when `TEST_START_TIME` is not set; default the current time. */
  now?: () => Date;
}

/**
 * Reads and checks the instance environment. Throws a {@link RunEnvError} naming every missing or
 * invalid variable at once.
 */
export function parseRunParams(env: NodeJS.ProcessEnv, now: () => Date = () => new Date()): RunParams {
  return parseInstanceEnv(env, { now, tempDir: tmpdir() });
}

/**
 * The environment of one test instance: what the runner passed in (CONTRACT §2), typed test params,
 * and the methods that record events. Create it with {@link parseRunEnv}.
 */
export class RunEnv implements RunParams {
  readonly testPlan: string;
  readonly testCase: string;
  readonly testRun: string;
  readonly testInstanceCount: number;
  readonly testGroupId: string;
  readonly testGroupInstanceCount: number;
  readonly testInstanceParams: Record<string, string>;
  readonly testInstanceRole: string;
  readonly testRepo: string;
  readonly testBranch: string;
  readonly testTag: string;
  readonly testOutputsPath: string;
  readonly testTempPath: string;
  readonly testSidecar: boolean;
  readonly testSubnet: string;
  readonly testStartTime: Date;
  readonly testDisableMetrics: boolean;
  readonly syncServiceHost: string;
  readonly syncServicePort: number;
  /** Counters, gauges, histograms and timers, written to `$TEST_OUTPUTS_PATH/metrics.out`. */
  readonly metrics: Metrics;
  private readonly recorder: EventRecorder;

  constructor(params: RunParams, recorder: EventRecorder, metrics?: Metrics) {
    this.testPlan = params.testPlan;
    this.testCase = params.testCase;
    this.testRun = params.testRun;
    this.testInstanceCount = params.testInstanceCount;
    this.testGroupId = params.testGroupId;
    this.testGroupInstanceCount = params.testGroupInstanceCount;
    this.testInstanceParams = { ...params.testInstanceParams };
    this.testInstanceRole = params.testInstanceRole;
    this.testRepo = params.testRepo;
    this.testBranch = params.testBranch;
    this.testTag = params.testTag;
    this.testOutputsPath = params.testOutputsPath;
    this.testTempPath = params.testTempPath;
    this.testSidecar = params.testSidecar;
    this.testSubnet = params.testSubnet;
    this.testStartTime = params.testStartTime;
    this.testDisableMetrics = params.testDisableMetrics;
    this.syncServiceHost = params.syncServiceHost;
    this.syncServicePort = params.syncServicePort;
    this.recorder = recorder;
    this.metrics = metrics ?? new Metrics({ outputsPath: params.testOutputsPath });
  }

  /** Whether the test param is set. */
  hasParam(name: string): boolean {
    return Object.hasOwn(this.testInstanceParams, name);
  }

  /** The test param's text; throws a {@link TestParamError} when it is not set. */
  stringParam(name: string): string {
    const value = this.paramText(name);
    if (value === undefined) {
      const known = Object.keys(this.testInstanceParams);
      throw new TestParamError(
        `test param ${JSON.stringify(name)} is not set (set params: ${known.length > 0 ? known.join(', ') : 'none'}); give it a default in manifest.toml, or set it in the composition (test_params) or with --test-param ${name}=… on run single`,
        name,
        undefined,
      );
    }
    return value;
  }

  /** The test param as a safe integer, e.g. `42` or `-3`. */
  intParam(name: string): number {
    const text = this.stringParam(name);
    const value = Number(text);
    if (!/^[+-]?\d+$/.test(text.trim()) || !Number.isSafeInteger(value)) {
      throw this.typeError(name, text, 'an integer');
    }
    return value;
  }

  /** The test param as a finite number, e.g. `0.25` or `1e3`. */
  floatParam(name: string): number {
    const text = this.stringParam(name);
    const value = Number(text);
    if (text.trim() === '' || !Number.isFinite(value)) throw this.typeError(name, text, 'a number');
    return value;
  }

  /** The test param as a boolean: `true`/`false` (also `1`/`0`, `t`/`f`, any case, as Go's ParseBool). */
  booleanParam(name: string): boolean {
    const text = this.stringParam(name);
    switch (text.trim().toLowerCase()) {
      case 'true':
      case 't':
      case '1':
        return true;
      case 'false':
      case 'f':
      case '0':
        return false;
      default:
        throw this.typeError(name, text, 'a boolean (true or false)');
    }
  }

  /**
   * The test param as a duration in milliseconds, written as the manifest's `duration` type and Go's
   * `time.ParseDuration` do: `500ms`, `30s`, `1h30m`, `1.5s` (may be fractional below a millisecond).
   * A bare number is refused: seconds or milliseconds would be a guess.
   */
  durationParam(name: string): number {
    const text = this.stringParam(name);
    const ms = durationToMs(text);
    if (ms === undefined) throw this.typeError(name, text, 'a duration', durationHint);
    return ms;
  }

  /**
   * The test param as a size in whole bytes, written as the manifest's `size` type: a plain number of
   * bytes, or `512MiB`, `1GiB`, `64MB`, `100k` (k/KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024).
   */
  sizeParam(name: string): number {
    const text = this.stringParam(name);
    const bytes = byteSizeToBytes(text);
    if (bytes === undefined) throw this.typeError(name, text, 'a byte size', byteSizeHint);
    return bytes;
  }

  /** The test param parsed as JSON; the shape is the caller's claim, not checked. */
  jsonParam<T = unknown>(name: string): T {
    const text = this.stringParam(name);
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      throw this.typeError(name, text, `JSON (${(error as Error).message})`);
    }
  }

  /** The outcome recorded so far: `ok`, `failure`, `crash`, or undefined while none is. */
  get recordedOutcome(): 'ok' | 'failure' | 'crash' | undefined {
    return this.recorder.outcome;
  }

  /** Records the `start` event; {@link invoke} does this before running the test case. */
  recordStart(): void {
    this.recorder.record({ type: 'start', runenv: this.summary() });
  }

  /** Records an informational message. */
  recordMessage(message: string): void {
    this.recorder.record({ type: 'message', message });
  }

  /** Records the start of a named stage of the test. */
  recordStageStart(name: string): void {
    this.recorder.record({ type: 'stage_start', name, group: this.testGroupId });
  }

  /** Records the end of a named stage of the test. */
  recordStageEnd(name: string): void {
    this.recorder.record({ type: 'stage_end', name, group: this.testGroupId });
  }

  /** Records one measurement at this moment in `metrics.out` (the original's `R().RecordPoint`). */
  recordPoint(name: string, value: number, unit?: string): void {
    this.metrics.recordPoint(name, value, unit);
  }

  /** Records that this instance succeeded; ignored once an outcome is recorded. */
  recordSuccess(): void {
    this.recorder.record({ type: 'finish', outcome: 'ok' });
  }

  /** Records that this instance failed; ignored once an outcome is recorded. */
  recordFailure(error: unknown): void {
    this.recorder.record({ type: 'finish', outcome: 'failure', error: describeThrown(error).message });
  }

  /** Records that this instance crashed; ignored once an outcome is recorded. */
  recordCrash(error: unknown): void {
    const { message, stack } = describeThrown(error);
    this.recorder.record({ type: 'finish', outcome: 'crash', error: message, stacktrace: stack });
  }

  private paramText(name: string): string | undefined {
    return Object.hasOwn(this.testInstanceParams, name) ? this.testInstanceParams[name] : undefined;
  }

  private typeError(name: string, text: string, expected: string, hint?: string): TestParamError {
    return new TestParamError(
      `test param ${JSON.stringify(name)} must be ${expected}, got ${JSON.stringify(text)}${hint === undefined ? '' : `; ${hint}`}`,
      name,
      text,
    );
  }

  private summary(): RunEnvSummary {
    return {
      plan: this.testPlan,
      case: this.testCase,
      run: this.testRun,
      params: { ...this.testInstanceParams },
      instances: this.testInstanceCount,
      outputs_path: this.testOutputsPath,
      network: this.testSubnet,
      group: this.testGroupId,
      group_instances: this.testGroupInstanceCount,
    };
  }
}

/**
 * Parses the instance environment into a {@link RunEnv} whose events go to stdout and
 * `$TEST_OUTPUTS_PATH/run.out`. Throws a {@link RunEnvError} naming every missing or invalid variable.
 */
export function parseRunEnv(env: NodeJS.ProcessEnv, options: RunEnvOptions = {}): RunEnv {
  const params = parseRunParams(env, options.now);
  const recorder = new EventRecorder({
    runId: params.testRun,
    groupId: params.testGroupId,
    outputsPath: params.testOutputsPath,
    writeStdout: options.writeStdout,
    clock: options.clock,
  });
  const metrics = new Metrics({ outputsPath: params.testOutputsPath, clock: options.clock });
  return new RunEnv(params, recorder, metrics);
}

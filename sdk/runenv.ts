/**
 * The run environment an instance gets from its runner (CONTRACT §2), typed test params, and the event
 * recording methods plans call.
 */
import { tmpdir } from 'node:os';
import {
  describeThrown,
  EventRecorder,
  type EventRecorderOptions,
  type RunEnvSummary,
} from './event-recorder.ts';

/** Everything the runner tells an instance, parsed and checked. */
export interface RunParams {
  testPlan: string;
  testCase: string;
  testRun: string;
  testInstanceCount: number;
  testGroupId: string;
  testGroupInstanceCount: number;
  testInstanceParams: Record<string, string>;
  testInstanceRole: string;
  testRepo: string;
  testBranch: string;
  testTag: string;
  testOutputsPath: string;
  testTempPath: string;
  testSidecar: boolean;
  testSubnet: string;
  testStartTime: Date;
  testDisableMetrics: boolean;
  syncServiceHost: string;
  syncServicePort: number;
}

/** The instance environment is missing variables or holds invalid ones; `problems` lists each. */
export class RunEnvError extends Error {
  readonly code = 'runenv_invalid';
  readonly problems: readonly string[];

  constructor(problems: string[]) {
    super(
      `invalid instance environment (${problems.length} problem${problems.length === 1 ? '' : 's'}): ${problems.join('; ')}. ` +
        'Testground runners set these for every instance; set them yourself when running a plan by hand',
    );
    this.name = 'RunEnvError';
    this.problems = problems;
  }
}

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

const DEFAULT_SYNC_SERVICE_HOST = 'testground-sync-service';
const DEFAULT_SYNC_SERVICE_PORT = 5050;

/**
 * Reads and checks the instance environment. Throws a {@link RunEnvError} naming every missing or
 * invalid variable at once.
 */
export function parseRunParams(env: NodeJS.ProcessEnv, now: () => Date = () => new Date()): RunParams {
  const problems: string[] = [];
  const required = (name: string): string => {
    const value = env[name];
    if (value === undefined || value === '') {
      problems.push(`${name} is not set`);
      return '';
    }
    return value;
  };
  const positiveInt = (name: string): number => {
    const text = required(name);
    if (text === '') return 0;
    if (!/^\d+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) {
      problems.push(`${name} must be a positive integer, got ${JSON.stringify(text)}`);
      return 0;
    }
    return Number(text);
  };
  const optional = <T>(
    name: string,
    fallback: T,
    parse: (text: string) => T | undefined,
    expected: string,
  ): T => {
    const text = env[name] ?? '';
    if (text === '') return fallback;
    const value = parse(text);
    if (value === undefined) problems.push(`${name} must be ${expected}, got ${JSON.stringify(text)}`);
    return value ?? fallback;
  };

  // In CONTRACT §2's order, so that problems are listed the way the table reads.
  const params: RunParams = {
    testPlan: required('TEST_PLAN'),
    testCase: required('TEST_CASE'),
    testRun: required('TEST_RUN'),
    testInstanceCount: positiveInt('TEST_INSTANCE_COUNT'),
    testGroupId: required('TEST_GROUP_ID'),
    testGroupInstanceCount: positiveInt('TEST_GROUP_INSTANCE_COUNT'),
    testInstanceParams: parseInstanceParams(env, problems),
    testInstanceRole: env.TEST_INSTANCE_ROLE ?? '',
    testRepo: env.TEST_REPO ?? '',
    testBranch: env.TEST_BRANCH ?? '',
    testTag: env.TEST_TAG ?? '',
    testOutputsPath: required('TEST_OUTPUTS_PATH'),
    testTempPath: env.TEST_TEMP_PATH || tmpdir(),
    testSidecar: optional('TEST_SIDECAR', false, parseBool, '"true" or "false"'),
    testSubnet: optional('TEST_SUBNET', '', parseCidr, 'a CIDR like 127.1.0.0/16'),
    testStartTime: optional('TEST_START_TIME', now(), parseTime, 'an RFC 3339 time'),
    testDisableMetrics: optional('TEST_DISABLE_METRICS', false, parseBool, '"true" or "false"'),
    syncServiceHost: env.SYNC_SERVICE_HOST || DEFAULT_SYNC_SERVICE_HOST,
    syncServicePort: optional(
      'SYNC_SERVICE_PORT',
      DEFAULT_SYNC_SERVICE_PORT,
      parsePort,
      'a port number from 1 to 65535',
    ),
  };
  if (params.testInstanceCount > 0 && params.testGroupInstanceCount > params.testInstanceCount) {
    problems.push(
      `TEST_GROUP_INSTANCE_COUNT (${params.testGroupInstanceCount}) must not exceed TEST_INSTANCE_COUNT (${params.testInstanceCount})`,
    );
  }
  if (problems.length > 0) throw new RunEnvError(problems);
  return params;
}

function parseBool(text: string): boolean | undefined {
  return text === 'true' ? true : text === 'false' ? false : undefined;
}

function parseCidr(text: string): string | undefined {
  return /^[0-9a-fA-F:.]+\/\d{1,3}$/.test(text) ? text : undefined;
}

function parseTime(text: string): Date | undefined {
  const time = new Date(text);
  return Number.isNaN(time.getTime()) ? undefined : time;
}

function parsePort(text: string): number | undefined {
  const port = Number(text);
  return /^\d+$/.test(text) && port >= 1 && port <= 65_535 ? port : undefined;
}

// The JSON form is preferred because packed values cannot hold `|` or `=`.
function parseInstanceParams(env: NodeJS.ProcessEnv, problems: string[]): Record<string, string> {
  const json = env.TEST_INSTANCE_PARAMS_JSON ?? '';
  if (json !== '') {
    let value: unknown;
    try {
      value = JSON.parse(json);
    } catch (error) {
      problems.push(`TEST_INSTANCE_PARAMS_JSON is not valid JSON: ${(error as Error).message}`);
      return {};
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      problems.push(`TEST_INSTANCE_PARAMS_JSON must be a JSON object of strings, got ${json}`);
      return {};
    }
    const params: Record<string, string> = {};
    for (const [name, param] of Object.entries(value)) {
      if (typeof param === 'string') params[name] = param;
      else problems.push(`TEST_INSTANCE_PARAMS_JSON.${name} must be a string, got ${JSON.stringify(param)}`);
    }
    return params;
  }
  const params: Record<string, string> = {};
  for (const pair of (env.TEST_INSTANCE_PARAMS ?? '').split('|')) {
    if (pair === '') continue;
    const equals = pair.indexOf('=');
    if (equals <= 0) {
      problems.push(`TEST_INSTANCE_PARAMS entry ${JSON.stringify(pair)} is not name=value`);
      continue;
    }
    params[pair.slice(0, equals)] = pair.slice(equals + 1);
  }
  return params;
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
  private readonly recorder: EventRecorder;

  constructor(params: RunParams, recorder: EventRecorder) {
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
        `test param ${JSON.stringify(name)} is not set (set params: ${known.length > 0 ? known.join(', ') : 'none'}); give it a default in manifest.toml or set it in the composition`,
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

  private typeError(name: string, text: string, expected: string): TestParamError {
    return new TestParamError(
      `test param ${JSON.stringify(name)} must be ${expected}, got ${JSON.stringify(text)}`,
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
  return new RunEnv(params, recorder);
}

/**
 * The environment every runner gives an instance (CONTRACT §2), written once for both sides: runners
 * encode it, the SDK parses it. Dependency-free, because plans bundle it.
 */

/** Where instances find the sync service when nothing else is said (CONTRACT §2, §3). */
export const defaultSyncServiceHost = 'testground-sync-service';
export const defaultSyncServicePort = 5050;

/** Everything the runner tells an instance, typed. */
export interface InstanceEnvironment {
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

/** The variables, in CONTRACT §2's order. */
export function encodeInstanceEnv(environment: InstanceEnvironment): Record<string, string> {
  const params = environment.testInstanceParams;
  return {
    TEST_PLAN: environment.testPlan,
    TEST_CASE: environment.testCase,
    TEST_RUN: environment.testRun,
    TEST_INSTANCE_COUNT: String(environment.testInstanceCount),
    TEST_GROUP_ID: environment.testGroupId,
    TEST_GROUP_INSTANCE_COUNT: String(environment.testGroupInstanceCount),
    // The packed form is what the original SDKs read; values holding `|` or `=` survive only in the JSON one.
    TEST_INSTANCE_PARAMS: Object.entries(params)
      .map(([key, value]) => `${key}=${value}`)
      .join('|'),
    TEST_INSTANCE_PARAMS_JSON: JSON.stringify(params),
    TEST_INSTANCE_ROLE: environment.testInstanceRole,
    TEST_REPO: environment.testRepo,
    TEST_BRANCH: environment.testBranch,
    TEST_TAG: environment.testTag,
    TEST_OUTPUTS_PATH: environment.testOutputsPath,
    TEST_TEMP_PATH: environment.testTempPath,
    TEST_SIDECAR: String(environment.testSidecar),
    TEST_SUBNET: environment.testSubnet,
    TEST_START_TIME: environment.testStartTime.toISOString(),
    TEST_DISABLE_METRICS: String(environment.testDisableMetrics),
    SYNC_SERVICE_HOST: environment.syncServiceHost,
    SYNC_SERVICE_PORT: String(environment.syncServicePort),
  };
}

/** The environment is missing variables or holds invalid ones; `problems` lists each. */
export class RunEnvError extends Error {
  readonly code: string = 'runenv_invalid';
  readonly problems: readonly string[];

  constructor(problems: string[]) {
    super(
      `invalid instance environment (${problems.length} problem${problems.length === 1 ? '' : 's'}): ${problems.join('; ')}. ` +
        'Testground runners set these for every instance; set them yourself when running a plan by hand',
    );
    this.name = new.target.name;
    this.problems = problems;
  }
}

export interface ParseInstanceEnvOptions {
  /** `testStartTime` when `TEST_START_TIME` is not set; default the current time. */
  now?: () => Date;
  /** `testTempPath` when `TEST_TEMP_PATH` is not set (the SDK passes the OS temp directory). */
  tempDir?: string;
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Reads and checks an instance environment; throws an {@link RunEnvError} naming every missing or
 * invalid variable at once.
 */
export function parseInstanceEnv(env: Env, options: ParseInstanceEnvOptions = {}): InstanceEnvironment {
  const read = new EnvReader(env);
  // In CONTRACT §2's order, so that problems are listed the way the table reads.
  const environment: InstanceEnvironment = {
    testPlan: read.required('TEST_PLAN'),
    testCase: read.required('TEST_CASE'),
    testRun: read.required('TEST_RUN'),
    testInstanceCount: read.positiveInt('TEST_INSTANCE_COUNT'),
    testGroupId: read.required('TEST_GROUP_ID'),
    testGroupInstanceCount: read.positiveInt('TEST_GROUP_INSTANCE_COUNT'),
    testInstanceParams: parseInstanceParams(env, read.problems),
    testInstanceRole: env.TEST_INSTANCE_ROLE ?? '',
    testRepo: env.TEST_REPO ?? '',
    testBranch: env.TEST_BRANCH ?? '',
    testTag: env.TEST_TAG ?? '',
    testOutputsPath: read.required('TEST_OUTPUTS_PATH'),
    testTempPath: env.TEST_TEMP_PATH || (options.tempDir ?? '/tmp'),
    testSidecar: read.optional('TEST_SIDECAR', false, parseBool, '"true" or "false"'),
    testSubnet: read.optional('TEST_SUBNET', '', parseCidr, 'a CIDR like 127.1.0.0/16'),
    testStartTime: read.optional(
      'TEST_START_TIME',
      (options.now ?? (() => new Date()))(),
      parseTime,
      'an RFC 3339 time',
    ),
    testDisableMetrics: read.optional('TEST_DISABLE_METRICS', false, parseBool, '"true" or "false"'),
    ...readSyncService(read),
  };
  if (
    environment.testInstanceCount > 0 &&
    environment.testGroupInstanceCount > environment.testInstanceCount
  ) {
    read.problems.push(
      `TEST_GROUP_INSTANCE_COUNT (${environment.testGroupInstanceCount}) must not exceed TEST_INSTANCE_COUNT (${environment.testInstanceCount})`,
    );
  }
  read.throwIfInvalid();
  return environment;
}

/** What a sync client needs: where the service is, and the run, plan and test case its keys belong to. */
export type SyncServiceEnvironment = Pick<
  InstanceEnvironment,
  'testPlan' | 'testCase' | 'testRun' | 'syncServiceHost' | 'syncServicePort'
>;

/**
 * Reads only the variables a sync client needs, with the same defaults and checks as
 * {@link parseInstanceEnv}; throws an {@link RunEnvError} naming every missing or invalid one.
 */
export function parseSyncServiceEnv(env: Env): SyncServiceEnvironment {
  const read = new EnvReader(env);
  const environment: SyncServiceEnvironment = {
    testPlan: read.required('TEST_PLAN'),
    testCase: read.required('TEST_CASE'),
    testRun: read.required('TEST_RUN'),
    ...readSyncService(read),
  };
  read.throwIfInvalid();
  return environment;
}

function readSyncService(read: EnvReader): Pick<InstanceEnvironment, 'syncServiceHost' | 'syncServicePort'> {
  return {
    syncServiceHost: read.text('SYNC_SERVICE_HOST') || defaultSyncServiceHost,
    syncServicePort: read.optional(
      'SYNC_SERVICE_PORT',
      defaultSyncServicePort,
      parsePort,
      'a port number from 1 to 65535',
    ),
  };
}

/** Reads variables, collecting every problem so that one error can list them all. */
class EnvReader {
  readonly problems: string[] = [];
  private readonly env: Env;

  constructor(env: Env) {
    this.env = env;
  }

  text(name: string): string {
    return this.env[name] ?? '';
  }

  required(name: string): string {
    const value = this.text(name);
    if (value === '') this.problems.push(`${name} is not set`);
    return value;
  }

  positiveInt(name: string): number {
    const text = this.required(name);
    if (text === '') return 0;
    if (!/^\d+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) {
      this.problems.push(`${name} must be a positive integer, got ${JSON.stringify(text)}`);
      return 0;
    }
    return Number(text);
  }

  /** `fallback` when unset or empty; a problem, and `fallback`, when `parse` refuses the text. */
  optional<T>(name: string, fallback: T, parse: (text: string) => T | undefined, expected: string): T {
    const text = this.text(name);
    if (text === '') return fallback;
    const value = parse(text);
    if (value === undefined) this.problems.push(`${name} must be ${expected}, got ${JSON.stringify(text)}`);
    return value ?? fallback;
  }

  throwIfInvalid(): void {
    if (this.problems.length > 0) throw new RunEnvError(this.problems);
  }
}

/** A port from 1 to 65535 written as decimal digits, or undefined. */
export function parsePort(text: string): number | undefined {
  const port = Number(text);
  return /^\d+$/.test(text) && port >= 1 && port <= 65_535 ? port : undefined;
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

// The JSON form is preferred because packed values cannot hold `|` or `=`.
function parseInstanceParams(env: Env, problems: string[]): Record<string, string> {
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

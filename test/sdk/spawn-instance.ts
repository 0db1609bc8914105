/**
 * Runs a script as a test instance would run: its own Node process, with only the instance environment.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const repoRoot = path.resolve(import.meta.dirname, '../..');

export interface InstanceRun {
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** Non-empty stdout lines. */
  lines: string[];
}

/** A scratch directory removed by the returned `cleanup`. */
export function scratchDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), `tg-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The variables a runner sets (CONTRACT §2) for one instance of a one-group run. */
export function instanceEnv(overrides: Record<string, string>): Record<string, string> {
  return {
    TEST_PLAN: 'placebo',
    TEST_CASE: 'ok',
    TEST_RUN: 'run-1',
    TEST_INSTANCE_COUNT: '1',
    TEST_GROUP_ID: 'single',
    TEST_GROUP_INSTANCE_COUNT: '1',
    TEST_INSTANCE_PARAMS: '',
    TEST_SIDECAR: 'false',
    TEST_SUBNET: '127.1.0.0/16',
    TEST_START_TIME: '2024-05-06T12:30:59Z',
    TEST_DISABLE_METRICS: 'false',
    ...overrides,
  };
}

/**
 * Runs `node --import tsx <script>` from the repository root (where tsx finds tsconfig's `testground-sdk`
 * path). `stopWhen` sends SIGTERM once stdout holds a matching line; `timeoutMs` fails a hung run.
 */
export function spawnInstance(
  script: string,
  env: Record<string, string>,
  options: { stopWhen?: (line: string) => boolean; timeoutMs?: number; cwd?: string; withTsx?: boolean } = {},
): Promise<InstanceRun> {
  const args = options.withTsx === false ? [script] : ['--import', 'tsx', script];
  const child = spawn(process.execPath, args, {
    cwd: options.cwd ?? repoRoot,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    if (options.stopWhen && stdout.split('\n').some(options.stopWhen)) child.kill('SIGTERM');
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timeoutMs = options.timeoutMs ?? 20_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`${script} did not exit within ${timeoutMs} ms; stdout: ${stdout}; stderr: ${stderr}`),
      );
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (exitCode, signal) => {
      clearTimeout(timer);
      resolve({ exitCode, signal, stdout, stderr, lines: stdout.split('\n').filter((line) => line !== '') });
    });
  });
}

/**
 * The host tools runners run as child processes (`ip`, `iptables`, `tc` scripts in a namespace, the
 * feature probe): one way to run them, with their input on stdin, their stdout as the result, and one
 * error that carries their stderr.
 *
 * Spawning costs the daemon tens of milliseconds of blocked event loop per child here, so callers batch:
 * `ip -batch -` sets up a whole run's namespaces with a handful of processes, and shaping goes as one
 * shell script per configuration.
 */
import { spawn } from 'node:child_process';

/** A host command exited non-zero, could not start, or did not end in time. */
export class HostCommandError extends Error {
  readonly code: string = 'host_command_failed';
  /** Its exit code; null when it could not start, was killed, or was not a command at all. */
  readonly exitCode: number | null;
  readonly stderr: string;

  constructor(message: string, details: { exitCode?: number | null; stderr?: string } = {}) {
    super(message);
    this.name = new.target.name;
    this.exitCode = details.exitCode ?? null;
    this.stderr = details.stderr ?? '';
  }
}

export interface HostCommandOptions {
  /** Written to its stdin, which is then closed; a script's size is thus unbounded. Default: nothing. */
  input?: string;
  /** It is killed (SIGKILL) and fails past this. Default: no limit. */
  timeoutMs?: number;
  /** What it does, for messages: `applying the network configuration of peers[3]`. Default: its command line. */
  what?: string;
}

/** Runs `file args…`; resolves with its stdout, rejects with a {@link HostCommandError} naming its stderr. */
export function runHostCommand(
  file: string,
  args: readonly string[],
  options: HostCommandOptions = {},
): Promise<string> {
  const what = options.what ?? [file, ...args].join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            child.kill('SIGKILL');
            reject(new HostCommandError(`${what} did not finish within ${options.timeoutMs} ms`, { stderr }));
          }, options.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new HostCommandError(`${what} could not start ${file}: ${error.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) {
        resolve(stdout);
        return;
      }
      const detail = stderr.trim().split('\n').slice(-8).join('; ') || 'no error output';
      reject(
        new HostCommandError(`${what} failed (${signal ?? `exit code ${code}`}): ${detail}`, {
          exitCode: code,
          stderr,
        }),
      );
    });
    // A tool that exits before reading all of its input closes the pipe; its exit code says what happened.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/**
 * `ip -batch -`: one command per line, stopping at the first that fails (`force`: running them all and
 * failing at the end, for teardown, where one missing object must not keep the others).
 */
export function runIpBatch(lines: readonly string[], options: { force?: boolean } = {}): Promise<string> {
  if (lines.length === 0) return Promise.resolve('');
  return runHostCommand('ip', [...(options.force ? ['-force'] : []), '-batch', '-'], {
    input: `${lines.join('\n')}\n`,
  });
}

import { spawn } from 'node:child_process';
import type { NetworkNamespace } from './network-shaper.ts';

/** A command run for the shaper exited non-zero, could not start, or did not end in time. */
export class NetworkCommandError extends Error {
  readonly code: string = 'network_command_failed';
  readonly stderr: string;

  constructor(message: string, stderr = '') {
    super(message);
    this.name = new.target.name;
    this.stderr = stderr;
  }
}

/**
 * The argv that runs `argv` inside a namespace: `nsenter -t <pid> -n` (only the network namespace: the
 * host's binaries and files stay in view) or `ip netns exec <name>`. Both exec the command in place, so
 * the process started is the command itself.
 */
export function namespaceCommand(namespace: NetworkNamespace, argv: readonly string[]): string[] {
  return namespace.kind === 'pid'
    ? ['nsenter', '-t', String(namespace.pid), '-n', '--', ...argv]
    : ['ip', 'netns', 'exec', namespace.name, ...argv];
}

export function describeNamespace(namespace: NetworkNamespace): string {
  return namespace.kind === 'pid' ? `the network namespace of pid ${namespace.pid}` : `netns ${namespace.name}`;
}

/**
 * Runs a shell script in a namespace with `sh -e`. The script comes on stdin, so its size is unbounded and
 * the commands it runs never read it as their own input.
 */
export function runScript(
  argv: readonly string[],
  script: string,
  options: { timeoutMs: number; what: string },
): Promise<{ stdout: string; stderr: string }> {
  const [command = 'sh', ...args] = argv;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new NetworkCommandError(`${options.what} did not finish within ${options.timeoutMs} ms`, stderr));
    }, options.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new NetworkCommandError(`${options.what} could not start ${command}: ${error.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) {
        resolve({ stdout, stderr });
        return;
      }
      const detail = stderr.trim().split('\n').slice(-8).join('; ') || 'no error output';
      reject(
        new NetworkCommandError(`${options.what} failed (${signal ?? `exit ${code}`}): ${detail}`, stderr),
      );
    });
    // A child that dies before reading its stdin makes the write fail with EPIPE; 'close' reports it.
    child.stdin.on('error', () => {});
    child.stdin.end(script);
  });
}

/** `sh` reading its script from stdin, then running it with stdin closed. */
export const shFromStdin = ['sh', '-c', 'script=$(cat); exec </dev/null; eval "$script"'] as const;

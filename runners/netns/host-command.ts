/**
 * The host tools the namespaces are built with (`ip`, `iptables`), run as child processes. Commands go in
 * batches (`ip -batch -`): spawning costs the daemon tens of milliseconds of blocked event loop per child
 * here, so a run's whole network is set up by a handful of processes, not a few per instance.
 */
import { spawn } from 'node:child_process';

export class HostCommandError extends Error {
  readonly command: string;
  readonly exitCode: number | null;
  readonly stderr: string;

  constructor(command: string, exitCode: number | null, stderr: string) {
    super(`${command} failed (exit code ${exitCode}): ${stderr.trim() || '(no output)'}`);
    this.name = new.target.name;
    this.command = command;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** Runs `file args…` with `input` on its stdin; resolves with its stdout, rejects with its stderr. */
export function runHostCommand(file: string, args: readonly string[], input = ''): Promise<string> {
  const command = [file, ...args].join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', (error) => reject(new HostCommandError(command, null, error.message)));
    child.once('close', (code) => {
      if (code === 0) resolve(stdout);
      else reject(new HostCommandError(command, code, stderr));
    });
    // A tool that exits before reading all of its input closes the pipe; its exit code says what happened.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

/**
 * `ip -batch -`: one command per line, stopping at the first that fails (`force`: running them all and
 * failing at the end, for teardown, where one missing object must not keep the others).
 */
export function runIpBatch(lines: readonly string[], options: { force?: boolean } = {}): Promise<string> {
  if (lines.length === 0) return Promise.resolve('');
  return runHostCommand('ip', [...(options.force ? ['-force'] : []), '-batch', '-'], `${lines.join('\n')}\n`);
}

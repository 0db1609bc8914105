import { spawn } from 'node:child_process';
import { RunnerError } from '../core/errors.ts';
import type { Logger } from 'pino';
import { parseSyncServiceListening } from '../core/contract/well-known.ts';

export interface SyncServiceProcess {
  readonly pid: number;
  readonly port: number;
  close(): Promise<void>;
}

const startTimeoutMs = 15_000;

/**
 * Starts the bundled sync service as a child process on `host` (default 127.0.0.1) and a free port. `env`
 * is added to its environment (local:exec passes `TEST_RUN`, which is how a restarted daemon recognises
 * leftovers).
 */
export async function startSyncServiceProcess(
  bundle: string,
  env: Record<string, string>,
  logger: Logger,
  options: { host?: string } = {},
): Promise<SyncServiceProcess> {
  const child = spawn(process.execPath, [bundle], {
    env: {
      PATH: process.env.PATH ?? '',
      LOG_LEVEL: 'warn',
      ...env,
      SYNC_SERVICE_HOST: options.host ?? '127.0.0.1',
      SYNC_SERVICE_PORT: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    if (stderr.length > 10_000) stderr = stderr.slice(-5_000);
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => fail(`did not say where it listens within ${startTimeoutMs} ms`),
      startTimeoutMs,
    );
    const fail = (why: string): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new RunnerError(`the sync service process ${why}; its stderr: ${stderr.trim() || '(none)'}`));
    };
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      // Complete lines only: a chunk cut inside the port number would read as another port.
      const listening = parseSyncServiceListening(stdout.slice(0, stdout.lastIndexOf('\n') + 1));
      if (listening !== undefined) {
        clearTimeout(timer);
        resolve(listening.port);
      }
    });
    child.once('error', (error) => fail(`could not start: ${error.message}`));
    child.once('exit', (code, signal) => fail(`exited (code ${code}, signal ${signal}) before listening`));
  });
  child.removeAllListeners('exit');
  child.once('exit', (code, signal) => {
    if (code !== 0) logger.warn({ code, signal, stderr: stderr.trim() }, 'the sync service process exited');
  });
  return {
    pid: child.pid!,
    port,
    close: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { DependencyError } from '../core/errors.ts';

/** A `redis-server` child owned by the daemon, reachable on a unix socket under the daemon's home. */
export interface EmbeddedRedis {
  readonly socketPath: string;
  stop(): Promise<void>;
}

const startTimeoutMs = 10_000;

/**
 * Starts `redis-server` with its data under `dir`. Tasks survive a daemon restart because the server
 * keeps an append-only file there. A server left running by a daemon that was killed (SIGKILL leaves
 * children behind) is stopped first, so each daemon owns exactly one.
 */
export async function startEmbeddedRedis(dir: string, logger: Logger): Promise<EmbeddedRedis> {
  await mkdir(dir, { recursive: true });
  const socketPath = path.join(dir, 'redis.sock');
  const pidFile = path.join(dir, 'redis.pid');
  await stopLeftover(pidFile, logger);
  await rm(socketPath, { force: true });

  const child = spawn(
    'redis-server',
    [
      '--port',
      '0',
      '--unixsocket',
      socketPath,
      '--unixsocketperm',
      '700',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--save',
      '',
      '--daemonize',
      'no',
      '--loglevel',
      'warning',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const output: string[] = [];
  const keep = (chunk: Buffer): void => {
    output.push(chunk.toString());
    if (output.length > 50) output.shift();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);

  const spawnError = await new Promise<Error | undefined>((resolve) => {
    child.once('error', resolve);
    child.once('spawn', () => resolve(undefined));
  });
  if (spawnError) {
    throw new DependencyError(
      `cannot start redis-server (${spawnError.message}); install it with "apt-get install -y redis-server" or set REDIS_URL`,
    );
  }
  await writeFile(pidFile, String(child.pid));
  try {
    await waitForSocket(socketPath, child);
  } catch (error) {
    child.kill('SIGKILL');
    throw new DependencyError(
      `redis-server did not accept connections on ${socketPath} within ${startTimeoutMs} ms: ${(error as Error).message}; its output: ${output.join('').trim()}`,
    );
  }
  logger.info({ socketPath, pid: child.pid }, 'embedded redis-server started');
  return { socketPath, stop: () => stopChild(child, pidFile) };
}

async function stopLeftover(pidFile: string, logger: Logger): Promise<void> {
  if (!existsSync(pidFile)) return;
  const pid = Number((await readFile(pidFile, 'utf8')).trim());
  if (!Number.isInteger(pid) || pid <= 0 || !isRedisProcess(pid)) return;
  logger.warn({ pid }, 'stopping a redis-server left behind by a previous daemon');
  process.kill(pid, 'SIGTERM');
  for (let waited = 0; waited < startTimeoutMs && isAlive(pid); waited += 50) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (isAlive(pid)) process.kill(pid, 'SIGKILL');
}

function isRedisProcess(pid: number): boolean {
  // Only stop the pid when it still is a redis-server: pids are reused.
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('redis-server');
  } catch {
    return false;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitForSocket(socketPath: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + startTimeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode}`);
    if (await canConnect(socketPath)) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('timed out');
}

function canConnect(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function stopChild(child: ChildProcess, pidFile: string): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
  await rm(pidFile, { force: true });
}

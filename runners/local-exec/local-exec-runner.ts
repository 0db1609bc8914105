import { spawn, type ChildProcess } from 'node:child_process';
import { RunnerError } from '../../core/errors.ts';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { strictTable } from '../../plan/problems.ts';
import type { InstanceResult } from '../../core/run.ts';
import { instanceEnv } from '../instance-env.ts';
import { concludeInstance, StopTrigger, type InstanceEnding } from '../instance-lifecycle.ts';
import { InstanceOutput } from '../instance-output.ts';
import { runTimeoutSchema } from '../run-config.ts';
import type { HealthcheckCheck, RunInput, RunOutput, Runner } from '../runner.ts';
import type { SyncServiceBundle } from '../sync-service-bundle.ts';
import { startSyncServiceProcess } from '../sync-service-process.ts';
import { formatBytes } from '../local-docker/host-resource-clamp.ts';

const pidsFile = 'instance.pids';

/** The data subnet local:exec reports: instances share the host's loopback. */
export const localExecSubnet = '127.1.0.0/16';

/** The `run_config` keys local:exec understands. */
export const localExecConfigSchema = strictTable({
  timeout: runTimeoutSchema.optional(),
});

export interface LocalExecRunnerOptions {
  logger: Logger;
  syncService: Pick<SyncServiceBundle, 'path'>;
  /** How long an instance gets to exit after SIGTERM (timeout or cancel) before SIGKILL. */
  killGraceMs?: number;
  /**
   * Remembers a process of the run, so that a daemon restarted after a crash can stop what its predecessor
   * left (`cleanupInterrupted`). Default: a line in `<tempDir>/instance.pids`.
   */
  recordPid?: (tempDir: string, pid: number) => Promise<void>;
}

const recordPidInFile = (tempDir: string, pid: number): Promise<void> =>
  appendFile(path.join(tempDir, pidsFile), `${pid}\n`);

// Only these of the daemon's variables reach instances; the daemon's own (REDIS_URL, tokens) must not.
const inheritedVariables = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR'];

/**
 * `local:exec`: one Node process per instance on this host, all started at once, with a sync service
 * process of their own for the length of the run.
 */
export class LocalExecRunner implements Runner {
  readonly accepts = 'bundle';
  readonly id = 'local:exec';
  readonly configSchema = localExecConfigSchema;
  private readonly logger: Logger;
  private readonly syncService: Pick<SyncServiceBundle, 'path'>;
  private readonly killGraceMs: number;
  private readonly recordPid: (tempDir: string, pid: number) => Promise<void>;

  constructor(options: LocalExecRunnerOptions) {
    this.logger = options.logger;
    this.syncService = options.syncService;
    this.killGraceMs = options.killGraceMs ?? 2_000;
    this.recordPid = options.recordPid ?? recordPidInFile;
  }

  async run(input: RunInput): Promise<RunOutput> {
    const logger = this.logger.child({ runId: input.runId });
    // A process of its own: spawning instances blocks this process's event loop (tens of ms per child
    // here), and instance handshakes must not wait behind that.
    const sync = await startSyncServiceProcess(
      await this.syncService.path(),
      { TEST_RUN: input.runId },
      logger.child({ component: 'sync' }),
    );
    const baseEnv = Object.fromEntries(
      inheritedVariables.flatMap((name) =>
        process.env[name] === undefined ? [] : [[name, process.env[name]!]],
      ),
    );
    // From here on the sync service is ours to stop, whatever fails.
    try {
      await this.recordPid(input.tempDir, sync.pid);
      input.log.info(`local:exec: sync service listening on 127.0.0.1:${sync.port}`);
      warnResourcesNotEnforced(input);
      const pending: Promise<InstanceResult>[] = [];
      for (const group of input.run.groups) {
        const artifact = input.artifacts.get(group.id);
        if (artifact?.kind !== 'bundle') {
          throw new RunnerError(
            `local:exec needs a bundle for group ${group.id}, got ${artifact?.kind ?? 'nothing'}; use the exec:node builder`,
          );
        }
        for (let index = 0; index < group.instances; index += 1) {
          const outputsPath = path.join(input.outputsDir, group.id, String(index));
          const tempPath = path.join(input.tempDir, group.id, String(index));
          const env = instanceEnv({
            runId: input.runId,
            run: input.run,
            group,
            outputsPath,
            tempPath,
            sidecar: false,
            subnet: localExecSubnet,
            syncServiceHost: '127.0.0.1',
            syncServicePort: sync.port,
            startTime: input.startTime,
          });
          pending.push(
            this.runInstance({
              ...input,
              group: group.id,
              index,
              bundle: artifact.path,
              env: { ...baseEnv, ...env },
              outputsPath,
              tempPath,
            }),
          );
        }
      }
      return { instances: await Promise.all(pending) };
    } finally {
      await sync.close();
    }
  }

  private async runInstance(
    input: RunInput & {
      group: string;
      index: number;
      bundle: string;
      env: Record<string, string>;
      outputsPath: string;
      tempPath: string;
    },
  ): Promise<InstanceResult> {
    await mkdir(input.outputsPath, { recursive: true });
    await mkdir(input.tempPath, { recursive: true });
    const output = new InstanceOutput({
      group: input.group,
      index: input.index,
      log: input.log,
      dir: input.outputsPath,
      scratchDir: input.tempPath,
    });
    // Its own process group, so a timeout or cancel also stops whatever the instance spawned.
    const child = spawn(process.execPath, ['--enable-source-maps', input.bundle], {
      cwd: input.tempPath,
      env: input.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // Everything that listens to the child is attached before the first await: a child that exits while we
    // wait would otherwise have its output discarded and its 'close' missed, and its run would never end.
    child.stdout.on('data', (chunk: Buffer) => output.write('stdout', chunk));
    child.stderr.on('data', (chunk: Buffer) => output.write('stderr', chunk));
    const exited = new Promise<{ exitCode: number | null; signal: string | null; spawnError?: Error }>(
      (resolve) => {
        child.once('error', (error) => resolve({ exitCode: null, signal: null, spawnError: error }));
        child.once('close', (exitCode, signal) => resolve({ exitCode, signal }));
      },
    );
    if (child.pid !== undefined) await this.recordPid(input.tempDir, child.pid);

    // Each instance has the whole run timeout from its own start, as it always had.
    const stop = new StopTrigger({
      timeoutMs: input.run.timeoutMs,
      signal: input.signal,
      stop: () => this.stopProcess(child),
    });
    const exit = await exited;
    stop.dispose();
    await output.finish();
    const ending: InstanceEnding = exit.spawnError
      ? { kind: 'failed-to-start', reason: `could not start node: ${exit.spawnError.message}` }
      : { kind: 'exited', exitCode: exit.exitCode, signal: exit.signal };
    return concludeInstance({
      group: input.group,
      index: input.index,
      terminal: output.terminal,
      ending,
      stopped: stop.reason,
      timeoutMs: input.run.timeoutMs,
      log: input.log,
    });
  }

  async cleanupInterrupted(runId: string, tempDir: string): Promise<void> {
    const pids = await readFile(path.join(tempDir, pidsFile), 'utf8').catch(() => '');
    for (const pid of pids.split('\n').filter(Boolean).map(Number)) {
      // Pids are reused: only stop a process that still carries this run's id in its environment.
      const environ = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '');
      if (environ.split('\0').includes(`TEST_RUN=${runId}`)) {
        this.logger.warn({ runId, pid }, 'stopping a process left running by a previous daemon process');
        // Instances lead process groups of their own (whatever they spawned goes too); the sync service does not.
        signalGroup(pid, 'SIGKILL');
        signalProcess(pid, 'SIGKILL');
      }
    }
  }

  async healthcheck(): Promise<HealthcheckCheck[]> {
    return [
      { name: 'node', ok: true, message: `instances run with ${process.execPath} (${process.version})` },
    ];
  }

  async removeLeftovers(): Promise<Record<string, number>> {
    // Instances are children of the daemon: they end with their run, or at the next start-up (cleanupInterrupted).
    return {};
  }

  private stopProcess(child: ChildProcess): void {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const pid = child.pid;
    signalGroup(pid, 'SIGTERM');
    const killer = setTimeout(() => signalGroup(pid, 'SIGKILL'), this.killGraceMs);
    child.once('exit', () => clearTimeout(killer));
  }
}

/** Instances are plain processes here: a group's resources are not applied, and the run says so once. */
function warnResourcesNotEnforced(input: RunInput): void {
  const limited = input.run.groups.flatMap((group) => {
    const { cpus, memoryBytes } = group.resources;
    const asked = [
      ...(cpus ? [`cpu ${cpus}`] : []),
      ...(memoryBytes ? [`memory ${formatBytes(memoryBytes)}`] : []),
    ];
    return asked.length === 0 ? [] : [`${group.id} (${asked.join(', ')})`];
  });
  if (limited.length === 0) return;
  input.log.warn(
    `local:exec: resources are not enforced on this runner, instances run without limits: ${limited.join(', ')}; local:docker applies them`,
  );
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  signalProcess(-pid, signal);
}

function signalProcess(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { RunnerError } from '../../core/errors.ts';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import { strictTable } from '../../plan/problems.ts';
import type { InstanceResult } from '../../core/run.ts';
import { instanceEnv } from '../instance-env.ts';
import {
  concludeInstance,
  StopTrigger,
  type InstanceEnding,
  type StopReason,
} from '../instance-lifecycle.ts';
import { InstanceOutput } from '../instance-output.ts';
import { runTimeoutSchema } from '../run-config.ts';
import type { HealthcheckCheck, RunInput, RunOutput, Runner } from '../runner.ts';
import type { SyncServiceBundle } from '../sync-service-bundle.ts';
import { startSyncServiceProcess } from '../sync-service-process.ts';
import { formatBytes } from '../local-docker/host-resource-clamp.ts';
import {
  maxNetnsInstances,
  netnsDir,
  netnsShortId,
  type NetnsInstanceLayout,
} from '../netns/netns-layout.ts';
import { listNetnsRuns, removeNetnsRun, type NetnsRunObjects } from '../netns/netns-objects.ts';
import { netnsSupportProblems } from '../netns/netns-support.ts';
import { removeRunNetwork, RunNetwork } from '../netns/run-network.ts';
import type { NetworkShaper } from '../network/network-shaper.ts';
import { PlanUser } from '../../builders/plan-user.ts';
import { NetworkSide } from './network-side.ts';
import { SpawnTurns } from './spawn-turns.ts';
import { TakeBackBatcher } from './take-back-batcher.ts';

const pidsFile = 'instance.pids';

/** The data subnet local:exec reports: instances share the host's loopback. */
export const localExecSubnet = '127.1.0.0/16';

const networkModes = ['host', 'netns'] as const;

/** The `run_config` keys local:exec understands. */
export const localExecConfigSchema = strictTable({
  timeout: runTimeoutSchema.optional(),
  network: z
    .enum(networkModes, {
      error: (issue) =>
        `${JSON.stringify(issue.input)} is not a network mode of local:exec; use "host" or "netns"`,
    })
    .optional()
    .describe(
      'How instances are networked. "host" (default): processes on the host\'s network, TEST_SUBNET ' +
        `${localExecSubnet}, configureNetwork ignored (TEST_SIDECAR=false). "netns": each instance in a network namespace and ` +
        'with a hostname of its own, on a data network of the run (TEST_SUBNET, a /20 of 10.160.0.0/11) that ' +
        'configureNetwork shapes; needs the daemon to run as root',
    ),
});

export interface LocalExecRunnerOptions {
  logger: Logger;
  syncService: Pick<SyncServiceBundle, 'path'>;
  /**
   * Written on what namespace runs create on the host, so that this daemon's leftovers are told from
   * another daemon's on the same host. Default `local`.
   */
  daemonId?: string;
  /**
   * Applies the network configurations plans publish in namespace runs (through the run's
   * NetworkController, runners/network/); without it `run_config.network = "netns"` is refused, since
   * configureNetwork could never be answered.
   */
  networkShaper?: NetworkShaper;
  /** What keeps this process from creating namespaces; default: detected (runners/netns/netns-support.ts). */
  netnsSupportProblems?: () => Promise<string[]>;
  /** How long an instance gets to exit after SIGTERM (timeout or cancel) before SIGKILL. */
  killGraceMs?: number;
  /**
   * Remembers a process of the run, so that a daemon restarted after a crash can stop what its predecessor
   * left (`cleanupInterrupted`). Default: a line in `<tempDir>/instance.pids`.
   */
  recordPid?: (tempDir: string, pid: number) => Promise<void>;
  /**
   * Who instances run as: a root daemon runs them as an unprivileged user, so that they cannot read its
   * environment through `/proc/<ppid>/environ` nor write what it owns. Default: this process's user.
   */
  planUser?: PlanUser;
  /** Bytes of each instance's stdout and stderr kept on disk (runners/instance-output.ts has the default). */
  outputQuotaBytes?: number;
}

const recordPidInFile = (tempDir: string, pid: number): Promise<void> =>
  appendFile(path.join(tempDir, pidsFile), `${pid}\n`);

// Only these of the daemon's variables reach instances; the daemon's own (REDIS_URL, tokens) must not.
const inheritedVariables = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR'];

/**
 * Where an instance reports what ends its run as `error` (its output could not be written, its directories
 * could not be made): the first report stops every instance, and is the run's error once they have ended.
 */
interface RunFault {
  first?: Error;
  report: (error: Error) => void;
}

/** How one instance is started: the bundle run by node, directly or inside its namespace. */
interface InstanceSpec {
  group: string;
  index: number;
  bundle: string;
  env: Record<string, string>;
  outputsPath: string;
  tempPath: string;
  /** Its namespace, in namespace runs. */
  netns?: NetnsInstanceLayout;
}

/**
 * `local:exec`: one Node process per instance on this host, all started at once, with a sync service
 * process of their own for the length of the run. With `run_config.network = "netns"` each instance runs
 * in a network namespace and a UTS namespace of its own (runners/netns/), and the daemon plays the network
 * side: it signals `network-initialized` and its network controller applies configureNetwork requests.
 */
export class LocalExecRunner implements Runner {
  readonly accepts = 'bundle';
  readonly id = 'local:exec';
  readonly configSchema = localExecConfigSchema;
  private readonly logger: Logger;
  private readonly syncService: Pick<SyncServiceBundle, 'path'>;
  private readonly killGraceMs: number;
  private readonly recordPid: (tempDir: string, pid: number) => Promise<void>;
  private readonly daemonId: string;
  private readonly networkShaper: NetworkShaper | undefined;
  private readonly netnsSupportProblems: () => Promise<string[]>;
  private readonly planUser: PlanUser;
  private readonly outputQuotaBytes: number | undefined;

  constructor(options: LocalExecRunnerOptions) {
    this.planUser = options.planUser ?? new PlanUser(undefined);
    this.logger = options.logger;
    this.syncService = options.syncService;
    this.killGraceMs = options.killGraceMs ?? 2_000;
    this.recordPid = options.recordPid ?? recordPidInFile;
    this.daemonId = options.daemonId ?? 'local';
    this.networkShaper = options.networkShaper;
    this.netnsSupportProblems = options.netnsSupportProblems ?? (() => netnsSupportProblems());
    this.outputQuotaBytes = options.outputQuotaBytes;
  }

  async run(input: RunInput): Promise<RunOutput> {
    const logger = this.logger.child({ runId: input.runId });
    const shaper = input.run.runConfig.network === 'netns' ? await this.netnsShaper(input) : undefined;
    const network = shaper
      ? await RunNetwork.create({
          runId: input.runId,
          daemonId: this.daemonId,
          instanceCount: input.run.totalInstances,
          scratchDir: input.tempDir,
        })
      : undefined;
    try {
      // A process of its own: spawning instances blocks this process's event loop (tens of ms per child
      // here), and instance handshakes must not wait behind that.
      const syncHost = network?.layout.controlGateway ?? '127.0.0.1';
      const sync = await startSyncServiceProcess(
        await this.syncService.path(),
        { TEST_RUN: input.runId },
        logger.child({ component: 'sync' }),
        { host: syncHost },
      );
      // From here on the sync service is ours to stop, whatever fails.
      let networkSide: NetworkSide | undefined;
      try {
        await this.recordPid(input.tempDir, sync.pid);
        input.log.info(`local:exec: sync service listening on ${syncHost}:${sync.port}`);
        input.progress?.syncServiceAt({ host: syncHost, port: sync.port });
        warnResourcesNotEnforced(input);
        const specs = this.instanceSpecs(input, { host: syncHost, port: sync.port }, network);
        // The instances' processes while they run, for a refusal or an output failure to stop.
        const running = new Set<ChildProcess>();
        // An instance whose output cannot be written (or that could not be prepared): the run cannot keep
        // what it prints, so every instance is stopped and the run ends as `error` naming the cause. No
        // instance is left running behind a run that has ended.
        const fault: RunFault = {
          report: (error) => {
            if (fault.first) return;
            fault.first = error;
            running.forEach((child) => this.stopProcess(child));
          },
        };
        if (network && shaper) {
          const { layout } = network;
          input.log.info(
            `local:exec: ${layout.instances.length} network namespaces tg-${layout.shortId}-0…${layout.instances.length - 1}: ` +
              `data network ${layout.dataSubnet} on bridge ${layout.dataBridge} (host ${layout.dataGateway}), ` +
              `control network ${layout.controlSubnet} on bridge ${layout.controlBridge}`,
          );
          networkSide = await NetworkSide.start({
            network,
            shaper,
            syncService: { host: syncHost, port: sync.port },
            runId: input.runId,
            plan: input.run.plan,
            testCase: input.run.testCase,
            log: input.log,
            signal: input.signal,
            // A refused configuration stops the whole run: the others would wait for its callback.
            stopRun: () => running.forEach((child) => this.stopProcess(child)),
          });
        }
        const side = networkSide;
        // A way to each bundle and to the directories that hold the instances' own, once per run rather than
        // once per instance (each a walk up to /): an instance's own directories are then the plan user's.
        const groupDirs = specs.flatMap((spec) => [
          path.dirname(spec.outputsPath),
          path.dirname(spec.tempPath),
        ]);
        for (const dir of new Set(groupDirs)) {
          await mkdir(dir, { recursive: true });
          await this.planUser.reach(dir);
        }
        for (const bundle of new Set(specs.map((spec) => spec.bundle))) await this.planUser.reach(bundle);
        const takeBack = new TakeBackBatcher((dirs) => this.planUser.takeBackTrees(dirs));
        const turns = new SpawnTurns();
        const settled = await Promise.allSettled(
          specs.map((spec) =>
            this.runInstance(input, spec, running, side, fault, { takeBack, turns }).catch((error: Error) => {
              fault.report(error);
              throw error;
            }),
          ),
        );
        if (fault.first) throw fault.first;
        return {
          instances: settled.map((result) => (result as PromiseFulfilledResult<InstanceResult>).value),
        };
      } finally {
        await networkSide?.close().catch((error: Error) => {
          logger.warn({ err: error }, 'could not stop the network controller');
        });
        await sync.close();
      }
    } finally {
      await network?.remove().catch((error: Error) => {
        logger.error({ err: error }, "could not remove the run's network namespaces");
        input.log.warn(
          `local:exec: ${error.message}; "testground terminate --runner local:exec" removes leftovers`,
        );
      });
    }
  }

  /** The shaper of a namespace run, once everything the run needs is known to be there. */
  private async netnsShaper(input: RunInput): Promise<NetworkShaper> {
    const problems = await this.netnsSupportProblems();
    if (!this.networkShaper) {
      problems.push(
        'this daemon was started without a network shaper, so configureNetwork requests could not be answered',
      );
    }
    if (input.run.totalInstances > maxNetnsInstances) {
      problems.push(
        `it takes at most ${maxNetnsInstances} instances, and the run has ${input.run.totalInstances}`,
      );
    }
    if (problems.length > 0 || !this.networkShaper) {
      throw new RunnerError(
        `run_config.network = "netns" cannot run here: ${problems.join('; ')}. ` +
          "Without the option, local:exec runs the instances on the host's network",
      );
    }
    return this.networkShaper;
  }

  private instanceSpecs(
    input: RunInput,
    sync: { host: string; port: number },
    network: RunNetwork | undefined,
  ): InstanceSpec[] {
    const baseEnv = Object.fromEntries(
      inheritedVariables.flatMap((name) =>
        process.env[name] === undefined ? [] : [[name, process.env[name]!]],
      ),
    );
    const specs: InstanceSpec[] = [];
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
        const netns = network?.layout.instances[specs.length];
        const env = instanceEnv({
          runId: input.runId,
          run: input.run,
          group,
          outputsPath,
          tempPath,
          sidecar: network !== undefined,
          subnet: network?.layout.dataSubnet ?? localExecSubnet,
          syncServiceHost: sync.host,
          syncServicePort: sync.port,
          startTime: input.startTime,
        });
        specs.push({
          group: group.id,
          index,
          bundle: artifact.path,
          // The daemon's home and temp directory are not the plan user's to write.
          env: {
            ...baseEnv,
            ...(this.planUser.isolated ? { HOME: tempPath, TMPDIR: tempPath } : {}),
            ...env,
          },
          outputsPath,
          tempPath,
          ...(netns ? { netns } : {}),
        });
      }
    }
    return specs;
  }

  private async runInstance(
    input: RunInput,
    spec: InstanceSpec,
    running: Set<ChildProcess>,
    networkSide: NetworkSide | undefined,
    fault: RunFault,
    { takeBack, turns }: { takeBack: TakeBackBatcher; turns: SpawnTurns },
  ): Promise<InstanceResult> {
    const label = `${spec.group}[${spec.index}]`;
    // The stdout capture is the daemon's, beside the instance's temp directory and not in it: the daemon
    // reads it back by name, and the plan user must not be able to put a link there.
    const captureDir = `${spec.tempPath}.capture`;
    for (const dir of [spec.outputsPath, spec.tempPath, captureDir]) await mkdir(dir, { recursive: true });
    const output = new InstanceOutput({
      group: spec.group,
      index: spec.index,
      log: input.log,
      dir: spec.outputsPath,
      scratchDir: captureDir,
      ...(this.outputQuotaBytes === undefined ? {} : { quotaBytes: this.outputQuotaBytes }),
      onFailure: (error) => {
        this.logger.error(
          { runId: input.runId, instance: label, err: error },
          'could not write an instance output',
        );
        fault.report(
          new RunnerError(
            `instance ${label}: could not write its output: ${error.message}; the run was stopped`,
          ),
        );
      },
    });
    // Its own two directories (the way to them and to its bundle was made once for the run); nothing else
    // of the daemon's is the plan user's.
    for (const dir of [spec.outputsPath, spec.tempPath]) await this.planUser.handOver(dir);
    // Last in the chain (after nsenter/unshare, which need root): setpriv execs node, so the pid is node's.
    // Without --enable-source-maps: it reads and parses the bundle's map at every start (~30 ms of CPU per
    // instance here, a third of a bare node's start); the SDK maps the stacks it records itself
    // (sdk/stack-source-map.ts), only when something failed.
    const node = this.planUser.command([process.execPath, spec.bundle]);
    // In its namespace, under a hostname of its own (SDKs publish network configurations on
    // `network:<hostname>`): nsenter, unshare and sh each exec the next, so the pid is node's.
    const [file, ...args] = spec.netns
      ? [
          'nsenter',
          `--net=${path.join(netnsDir, spec.netns.netns)}`,
          '--',
          'unshare',
          '--uts',
          '--',
          'sh',
          '-c',
          'hostname "$0" && exec "$@"',
          spec.netns.hostname,
          ...node,
        ]
      : node;
    const conclude = (
      ending: InstanceEnding,
      stopped: StopReason | undefined,
      endedBeforeRefusal: boolean,
      endedAt?: Date,
    ): InstanceResult => {
      const result = concludeInstance({
        group: spec.group,
        index: spec.index,
        terminal: output.terminal,
        ending,
        stopped,
        timeoutMs: input.run.timeoutMs,
        log: input.log,
        phases: output.phases,
        ...(endedAt === undefined ? {} : { endedAt }),
        ...networkSide?.refusals.failureOf({
          label,
          ending,
          terminal: output.terminal,
          endedBeforeRefusal,
        }),
      });
      return output.notes.length > 0 ? { ...result, notes: [...output.notes] } : result;
    };
    await turns.next();
    // Another instance's configuration was refused, or could not have its output written, while this one
    // was being prepared or waited for its turn: the run is stopping.
    if (networkSide?.refusals.first || fault.first) {
      await output.finish();
      return conclude({ kind: 'never-started' }, undefined, false);
    }
    // Its own process group, so a timeout or cancel also stops whatever the instance spawned.
    const child = spawn(file!, args, {
      cwd: spec.tempPath,
      env: spec.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    output.mark('created');
    // Everything that listens to the child is attached before the first await: a child that exits while we
    // wait would otherwise have its output discarded and its 'close' missed, and its run would never end.
    // The pipe is not read while the output waits for the disk or the live log: the instance's writes then
    // block in its own process, which is what keeps the daemon's memory bounded.
    const pump = (source: Readable, stream: 'stdout' | 'stderr'): void => {
      source.on('data', (chunk: Buffer) => {
        const ready = output.write(stream, chunk);
        if (!ready) return;
        source.pause();
        void ready.then(() => source.resume());
      });
    };
    pump(child.stdout, 'stdout');
    pump(child.stderr, 'stderr');
    const exited = new Promise<{ exitCode: number | null; signal: string | null; spawnError?: Error }>(
      (resolve) => {
        child.once('error', (error) => resolve({ exitCode: null, signal: null, spawnError: error }));
        child.once('close', (exitCode, signal) => resolve({ exitCode, signal }));
      },
    );
    running.add(child);
    void exited.then(() => running.delete(child));
    if (child.pid !== undefined) await this.recordPid(input.tempDir, child.pid);
    const netns = spec.netns;
    if (networkSide && netns && child.pid !== undefined) {
      const signalled = await networkSide.serve({
        netns,
        label,
        running: () => child.exitCode === null && child.signalCode === null,
        writeStderr: (chunk) => void output.write('stderr', chunk),
      });
      if (signalled) output.mark('network-initialized');
    }

    // Each instance has the whole run timeout from its own start, as it always had.
    const stop = new StopTrigger({
      timeoutMs: input.run.timeoutMs,
      signal: input.signal,
      stop: () => this.stopProcess(child),
    });
    const exit = await exited;
    const endedAt = new Date();
    const endedBeforeRefusal = networkSide?.refusals.first === undefined;
    stop.dispose();
    // The outputs are the daemon's again before it reads them: whatever the instance left running can no
    // longer swap a file for a link while run.out is read or the outputs are archived.
    await takeBack.takeBack(spec.outputsPath).catch((error: Error) => {
      input.log.warn(`local:exec: could not take back the outputs of ${label}: ${error.message}`);
    });
    if (networkSide && netns) await networkSide.release({ netns });
    await output.finish();
    const ending: InstanceEnding = exit.spawnError
      ? { kind: 'failed-to-start', reason: `could not start ${file}: ${exit.spawnError.message}` }
      : { kind: 'exited', exitCode: exit.exitCode, signal: exit.signal };
    return conclude(ending, stop.reason, endedBeforeRefusal, endedAt);
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
    // A namespace run also left its namespaces, bridges, veths and firewall rule (none for a host run).
    await removeRunNetwork(runId);
  }

  async healthcheck(options: {
    fix: boolean;
    activeRunIds: ReadonlySet<string>;
  }): Promise<HealthcheckCheck[]> {
    const problems = await this.netnsSupportProblems();
    if (!this.networkShaper) problems.push('this daemon was started without a network shaper');
    const checks: HealthcheckCheck[] = [
      { name: 'node', ok: true, message: `instances run with ${process.execPath} (${process.version})` },
      // Informational: a daemon that is not root still runs plans, and says what that means.
      { name: 'plan user', ok: true, message: this.planUser.describe() },
      {
        name: 'network namespaces',
        // Optional: runs without run_config.network = "netns" do not need them.
        ok: true,
        message:
          problems.length === 0
            ? 'run_config.network = "netns" is available'
            : `run_config.network = "netns" is not available: ${problems.join('; ')}`,
      },
    ];
    const leftovers = await this.findNetnsLeftovers(options.activeRunIds).catch((error: Error) => error);
    if (leftovers instanceof Error) {
      checks.push({
        name: 'leftovers',
        ok: false,
        message: `could not look for leftovers: ${leftovers.message}`,
      });
      return checks;
    }
    const names = leftovers.flatMap((objects) => [...objects.namespaces, ...objects.links]);
    const check: HealthcheckCheck = {
      name: 'leftovers',
      ok: leftovers.length === 0,
      message:
        leftovers.length === 0
          ? 'no network namespaces or interfaces left by ended runs'
          : `left by ended runs: ${names.join(', ') || leftovers.map((objects) => `firewall rule of tg${objects.shortId}`).join(', ')}`,
    };
    if (leftovers.length > 0 && options.fix) {
      const removed = await this.removeNetnsObjects(leftovers);
      check.fix = `removed ${removed.namespaces} network namespaces and ${removed.interfaces} interfaces`;
    }
    checks.push(check);
    return checks;
  }

  async removeLeftovers(activeRunIds: ReadonlySet<string>): Promise<Record<string, number>> {
    // Instances are children of the daemon: they end with their run, or at the next start-up
    // (cleanupInterrupted). What namespace runs create on the host can outlive both.
    return this.removeNetnsObjects(await this.findNetnsLeftovers(activeRunIds));
  }

  /**
   * Namespace runs of this daemon that are not active, and objects whose data bridge is gone (a removal
   * that did not finish; the bridge is created first and removed last, so no live run looks like that).
   * Another daemon's runs on the same host are left alone.
   */
  private async findNetnsLeftovers(activeRunIds: ReadonlySet<string>): Promise<NetnsRunObjects[]> {
    const active = new Set([...activeRunIds].map(netnsShortId));
    return [...(await listNetnsRuns()).values()].filter(
      (objects) =>
        !active.has(objects.shortId) &&
        (objects.owner === undefined
          ? !objects.links.includes(`tg${objects.shortId}`)
          : objects.owner.daemonId === this.daemonId),
    );
  }

  private async removeNetnsObjects(
    leftovers: readonly NetnsRunObjects[],
  ): Promise<{ namespaces: number; interfaces: number }> {
    const removed = { namespaces: 0, interfaces: 0 };
    for (const objects of leftovers) {
      this.logger.warn(
        { shortId: objects.shortId, owner: objects.owner },
        'removing a namespace run left over',
      );
      await removeNetnsRun(objects);
      removed.namespaces += objects.namespaces.length;
      removed.interfaces += objects.links.length;
    }
    return removed;
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

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import os from 'node:os';
import { createInterface } from 'node:readline';
import { HostCommandError } from '../host-command.ts';
import { describeNamespace, namespaceCommand } from './namespace-command.ts';
import type { NetworkNamespace } from './network-shaper.ts';
import type { DelayQueue } from './shaping-plan.ts';

/** Nice value of the packet delayer (lower runs first; 0 is a plain process's). */
const delayerPriority = -10;

const answerTimeoutMs = 5_000;
const stopTimeoutMs = 3_000;
const stderrKeptChars = 4_000;

export interface PacketDelayerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The end of what it wrote on stderr (its last line counts what it delayed and dropped). */
  stderr: string;
}

/**
 * One running packet delayer (native/packet-delayer.c) inside one namespace. It is configured through its
 * stdin ("queue <n> <latency ns> <jitter ns> <loss ppb> <hold|resend>" lines, then "commit", answered
 * "ready" or "error …"), lets every held packet go and
 * exits when its stdin ends, and dies with this process (PR_SET_PDEATHSIG) or, for a pid target, with
 * that pid.
 */
export class PacketDelayerProcess {
  /** Settles when the process has exited, for whatever reason. */
  readonly exited: Promise<PacketDelayerExit>;
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly answers: string[] = [];
  private readonly waiting: ((line: string | undefined) => void)[] = [];
  private configuring: Promise<void> = Promise.resolve();
  private stderr = '';
  private ended = false;

  private constructor(child: ChildProcessWithoutNullStreams, what: string) {
    this.child = child;
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-stderrKeptChars);
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      const waiter = this.waiting.shift();
      if (waiter) waiter(line);
      else this.answers.push(line);
    });
    child.stdin.on('error', () => {});
    this.exited = new Promise((resolve) => {
      let spawnError = '';
      child.once('error', (error) => (spawnError = `${what} could not start: ${error.message}\n`));
      child.once('close', (code, signal) => {
        this.ended = true;
        for (const waiter of this.waiting.splice(0)) waiter(undefined);
        resolve({ code, signal, stderr: spawnError + this.stderr });
      });
    });
  }

  static start(options: {
    binary: string;
    namespace: NetworkNamespace;
    dataInterface: string;
  }): PacketDelayerProcess {
    const { namespace } = options;
    const args = [options.binary, '--interface', options.dataInterface];
    if (namespace.kind === 'pid') args.push('--watch-pid', String(namespace.pid));
    const [command = 'nsenter', ...rest] = namespaceCommand(namespace, args);
    const child = spawn(command, rest, { stdio: ['pipe', 'pipe', 'pipe'] });
    // The delayer is the emulated network: plans busy on every core must not delay it further. nsenter
    // execs it in place, so the pid is the delayer's. Best effort: a daemon without CAP_SYS_NICE keeps 0.
    if (child.pid !== undefined) {
      try {
        os.setPriority(child.pid, delayerPriority);
      } catch {
        // not allowed here; the delayer runs at the daemon's priority
      }
    }
    return new PacketDelayerProcess(child, `the packet delayer in ${describeNamespace(namespace)}`);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Replaces the delayer's queues; resolves once it has bound them and applies the new delays. */
  configure(queues: readonly DelayQueue[]): Promise<void> {
    const next = this.configuring.then(() => this.sendConfiguration(queues));
    this.configuring = next.catch(() => {});
    return next;
  }

  /** Ends its stdin: it lets every packet it holds go and exits; killed if it has not within 3 s. */
  async stop(): Promise<PacketDelayerExit> {
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), stopTimeoutMs);
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }

  private async sendConfiguration(queues: readonly DelayQueue[]): Promise<void> {
    if (this.ended) throw await this.failure('exited before it could be configured');
    const lines = queues.map(
      (q) => `queue ${q.queue} ${q.latencyNs} ${q.jitterNs} ${Math.round(q.loss * 1e7)} ${q.mode}`,
    );
    this.child.stdin.write([...lines, 'commit', ''].join('\n'));
    const answer = await this.nextAnswer();
    if (answer === 'ready') return;
    if (answer === undefined) throw await this.failure('exited while being configured');
    if (answer === 'timeout') throw await this.failure(`did not answer within ${answerTimeoutMs} ms`);
    throw new HostCommandError(
      `the packet delayer refused its configuration: ${answer.replace(/^error /, '')}`,
    );
  }

  private nextAnswer(): Promise<string | undefined> {
    const ready = this.answers.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    if (this.ended) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const index = this.waiting.indexOf(waiter);
        if (index >= 0) this.waiting.splice(index, 1);
        resolve('timeout');
      }, answerTimeoutMs);
      const waiter = (line: string | undefined): void => {
        clearTimeout(timer);
        resolve(line);
      };
      this.waiting.push(waiter);
    });
  }

  private async failure(what: string): Promise<HostCommandError> {
    const exit = this.ended ? await this.exited : { stderr: this.stderr, code: null, signal: null };
    const detail = exit.stderr.trim().split('\n').slice(-3).join('; ');
    return new HostCommandError(`the packet delayer ${what}${detail ? `: ${detail}` : ''}`, {
      exitCode: exit.code,
      stderr: exit.stderr,
    });
  }
}

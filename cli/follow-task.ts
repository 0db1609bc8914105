import { createLogUpdate } from 'log-update';
import type { LogLine, Submitted, TaskView } from '../api/schemas.ts';
import type { ApiClient } from './api-client.ts';
import { exitCodes } from './exit-codes.ts';
import { formatLogLine } from './log-printer.ts';
import { formatProgress, type ProgressSnapshot } from './progress-view.ts';
import type { Output } from './task-printer.ts';

/** What following needs of the daemon. */
export type FollowClient = Pick<ApiClient, 'readLogs' | 'getTask' | 'cancel'>;

/** Where Ctrl-C comes from: the process, or a stand-in in a test. */
export interface InterruptSource {
  on(event: 'SIGINT', listener: () => void): unknown;
  off(event: 'SIGINT', listener: () => void): unknown;
}

export interface FollowTaskOptions {
  /** Log lines not to print (the warnings the submission already printed). */
  skip?: (line: LogLine) => boolean;
  /**
   * The terminal to redraw the status lines on, log lines scrolling above them; `false` for plain periodic
   * lines. Default: standard output when it is a terminal (and `TERM` is not `dumb`).
   */
  terminal?: NodeJS.WriteStream | false;
  /** How often a plain progress line is printed when there is no terminal; 4000 ms unless given. */
  plainEveryMs?: number;
  /** How soon a second Ctrl-C must follow the first to cancel the task; 2000 ms unless given. */
  secondInterruptMs?: number;
  interrupts?: InterruptSource;
  now?: () => number;
}

/**
 * Thrown when the user stopped following with Ctrl-C: the messages are printed already, and the command
 * exits with `exitCode` (130 when the task goes on, 4 when the second Ctrl-C canceled it).
 */
export class FollowStopped extends Error {
  readonly exitCode: number;

  constructor(exitCode: number, message: string) {
    super(message);
    this.name = 'FollowStopped';
    this.exitCode = exitCode;
  }
}

/** How often the terminal's status lines are redrawn for the elapsed time, and how soon after a log line. */
const redrawEveryMs = 1_000;
const redrawAfterLineMs = 100;

/** Follows a task the CLI just submitted, leaving out the warnings the submission printed. */
export function followToEnd(
  client: FollowClient,
  submitted: Submitted,
  output: Output,
  options: FollowTaskOptions = {},
): Promise<TaskView> {
  const printed = new Set(submitted.warnings.map((warning) => `${warning.path}: ${warning.message}`));
  return followTask(client, submitted.task_id, output, {
    ...options,
    skip: (line) => line.kind === 'log' && line.level === 'warn' && printed.has(line.msg),
  });
}

/**
 * Prints a task's log until it ends and returns the task, showing how far it got while it waits: on a
 * terminal, a status line per group (and per barrier being waited on) redrawn in place under the log;
 * elsewhere (a CI log), a plain `progress:` line every few seconds. Ctrl-C stops following and says how to
 * go on; a second Ctrl-C soon after cancels the task. Either way it throws {@link FollowStopped}.
 */
export async function followTask(
  client: FollowClient,
  taskId: string,
  output: Output,
  options: FollowTaskOptions = {},
): Promise<TaskView> {
  const now = options.now ?? Date.now;
  const started = now();
  const reads = new AbortController();
  const status = new TaskStatus(taskId);
  status.seed(await client.getTask(taskId));
  const view = pickView(options, output, () => status.lines(now() - started));
  const interrupts = options.interrupts ?? process;
  const secondInterruptMs = options.secondInterruptMs ?? 2_000;

  let stop: ((how: 'detach' | 'cancel') => void) | undefined;
  const stopped = new Promise<'detach' | 'cancel'>((resolve) => (stop = resolve));
  let firstInterrupt: number | undefined;
  let detachTimer: NodeJS.Timeout | undefined;
  const onInterrupt = (): void => {
    const at = now();
    if (firstInterrupt !== undefined && at - firstInterrupt <= secondInterruptMs) {
      clearTimeout(detachTimer);
      stop?.('cancel');
      return;
    }
    firstInterrupt = at;
    view.message(() => {
      output.err(
        `task ${taskId} is still running; follow it with "testground logs -f -t ${taskId}", stop it with "testground cancel -t ${taskId}"`,
      );
      output.err(`(press Ctrl-C again within ${secondInterruptMs / 1000} s to cancel it)`);
    });
    detachTimer = setTimeout(() => stop?.('detach'), secondInterruptMs);
  };
  interrupts.on('SIGINT', onInterrupt);

  const followed = client.readLogs(
    taskId,
    (line) => {
      if (line.kind === 'progress') return status.progress(line);
      if (line.kind === 'state' || line.kind === 'end') status.state(line.state);
      // After a Ctrl-C the log stops scrolling, so the hint stays on screen while a second one may come.
      if (firstInterrupt === undefined && !options.skip?.(line)) view.line(formatLogLine(line));
    },
    { follow: true, signal: reads.signal },
  );
  try {
    const how = await Promise.race([followed.then(() => 'ended' as const), stopped]);
    if (how === 'ended') return await client.getTask(taskId);
    // Aborting ends the read quietly; whatever it failed with after the user stopped following is moot.
    followed.catch(() => undefined);
    reads.abort();
    view.close();
    if (how === 'detach') {
      throw new FollowStopped(exitCodes.interrupted, `stopped following task ${taskId}; it goes on`);
    }
    await client.cancel(taskId);
    output.err(`canceled task ${taskId} (second Ctrl-C): the daemon stops its instances`);
    throw new FollowStopped(exitCodes.canceled, `canceled task ${taskId}`);
  } finally {
    clearTimeout(detachTimer);
    interrupts.off('SIGINT', onInterrupt);
    reads.abort();
    view.close();
  }
}

/** What the status lines say: the task's state until a run reports progress, then that run's groups. */
class TaskStatus {
  private readonly taskId: string;
  private taskState = 'queued';
  private readonly runNames = new Map<string, string>();
  private latest: ProgressSnapshot | undefined;

  constructor(taskId: string) {
    this.taskId = taskId;
  }

  seed(task: TaskView): void {
    this.taskState = task.state;
    if (task.runs.length > 1) for (const run of task.runs) this.runNames.set(run.id, run.name);
    // A daemon from before progress existed sends none.
    const last = (task.progress as TaskView['progress'] | undefined)?.at(-1);
    if (last !== undefined) this.latest = last;
  }

  state(state: string): void {
    this.taskState = state;
  }

  progress(progress: ProgressSnapshot): void {
    this.latest = { run: progress.run, groups: progress.groups, states: progress.states };
  }

  lines(elapsedMs: number): string[] {
    const head = `task ${this.taskId} ${this.taskState} (${Math.round(elapsedMs / 1000)} s)`;
    if (this.latest === undefined || this.taskState !== 'running') return [head];
    return [head, ...formatProgress(this.latest, this.runNames.get(this.latest.run))];
  }
}

/** Prints log lines and shows the status while a task is followed. */
interface FollowView {
  line(text: string): void;
  /** Prints something of the CLI's own (on stderr) without tearing the status lines. */
  message(print: () => void): void;
  close(): void;
}

function pickView(options: FollowTaskOptions, output: Output, lines: () => string[]): FollowView {
  const terminal =
    options.terminal ??
    (process.stdout.isTTY && process.env.TERM !== 'dumb' ? process.stdout : (false as const));
  return terminal === false
    ? new PlainView(output, lines, options.plainEveryMs ?? 4_000)
    : new TerminalView(terminal, output, lines);
}

/** A CI log: lines as they come, and the status as a `progress:` line every `everyMs`. */
class PlainView implements FollowView {
  private readonly output: Output;
  private readonly timer: NodeJS.Timeout;

  constructor(output: Output, lines: () => string[], everyMs: number) {
    this.output = output;
    this.timer = setInterval(() => output.out(`progress: ${lines().join('; ')}`), everyMs);
  }

  line(text: string): void {
    this.output.out(text);
  }

  message(print: () => void): void {
    print();
  }

  close(): void {
    clearInterval(this.timer);
  }
}

/** A terminal: the status lines stay at the bottom, redrawn in place (log-update), log lines scroll above. */
class TerminalView implements FollowView {
  private readonly output: Output;
  private readonly lines: () => string[];
  private readonly live: ReturnType<typeof createLogUpdate>;
  private readonly ticker: NodeJS.Timeout;
  private pending: NodeJS.Timeout | undefined;
  private drawn = false;
  private closed = false;

  constructor(terminal: NodeJS.WriteStream, output: Output, lines: () => string[]) {
    this.output = output;
    this.lines = lines;
    // The cursor stays visible: hiding it would need an exit hook to show it again after Ctrl-C.
    this.live = createLogUpdate(terminal, { showCursor: true });
    this.ticker = setInterval(() => this.draw(), redrawEveryMs);
    this.draw();
  }

  line(text: string): void {
    this.above(() => this.output.out(text));
  }

  message(print: () => void): void {
    this.above(print);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.ticker);
    clearTimeout(this.pending);
    if (this.drawn) this.live.clear();
    this.live.done();
  }

  private above(print: () => void): void {
    if (this.drawn) {
      this.live.clear();
      this.drawn = false;
    }
    print();
    // A burst of lines redraws once, not once per line.
    this.pending ??= setTimeout(() => {
      this.pending = undefined;
      this.draw();
    }, redrawAfterLineMs);
  }

  private draw(): void {
    if (this.closed) return;
    this.live(this.lines().join('\n'));
    this.drawn = true;
  }
}

import { constants, createReadStream } from 'node:fs';
import { copyFile, lstat, rm } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { StringDecoder } from 'node:string_decoder';
import type { TaskLog } from '../core/task-log.ts';
import { parseEventLine, type InstanceEvent } from '../core/contract/events.ts';
import { pickTerminalEvent } from '../core/outcome.ts';
import type { InstancePhase } from '../core/run.ts';
import { CappedFile, FileWriteError, OutputQuota } from './capped-file.ts';
import { formatBytes } from './local-docker/host-resource-clamp.ts';

// A line longer than this is passed on in pieces rather than held in memory without end.
const maxLineChars = 1024 * 1024;

// Stage marks kept per instance: they go onto the task record, which an instance printing stage events in a
// loop must not blow up. Past this, stages are still in run.out, only not in `phases`.
const maxStageMarks = 200;

/** What an instance's captured stdout and stderr may take on disk together, unless the daemon says otherwise. */
export const defaultOutputQuotaBytes = 256 * 1024 * 1024;

type StreamName = 'stdout' | 'stderr';

export interface InstanceOutputOptions {
  group: string;
  index: number;
  log: TaskLog;
  /** The instance's outputs directory. */
  dir: string;
  /** Must exist and be the instance's own. */
  scratchDir: string;
  /** The daemon's clock, for the phases it marks itself; default the wall clock. */
  now?: () => Date;
  /** Bytes of stdout and stderr kept on disk (run.out and run.err together); default 256 MiB. */
  quotaBytes?: number;
  /**
   * Called once, at the first failure to write the instance's files (EPERM, ENOSPC, …): the run cannot
   * keep what its instances print, so its runner stops it and ends it as `error` with `failure`.
   */
  onFailure?: (error: FileWriteError) => void;
}

/**
 * Everything one instance writes, whatever runner started it: lines go to the live task log, stdout is
 * scanned for events (the terminal one decides the outcome), stderr is kept as `run.err`, and stdout
 * becomes `run.out` unless the instance wrote `run.out` itself (both SDKs do), so that each event is
 * there exactly once. What the daemon keeps on disk is held to a quota (then truncated with a note, and
 * `notes` says so); `write` asks the source to wait while the disk or the live log catches up, so the
 * daemon's memory stays bounded whatever an instance prints.
 */
export class InstanceOutput {
  private readonly options: InstanceOutputOptions;
  private readonly captureFile: string;
  private readonly stdoutCapture: CappedFile;
  private readonly stderrFile: CappedFile;
  private readonly decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
  private readonly partial = { stdout: '', stderr: '' };
  private terminalEvent: InstanceEvent | undefined;
  private firstFailure: FileWriteError | undefined;
  private readonly notesList: string[] = [];
  private readonly marks: InstancePhase[] = [];
  private startedMarked = false;
  private stageMarks = 0;
  private readonly now: () => Date;

  constructor(options: InstanceOutputOptions) {
    this.options = options;
    const quota = new OutputQuota(options.quotaBytes ?? defaultOutputQuotaBytes);
    const onError = (error: FileWriteError): void => this.fail(error);
    this.captureFile = path.join(options.scratchDir, 'stdout.capture');
    this.stdoutCapture = new CappedFile(this.captureFile, quota, onError);
    this.stderrFile = new CappedFile(path.join(options.dir, 'run.err'), quota, onError);
    this.now = options.now ?? (() => new Date());
  }

  /**
   * Marks a phase the runner saw (`created`, `network-initialized`) at `at`, or now. `started` and the
   * stages are marked from the instance's output.
   */
  mark(name: string, at: Date = this.now()): void {
    this.marks.push({ name, at: at.toISOString() });
    this.options.log.instancePhase?.(this.options.group, this.options.index, name);
  }

  /**
   * The phases marked so far, in time order (a stage's time is the instance's own clock, which may run a
   * little apart from the daemon's; equal times keep the order they were marked in).
   */
  get phases(): InstancePhase[] {
    return [...this.marks].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  }

  get terminal(): InstanceEvent | undefined {
    return this.terminalEvent;
  }

  /** The first failure to write the instance's files, if any: the run it belongs to cannot be trusted. */
  get failure(): FileWriteError | undefined {
    return this.firstFailure;
  }

  /** What the result should say about the output (a truncation at the quota). */
  get notes(): readonly string[] {
    return this.notesList;
  }

  /** Takes a chunk; returns a promise when the source should wait for it before sending more. */
  write(stream: StreamName, chunk: Buffer): Promise<void> | undefined {
    const file = stream === 'stdout' ? this.stdoutCapture : this.stderrFile;
    const diskReady = file.write(chunk);
    const text = this.partial[stream] + this.decoders[stream].write(chunk);
    let start = 0;
    for (let newline = text.indexOf('\n'); newline !== -1; newline = text.indexOf('\n', start)) {
      this.line(stream, text.slice(start, newline));
      start = newline + 1;
    }
    let rest = start === 0 ? text : text.slice(start);
    if (rest.length > maxLineChars) {
      this.line(stream, rest);
      rest = '';
    }
    this.partial[stream] = rest;
    const logReady = this.options.log.backpressure?.();
    if (diskReady && logReady) return Promise.all([diskReady, logReady]).then(() => undefined);
    return diskReady ?? logReady;
  }

  /**
   * Call once the process (or container) has exited and its streams are drained. Never throws: a file
   * that could not be written is `failure`.
   */
  async finish(): Promise<void> {
    for (const stream of ['stdout', 'stderr'] as const) {
      const rest = this.partial[stream] + this.decoders[stream].end();
      if (rest) this.line(stream, rest);
      this.partial[stream] = '';
    }
    await Promise.all([this.stdoutCapture.close('run.out'), this.stderrFile.close('run.err')]);
    const truncated = [this.stdoutCapture, this.stderrFile].filter((file) => file.dropped > 0);
    if (truncated.length > 0) {
      const { group, index } = this.options;
      const quota = formatBytes(this.options.quotaBytes ?? defaultOutputQuotaBytes);
      const note =
        `output truncated at the quota of ${quota} per instance: ` +
        truncated
          .map(
            (file) => `${file === this.stderrFile ? 'run.err' : 'run.out'} lost ${formatBytes(file.dropped)}`,
          )
          .join(', ');
      this.notesList.push(note);
      this.options.log.warn(`${group}[${index}]: ${note}`);
    }
    const runOut = path.join(this.options.dir, 'run.out');
    try {
      // lstat, and a fresh file: the instance may run as another user and leave a link here, which the
      // daemon must never write (or read) through.
      const written = await lstat(runOut).catch(() => undefined);
      if (!written || !written.isFile() || written.size === 0) {
        await rm(runOut, { force: true })
          .then(() => copyFile(this.captureFile, runOut, constants.COPYFILE_EXCL))
          .catch((error: NodeJS.ErrnoException) => {
            throw new FileWriteError(runOut, error);
          });
      } else if (!this.terminalEvent) {
        // Node drops stdout still queued for a pipe when a process calls process.exit(), so the last events
        // may never reach us; the SDKs also write run.out, synchronously, and that file has them. It is the
        // instance's file, of any size: read a line at a time.
        const lines = createInterface({ input: createReadStream(runOut), crlfDelay: Infinity });
        for await (const line of lines) {
          const event = parseEventLine(line);
          if (event) this.terminalEvent = pickTerminalEvent(this.terminalEvent, event);
        }
      }
    } catch (error) {
      if (error instanceof FileWriteError) this.fail(error);
      else this.fail(new FileWriteError(runOut, error as NodeJS.ErrnoException));
    }
    await rm(this.captureFile, { force: true });
  }

  private fail(error: FileWriteError): void {
    if (this.firstFailure) return;
    this.firstFailure = error;
    this.options.onFailure?.(error);
  }

  private line(stream: StreamName, raw: string): void {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    this.options.log.output(this.options.group, this.options.index, stream, line);
    const event = stream === 'stdout' ? parseEventLine(line) : undefined;
    if (!this.startedMarked) {
      // Its `start` event when that comes first, else its first output of any kind.
      this.startedMarked = true;
      this.mark('started', event?.kind === 'start' ? eventTime(event) : undefined);
    }
    if (!event) return;
    this.terminalEvent = pickTerminalEvent(this.terminalEvent, event);
    if ((event.kind === 'stage_start' || event.kind === 'stage_end') && this.stageMarks++ < maxStageMarks) {
      const prefix = event.kind === 'stage_start' ? 'stage-start' : 'stage-end';
      this.mark(`${prefix}:${event.name}`, eventTime(event));
    }
  }
}

/** When the instance says the event happened (its `ts`, Unix nanoseconds); undefined when it does not. */
function eventTime(event: InstanceEvent): Date | undefined {
  if (event.ts === undefined || !Number.isFinite(event.ts) || event.ts <= 0) return undefined;
  const at = new Date(Math.round(event.ts / 1e6));
  return Number.isNaN(at.getTime()) ? undefined : at;
}

import { constants, createWriteStream, type WriteStream } from 'node:fs';
import { copyFile, lstat, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { TaskLog } from '../core/task-log.ts';
import { parseEventLine, type InstanceEvent } from '../core/contract/events.ts';
import { pickTerminalEvent } from '../core/outcome.ts';

// A line longer than this is passed on in pieces rather than held in memory without end.
const maxLineChars = 1024 * 1024;

type StreamName = 'stdout' | 'stderr';

/**
 * Everything one instance writes, whatever runner started it: lines go to the live task log, stdout is
 * scanned for events (the terminal one decides the outcome), stderr is kept as `run.err`, and stdout
 * becomes `run.out` unless the instance wrote `run.out` itself (both SDKs do), so that each event is
 * there exactly once.
 */
export class InstanceOutput {
  private readonly group: string;
  private readonly index: number;
  private readonly log: TaskLog;
  private readonly dir: string;
  private readonly captureFile: string;
  private readonly stdoutCapture: WriteStream;
  private readonly stderrFile: WriteStream;
  private readonly decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
  private readonly partial = { stdout: '', stderr: '' };
  private terminalEvent: InstanceEvent | undefined;

  /** `dir` is the instance's outputs directory; `scratchDir` must exist and be the instance's own. */
  constructor(options: { group: string; index: number; log: TaskLog; dir: string; scratchDir: string }) {
    this.group = options.group;
    this.index = options.index;
    this.log = options.log;
    this.dir = options.dir;
    this.captureFile = path.join(options.scratchDir, 'stdout.capture');
    this.stdoutCapture = createWriteStream(this.captureFile);
    this.stderrFile = createWriteStream(path.join(options.dir, 'run.err'));
  }

  get terminal(): InstanceEvent | undefined {
    return this.terminalEvent;
  }

  write(stream: StreamName, chunk: Buffer): void {
    (stream === 'stdout' ? this.stdoutCapture : this.stderrFile).write(chunk);
    let text = this.partial[stream] + this.decoders[stream].write(chunk);
    let newline = text.indexOf('\n');
    while (newline !== -1) {
      this.line(stream, text.slice(0, newline));
      text = text.slice(newline + 1);
      newline = text.indexOf('\n');
    }
    if (text.length > maxLineChars) {
      this.line(stream, text);
      text = '';
    }
    this.partial[stream] = text;
  }

  /** Call once the process (or container) has exited and its streams are drained. */
  async finish(): Promise<void> {
    for (const stream of ['stdout', 'stderr'] as const) {
      const rest = this.partial[stream] + this.decoders[stream].end();
      if (rest) this.line(stream, rest);
      this.partial[stream] = '';
    }
    await Promise.all([closeStream(this.stdoutCapture), closeStream(this.stderrFile)]);
    const runOut = path.join(this.dir, 'run.out');
    // lstat, and a fresh file: the instance may run as another user and leave a link here, which the
    // daemon must never write (or read) through.
    const written = await lstat(runOut).catch(() => undefined);
    if (!written || !written.isFile() || written.size === 0) {
      await rm(runOut, { force: true });
      await copyFile(this.captureFile, runOut, constants.COPYFILE_EXCL);
    } else if (!this.terminalEvent) {
      // Node drops stdout still queued for a pipe when a process calls process.exit(), so the last events
      // may never reach us; the SDKs also write run.out, synchronously, and that file has them.
      for (const line of (await readFile(runOut, 'utf8')).split('\n')) {
        const event = parseEventLine(line);
        if (event) this.terminalEvent = pickTerminalEvent(this.terminalEvent, event);
      }
    }
    await rm(this.captureFile, { force: true });
  }

  private line(stream: StreamName, raw: string): void {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    this.log.output(this.group, this.index, stream, line);
    if (stream !== 'stdout') return;
    const event = parseEventLine(line);
    if (event) this.terminalEvent = pickTerminalEvent(this.terminalEvent, event);
  }
}

function closeStream(stream: WriteStream): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.once('error', reject);
    stream.end(() => resolve());
  });
}

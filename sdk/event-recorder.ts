/**
 * Writes an instance's events (CONTRACT §4, seed format) to stdout and to `$TEST_OUTPUTS_PATH/run.out`.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { encodeEventLine, type FinishOutcome, type SdkEvent } from '../core/contract/events.ts';
import { mapStackToSources } from './stack-source-map.ts';

/** Options of {@link EventRecorder}. */
export interface EventRecorderOptions {
  runId: string;
  groupId: string;
  /** Directory that receives `run.out`; created when missing. */
  outputsPath: string;
  /** Receives each line (with its `\n`) for stdout; default `process.stdout.write`. */
  writeStdout?: (line: string) => void;
  /** Unix time in nanoseconds; default the wall clock at microsecond precision. */
  clock?: () => bigint;
}

/**
 * Records events one JSON line each. Only the first `finish` event is written: whatever ends an instance
 * first (the test case's own verdict, or the crash that interrupted it) is its outcome.
 */
export class EventRecorder {
  private readonly runId: string;
  private readonly groupId: string;
  private readonly outputsPath: string;
  private readonly runOutFile: string;
  private readonly writeStdout: (line: string) => void;
  private readonly clock: () => bigint;
  private outputsDirReady = false;
  private finished: FinishOutcome | undefined;

  constructor(options: EventRecorderOptions) {
    this.runId = options.runId;
    this.groupId = options.groupId;
    this.outputsPath = options.outputsPath;
    this.runOutFile = path.join(options.outputsPath, 'run.out');
    this.writeStdout = options.writeStdout ?? ((line) => void process.stdout.write(line));
    this.clock = options.clock ?? wallClockNs;
  }

  /** The outcome of the `finish` event written so far, if any. */
  get outcome(): FinishOutcome | undefined {
    return this.finished;
  }

  /** Writes one event; returns false (and writes nothing) for a `finish` after the first one. */
  record(event: SdkEvent): boolean {
    if (event.type === 'finish') {
      if (this.finished !== undefined) return false;
      this.finished = event.outcome;
    }
    const source = { runId: this.runId, groupId: this.groupId, ts: this.clock() };
    const line = `${encodeEventLine(source, event)}\n`;
    // Synchronous, so that the line is on disk even when the process exits right after.
    this.appendRunOut(line);
    this.writeStdout(line);
    return true;
  }

  private appendRunOut(line: string): void {
    try {
      if (!this.outputsDirReady) {
        mkdirSync(this.outputsPath, { recursive: true });
        this.outputsDirReady = true;
      }
      appendFileSync(this.runOutFile, line);
    } catch (error) {
      throw new Error(
        `cannot write event to ${this.runOutFile}: ${(error as Error).message}; TEST_OUTPUTS_PATH must be a writable directory`,
        { cause: error },
      );
    }
  }
}

function wallClockNs(): bigint {
  // timeOrigin + now() is the wall clock with sub-millisecond precision; microseconds survive a double.
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1_000)) * 1_000n;
}

/** An error's message and stack, whatever was thrown. */
export function describeThrown(thrown: unknown): { message: string; stack: string } {
  if (thrown instanceof Error) {
    return {
      message: thrown.message || thrown.name,
      // In a bundle, this module's URL is the bundle's: its frames are read back in the plan's sources.
      stack: thrown.stack
        ? mapStackToSources(thrown.stack, import.meta.url)
        : `${thrown.name}: ${thrown.message}`,
    };
  }
  let message: string;
  try {
    message = typeof thrown === 'string' ? thrown : (JSON.stringify(thrown) ?? String(thrown));
  } catch {
    message = String(thrown);
  }
  return { message: `non-error value thrown: ${message}`, stack: '' };
}

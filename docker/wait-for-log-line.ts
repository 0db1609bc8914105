/**
 * A wait strategy: a container is ready when it prints a given line. Serves the sync service container
 * ("listening on …"), the runtime image check, and whatever else announces readiness on its output.
 */
import { TestgroundError } from '../core/errors.ts';
import type { AttachedLogs, ContainerClient } from './container-engine.ts';

/** What a line must contain (a string), or match (a RegExp; its `g` and `y` flags do not matter). */
export type LinePattern = string | RegExp;

/** The container's output ended, or the time ran out, before the line came. */
export class LogLineError extends TestgroundError {
  readonly code = 'docker_failed';
  readonly reason: 'exited' | 'timeout';
  /** The tail of what the container wrote, stdout and stderr in arrival order. */
  readonly output: string;

  constructor(reason: 'exited' | 'timeout', message: string, output: string) {
    super(message);
    this.reason = reason;
    this.output = output;
  }
}

export interface LogLineWait {
  /**
   * The first line (without its newline) that matches. Rejects with a {@link LogLineError} when the
   * output ends first ("exited before …") or the timeout passes ("did not … within N ms"), each with the
   * container's output; with an AbortError when the signal fires or {@link close} is called.
   */
  readonly line: Promise<string>;
  /** Stops watching (needed when the container is then never started: its attachment would stay open). */
  close(): void;
}

// What a message quotes of the output, and what is kept for it: enough for a stack trace, bounded.
const keptOutputChars = 16_384;
const quotedOutputChars = 4_000;

/**
 * Attaches to the output of a created container and watches it for a line matching `pattern`; the time
 * starts now. Start the container once this has resolved: the attachment is then in place, so no line is
 * missed, the last one included even when it has no newline. (It also works on a started container,
 * reading its log from the first byte.)
 *
 * It resolves after the attach rather than on the line because the caller must start the container in
 * between, and a single promise could not tell it when.
 *
 * @example
 * const listening = await waitForLogLine(engine, id, 'listening on', 30_000, signal);
 * await engine.startContainer(id);
 * const line = await listening.line;
 */
export async function waitForLogLine(
  engine: Pick<ContainerClient, 'attachLogs'>,
  containerId: string,
  pattern: LinePattern,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<LogLineWait> {
  signal?.throwIfAborted();
  const shortId = containerId.slice(0, 12);
  const described = typeof pattern === 'string' ? JSON.stringify(pattern) : String(pattern);
  const matches = (line: string): boolean =>
    typeof pattern === 'string' ? line.includes(pattern) : line.search(pattern) !== -1;

  let output = '';
  const partial = { stdout: '', stderr: '' };
  let settle: { resolve: (line: string) => void; reject: (error: Error) => void } | undefined;
  const line = new Promise<string>((resolve, reject) => (settle = { resolve, reject }));
  // The caller awaits `line` only after starting the container; a failure before that is not unhandled.
  line.catch(() => undefined);

  const quoted = (): string => output.trim().slice(-quotedOutputChars) || '(none)';
  let done = false;
  let logs: AttachedLogs | undefined;
  const finish = (result: { line: string } | { error: Error }): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    logs?.close();
    if ('line' in result) settle?.resolve(result.line);
    else settle?.reject(result.error);
  };
  const onAbort = (): void => finish({ error: abortError(signal?.reason) });
  const timer = setTimeout(
    () =>
      finish({
        error: new LogLineError(
          'timeout',
          `container ${shortId} did not print a line matching ${described} within ${timeoutMs} ms; its output: ${quoted()}`,
          output,
        ),
      }),
    timeoutMs,
  );
  signal?.addEventListener('abort', onAbort, { once: true });

  const receive = (stream: 'stdout' | 'stderr', chunk: Buffer): void => {
    const text = chunk.toString();
    output = (output + text).slice(-keptOutputChars);
    const lines = (partial[stream] + text).split('\n');
    partial[stream] = lines.pop() ?? '';
    const found = lines.find(matches);
    if (found !== undefined) finish({ line: found.replace(/\r$/, '') });
  };
  try {
    logs = await engine.attachLogs(containerId, {
      onStdout: (chunk) => receive('stdout', chunk),
      onStderr: (chunk) => receive('stderr', chunk),
    });
  } catch (error) {
    finish({ error: error as Error });
    throw error;
  }
  // Aborted (or timed out) while attaching: `line` has settled, and the attachment must not stay open.
  if (done) logs.close();
  logs.ended.then(
    () => {
      // A last line without a newline arrives only with the end of the output.
      const last = [partial.stdout, partial.stderr].find((rest) => rest !== '' && matches(rest));
      if (last !== undefined) return finish({ line: last.replace(/\r$/, '') });
      finish({
        error: new LogLineError(
          'exited',
          `container ${shortId} exited before printing a line matching ${described}; its output: ${quoted()}`,
          output,
        ),
      });
    },
    (error: Error) => finish({ error }),
  );
  return {
    line,
    close: () => finish({ error: abortError(new Error(`stopped waiting for ${described}`)) }),
  };
}

function abortError(reason: unknown): Error {
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  const message = reason instanceof Error ? reason.message : 'the wait was aborted';
  return Object.assign(new Error(message, { cause: reason }), { name: 'AbortError' });
}

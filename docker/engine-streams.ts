/**
 * The shapes of the engine's streamed answers, read once: progress streams (build, pull: one JSON message
 * per line), text split into lines, and the write-only sinks dockerode demultiplexes output into.
 */

/** One message of a build, pull or push progress stream. */
export interface EngineMessage {
  stream?: string;
  status?: string;
  id?: string;
  progress?: string;
  error?: string;
  errorDetail?: { message?: string };
  /** A build's image id (`ID`); a push's manifest digest (`Digest`), with its tag and size. */
  aux?: { ID?: string; Digest?: string; Tag?: string; Size?: number };
}

/** Reads a progress stream: one JSON object per line (build, pull and push answer this way). */
export function readMessages(
  stream: NodeJS.ReadableStream,
  onMessage: (message: EngineMessage) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const handle = (line: string): void => {
      const text = line.trim();
      if (!text) return;
      try {
        onMessage(JSON.parse(text) as EngineMessage);
      } catch {
        // Not JSON: an engine or proxy wrote plain text; it still belongs in the output.
        onMessage({ stream: `${text}\n` });
      }
    };
    stream.on('data', (chunk: Buffer | string) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) handle(line);
    });
    stream.once('end', () => {
      handle(buffered);
      resolve();
    });
    stream.once('error', reject);
  });
}

/**
 * Turns text arriving in pieces into non-blank lines, right-trimmed. `flush` hands over the last line
 * when the text did not end with a newline.
 */
export function lineSplitter(onLine: (line: string) => void): {
  push: (text: string) => void;
  flush: () => void;
} {
  let partial = '';
  return {
    push: (text) => {
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line.trim()) onLine(line.trimEnd());
    },
    flush: () => {
      if (partial.trim()) onLine(partial.trimEnd());
      partial = '';
    },
  };
}

/** A write-only stand-in for a Writable: dockerode's demuxStream only ever calls `write`. */
export function chunkSink(onChunk: (chunk: Buffer) => void): { write: (chunk: Buffer) => boolean } {
  return {
    write: (chunk) => {
      onChunk(chunk);
      return true;
    },
  };
}

/** Resolves when `stream` ends or closes (an attach stream may close without 'end' when its connection drops). */
export function streamFinished(stream: NodeJS.ReadableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.once('end', () => resolve());
    stream.once('close', () => resolve());
    stream.once('error', reject);
  });
}

import { createWriteStream, type WriteStream } from 'node:fs';
import { formatBytes } from './local-docker/host-resource-clamp.ts';

/** The bytes an instance's captured output may take on disk, shared by its files. */
export class OutputQuota {
  readonly bytes: number;
  private used = 0;

  constructor(bytes: number) {
    this.bytes = bytes;
  }

  /** How many of `wanted` bytes still fit; takes them. */
  take(wanted: number): number {
    const granted = Math.max(0, Math.min(wanted, this.bytes - this.used));
    this.used += granted;
    return granted;
  }
}

/** An I/O failure of a file, told as `EPERM on /path (EPERM: operation not permitted, write)`. */
export class FileWriteError extends Error {
  readonly code: string;
  readonly file: string;

  constructor(file: string, cause: NodeJS.ErrnoException) {
    const code = cause.code ?? 'EIO';
    super(`${code} on ${file} (${cause.message})`, { cause });
    this.name = 'FileWriteError';
    this.code = code;
    this.file = file;
  }
}

/**
 * A file written from a stream of chunks up to a quota: past it, bytes are counted and not kept, and the
 * file ends with a line saying how many. A write or open failure is caught and kept (`error`), never
 * thrown or emitted: the file stops taking bytes and its owner decides what the failure means.
 */
export class CappedFile {
  readonly path: string;
  private readonly quota: OutputQuota;
  private readonly stream: WriteStream;
  private failure: FileWriteError | undefined;
  private droppedBytes = 0;
  private drainWaiters: (() => void)[] = [];
  private readonly onError: (error: FileWriteError) => void;

  constructor(file: string, quota: OutputQuota, onError: (error: FileWriteError) => void) {
    this.path = file;
    this.quota = quota;
    this.onError = onError;
    this.stream = createWriteStream(file);
    this.stream.on('error', (error: NodeJS.ErrnoException) => this.fail(error));
    this.stream.on('drain', () => this.releaseWaiters());
  }

  get error(): FileWriteError | undefined {
    return this.failure;
  }

  /** Bytes that did not fit in the quota. */
  get dropped(): number {
    return this.droppedBytes;
  }

  /** Takes what fits of `chunk`; returns a promise when the caller should wait before the next write. */
  write(chunk: Buffer): Promise<void> | undefined {
    if (this.failure) return undefined;
    const granted = this.quota.take(chunk.length);
    this.droppedBytes += chunk.length - granted;
    if (granted === 0) return undefined;
    const ready = this.stream.write(granted === chunk.length ? chunk : chunk.subarray(0, granted));
    if (ready) return undefined;
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Ends the file (with the truncation note when bytes were dropped); resolves even when it failed. */
  close(what: string): Promise<void> {
    if (this.droppedBytes > 0 && !this.failure) {
      this.stream.write(
        `\n[testground: ${what} truncated at the output quota of ${formatBytes(this.quota.bytes)} per instance; ` +
          `${formatBytes(this.droppedBytes)} more were not kept]\n`,
      );
    }
    return new Promise((resolve) => {
      if (this.stream.closed) return resolve();
      this.stream.once('close', () => resolve());
      this.stream.end();
    });
  }

  private fail(error: NodeJS.ErrnoException): void {
    if (this.failure) return;
    this.failure = new FileWriteError(this.path, error);
    this.releaseWaiters();
    this.onError(this.failure);
  }

  private releaseWaiters(): void {
    for (const resolve of this.drainWaiters.splice(0)) resolve();
  }
}

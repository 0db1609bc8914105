/**
 * An instance's output as the swarm gathers it: followed live from the service's creation (the task
 * log shows it as it comes), then, once the task ended, read again in full and delivered past what the
 * live stream already gave. The swarm keeps a followed stream open after its task ended and may not have
 * passed on the last lines when the task's end is seen; the full read is what makes the last line (the
 * instance's terminal event) certain.
 */
import type { AttachedLogs } from '../../docker/container-engine.ts';
import type { SwarmClient } from '../../docker/swarm-client.ts';

type StreamName = 'stdout' | 'stderr';

export interface ServiceOutputCaptureOptions {
  swarm: Pick<SwarmClient, 'serviceLogs'>;
  serviceId: string;
  /** Receives each chunk once, in order; a promise pauses the stream until it settles. */
  write: (stream: StreamName, chunk: Buffer) => void | Promise<void>;
  /** How long the full read after the end may take (the node may be gone); default 15 000 ms. */
  finalReadTimeoutMs?: number;
}

export class ServiceOutputCapture {
  private readonly options: ServiceOutputCaptureOptions;
  private readonly delivered = { stdout: 0, stderr: 0 };
  private live: AttachedLogs | undefined;

  private constructor(options: ServiceOutputCaptureOptions) {
    this.options = options;
  }

  /** Starts following the service's output. */
  static async follow(options: ServiceOutputCaptureOptions): Promise<ServiceOutputCapture> {
    const capture = new ServiceOutputCapture(options);
    capture.live = await options.swarm.serviceLogs(options.serviceId, {
      follow: true,
      onStdout: (chunk) => capture.deliver('stdout', chunk, 0),
      onStderr: (chunk) => capture.deliver('stderr', chunk, 0),
    });
    return capture;
  }

  /**
   * Call once the task ended: stops following, reads the whole output again and delivers what the live
   * stream had not. Resolves with `undefined`, or with why the full read failed (what the live stream
   * gave is then all there is).
   */
  async complete(): Promise<string | undefined> {
    this.live?.close();
    await this.live?.ended.catch(() => undefined);
    const seen = { stdout: 0, stderr: 0 };
    try {
      const full = await this.options.swarm.serviceLogs(this.options.serviceId, {
        follow: false,
        onStdout: (chunk) => this.catchUp('stdout', chunk, seen),
        onStderr: (chunk) => this.catchUp('stderr', chunk, seen),
        signal: AbortSignal.timeout(this.options.finalReadTimeoutMs ?? 15_000),
      });
      await full.ended;
      return undefined;
    } catch (error) {
      return (error as Error).message;
    }
  }

  /** Closes the live stream without reading again (the run is being torn down). */
  close(): void {
    this.live?.close();
  }

  private catchUp(stream: StreamName, chunk: Buffer, seen: Record<StreamName, number>): void | Promise<void> {
    const start = seen[stream];
    seen[stream] += chunk.length;
    const skip = this.delivered[stream] - start;
    if (skip >= chunk.length) return;
    return this.deliver(stream, chunk, Math.max(0, skip));
  }

  private deliver(stream: StreamName, chunk: Buffer, from: number): void | Promise<void> {
    const part = from === 0 ? chunk : chunk.subarray(from);
    this.delivered[stream] += part.length;
    return this.options.write(stream, part);
  }
}

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, constants, mkdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { SingleFlight } from '../../core/single-flight.ts';

/** The packet delayer could not be built; latency and jitter without netem are refused with this reason. */
export class PacketDelayerBuildError extends Error {
  readonly code: string = 'packet_delayer_build_failed';
}

export const packetDelayerSource = path.resolve(import.meta.dirname, '../../native/packet-delayer.c');

// libnetfilter_queue linked in statically where Debian ships its archive, so the binary needs only
// libmnl at run time, which iproute2 itself depends on (any host that has `ip` has it).
const linkings = [
  ['-Wl,-Bstatic', '-lnetfilter_queue', '-Wl,-Bdynamic', '-lmnl'],
  ['-lnetfilter_queue', '-lmnl'],
];
const compileFlags = ['-O2', '-Wall', '-Wextra', '-std=gnu11'];
const buildTimeoutMs = 60_000;

/**
 * Where the packet delayer's binary comes from: a prebuilt one when given (a deployment that ships it),
 * else `native/packet-delayer.c` compiled with gcc on first use into `<buildDir>/packet-delayer-<hash>`,
 * named by the hash of the source and the flags, so a changed source is rebuilt and an unchanged one never.
 * Concurrent callers share one build; a failed build is retried by the next caller.
 */
export class PacketDelayerBinary {
  private readonly builds = new SingleFlight<string>({ retainSuccess: true });
  private readonly buildDir: string;
  private readonly prebuilt: string | undefined;
  private readonly source: string;

  constructor(options: { buildDir: string; prebuilt?: string; source?: string }) {
    this.buildDir = options.buildDir;
    this.prebuilt = options.prebuilt;
    this.source = options.source ?? packetDelayerSource;
  }

  /** @throws PacketDelayerBuildError saying what is missing. */
  path(): Promise<string> {
    return this.builds.run('binary', () =>
      this.prebuilt ? this.checkPrebuilt(this.prebuilt) : this.build(),
    );
  }

  private async checkPrebuilt(binary: string): Promise<string> {
    try {
      await access(binary, constants.X_OK);
      return binary;
    } catch (error) {
      throw new PacketDelayerBuildError(
        `the packet delayer ${binary} is not an executable file (${(error as Error).message})`,
      );
    }
  }

  private async build(): Promise<string> {
    let source: Buffer;
    try {
      source = await readFile(this.source);
    } catch (error) {
      throw new PacketDelayerBuildError(
        `the packet delayer's source ${this.source} cannot be read (${(error as Error).message})`,
      );
    }
    const hash = createHash('sha256')
      .update(source)
      .update(JSON.stringify([compileFlags, linkings]))
      .digest('hex')
      .slice(0, 16);
    const binary = path.join(this.buildDir, `packet-delayer-${hash}`);
    try {
      await access(binary, constants.X_OK);
      return binary;
    } catch {
      // not built yet
    }
    await mkdir(this.buildDir, { recursive: true });
    const partial = `${binary}.${process.pid}.partial`;
    let lastError = '';
    for (const linking of linkings) {
      try {
        await run('gcc', [...compileFlags, '-o', partial, this.source, ...linking]);
        await rename(partial, binary);
        return binary;
      } catch (error) {
        lastError = (error as Error).message;
      }
    }
    await rm(partial, { force: true });
    throw new PacketDelayerBuildError(
      `cannot build the packet delayer (${this.source}) with gcc: ${lastError}; ` +
        'install gcc, libnetfilter-queue-dev and libmnl-dev (scripts/ensure-deps.sh does)',
    );
  }
}

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: buildTimeoutMs }, (error, _stdout, stderr) => {
      if (!error) return resolve();
      const detail = stderr.trim().split('\n').slice(0, 3).join('; ');
      reject(new Error(detail || error.message));
    });
  });
}

/**
 * The Node runtime image plan images are built on. A configured base image (default
 * `node:20-bookworm-slim`) when the engine has it, or can pull it and the daemon's pull policy allows it;
 * otherwise — air-gapped hosts, and build machines without any registry — an image made `FROM scratch` out
 * of the host's own `node` binary and the shared libraries it links, built once and kept as a cache.
 *
 * The pull policy (`TESTGROUND_PULL`) is the daemon's, not a build's: `never` (the default: a daemon never
 * reaches for a registry on its own, which an air-gapped host would answer only after DNS timeouts),
 * `missing` (pull a base the engine lacks, once per daemon process) or `always` (pull each base once per
 * daemon process, even when the engine has it, to pick up a moved tag).
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { BuildError, DependencyError } from '../core/errors.ts';
import { SingleFlight } from '../core/single-flight.ts';
import { packContext, type ContextEntry } from '../docker/build-context.ts';
import type { ContainerClient, ImageClient } from '../docker/container-engine.ts';
import { DockerEngineError } from '../docker/engine-errors.ts';
import { createLabels, nodeVersionLabel } from '../docker/labels.ts';
import { LogLineError, waitForLogLine } from '../docker/wait-for-log-line.ts';

const execFileAsync = promisify(execFile);

export const defaultBaseImage = 'node:20-bookworm-slim';
const hostRuntimeRepository = 'testground-runtime/node';
/** How long the check of a freshly built image may take; its container never lives much longer. */
export const runtimeCheckTimeoutMs = 30_000;

/** When the daemon may pull a base image from a registry; see the module comment. */
export const pullPolicies = ['never', 'missing', 'always'] as const;
export type PullPolicy = (typeof pullPolicies)[number];
export const defaultPullPolicy: PullPolicy = 'never';

/** How the runtime image was obtained by one call. */
export type RuntimeImageOrigin = 'base' | 'pulled' | 'host-built' | 'host-reused';

export interface RuntimeImage {
  /** What to write after `FROM`. */
  ref: string;
  imageId: string;
  origin: RuntimeImageOrigin;
  /** Which image this is and why, in one line (`using … (present locally)`), for a build's log. */
  summary: string;
}

export interface EnsureRuntimeImageOptions {
  /** Default `node:20-bookworm-slim`. */
  baseImage?: string;
  /**
   * Progress of the work this call does (a pull, a build of the host's image) and that it waits for another
   * call's. Which image was chosen and why is not logged here: it is the returned `summary`, which the
   * caller logs where it belongs (once per build), and the daemon's log has it once (`onDecision`).
   */
  log: (line: string) => void;
  signal?: AbortSignal;
}

export interface RuntimeImageProviderOptions {
  /** Labels the images and check containers it creates, so that leftovers of this daemon are found. */
  daemonId: string;
  /** The node binary to package when the base image is unavailable; default the running node. */
  nodePath?: string;
  /** Repository of the image built from the host's node; default `testground-runtime/node`. */
  repository?: string;
  /** When a base image may be pulled; default `never`. */
  pull?: PullPolicy;
  /**
   * Told which image a base resolves to and why, the first time and whenever that changes (a base pulled
   * or removed since): the daemon's log, so the choice is said once per daemon and not in every task.
   */
  onDecision?: (summary: string) => void;
}

/** The host's node and what it links, as a build context, tagged by a digest of that context. */
interface HostRuntime {
  nodePath: string;
  nodeVersion: string;
  libraryCount: number;
  context: ContextEntry[];
  tag: string;
}

/**
 * Hands out runtime images. Keep one per daemon: concurrent callers asking for the same base share one
 * pull or build, the host's node is examined once, and a base that failed to pull is not tried again.
 */
export class RuntimeImageProvider {
  private readonly engine: ImageClient & ContainerClient;
  private readonly daemonId: string;
  private readonly nodePath: string;
  private readonly repository: string;
  private readonly pull: PullPolicy;
  private readonly onDecision: (summary: string) => void;
  private readonly resolutions = new SingleFlight<RuntimeImage>();
  // Each base is pulled at most once per daemon process, whatever came of it: a registry out of reach is
  // not asked again for every build.
  private readonly pullFailures = new Map<string, string>();
  private readonly pulled = new Set<string>();
  private readonly decisions = new Map<string, string>();
  // A failure here (no ldd, say) may be fixed without restarting the daemon: only a success is kept.
  private readonly hostRuntime = new SingleFlight<HostRuntime>({ retainSuccess: true });

  constructor(engine: ImageClient & ContainerClient, options: RuntimeImageProviderOptions) {
    this.engine = engine;
    this.daemonId = options.daemonId;
    this.nodePath = options.nodePath ?? process.execPath;
    this.repository = options.repository ?? hostRuntimeRepository;
    this.pull = options.pull ?? defaultPullPolicy;
    this.onDecision = options.onDecision ?? (() => undefined);
  }

  /** The pull policy this provider follows. */
  get pullPolicy(): PullPolicy {
    return this.pull;
  }

  /** A runtime image with `node` on its PATH, obtained as the module comment describes. */
  async ensure(options: EnsureRuntimeImageOptions): Promise<RuntimeImage> {
    const baseImage = options.baseImage ?? defaultBaseImage;
    if (this.resolutions.has(baseImage)) {
      options.log(`runtime image: waiting for the resolution of ${baseImage} another build started`);
    }
    // Progress goes to the caller that started the work; what came of it is the image's summary.
    const image = await this.resolutions.run(baseImage, () => this.resolve(baseImage, options));
    if (this.decisions.get(baseImage) !== image.imageId + image.summary) {
      this.decisions.set(baseImage, image.imageId + image.summary);
      this.onDecision(`runtime image: ${image.summary}`);
    }
    return image;
  }

  /** The tag the image built from the host's node has (or will have). */
  async hostRuntimeTag(): Promise<string> {
    return (await this.inspectHost()).tag;
  }

  private async resolve(baseImage: string, options: EnsureRuntimeImageOptions): Promise<RuntimeImage> {
    const policy = `pull policy "${this.pull}" (TESTGROUND_PULL)`;
    const present = await this.engine.inspectImage(baseImage);
    const wantsPull =
      !this.pulled.has(baseImage) &&
      !this.pullFailures.has(baseImage) &&
      (this.pull === 'always' || (this.pull === 'missing' && !present));
    if (present && !wantsPull) {
      const how = this.pulled.has(baseImage)
        ? `pulled by this daemon under the ${policy}`
        : 'present locally';
      return { ref: baseImage, imageId: present.id, origin: 'base', summary: `using ${baseImage} (${how})` };
    }
    let reason: string;
    if (wantsPull) {
      try {
        options.log(`runtime image: pulling ${baseImage} (${policy})`);
        await this.engine.pullImage(baseImage, { onLine: options.log, ...signalOption(options.signal) });
        const pulled = await this.engine.inspectImage(baseImage);
        if (pulled) {
          this.pulled.add(baseImage);
          return {
            ref: baseImage,
            imageId: pulled.id,
            origin: 'pulled',
            summary: `using ${baseImage}, pulled under the ${policy}`,
          };
        }
        reason = 'the engine reported the pull done but has no such image';
      } catch (error) {
        // An engine that is down or a cancel is not "the registry is out of reach": let them through.
        if (error instanceof DependencyError || (error as Error).name === 'AbortError') throw error;
        reason = (error as Error).message;
      }
      this.pullFailures.set(baseImage, reason);
    } else {
      reason =
        this.pullFailures.get(baseImage) ??
        `not pulled under the ${policy}; set TESTGROUND_PULL=missing to let the daemon pull it`;
    }
    if (present) {
      return {
        ref: baseImage,
        imageId: present.id,
        origin: 'base',
        summary: `using ${baseImage} as present locally; the pull failed (${reason})`,
      };
    }
    const host = await this.inspectHost();
    const because = this.pullFailures.has(baseImage)
      ? `base image ${baseImage} is not available and cannot be pulled (${reason})`
      : `base image ${baseImage} is not present locally (${reason})`;
    const existing = await this.engine.inspectImage(host.tag);
    if (existing) {
      return {
        ref: host.tag,
        imageId: existing.id,
        origin: 'host-reused',
        summary: `${because}; using ${host.tag}, built earlier from the host's node`,
      };
    }
    const started = performance.now();
    const imageId = await this.buildHostRuntime(host, options);
    const seconds = ((performance.now() - started) / 1_000).toFixed(1);
    return {
      ref: host.tag,
      imageId,
      origin: 'host-built',
      summary: `${because}; built ${host.tag} from the host's node (${host.nodePath} v${host.nodeVersion}, ${host.libraryCount} shared libraries) in ${seconds} s`,
    };
  }

  private inspectHost(): Promise<HostRuntime> {
    return this.hostRuntime.run('host', () => collectHostRuntime(this.nodePath, this.repository));
  }

  private async buildHostRuntime(host: HostRuntime, options: EnsureRuntimeImageOptions): Promise<string> {
    const imageId = await this.engine.buildImage(
      {
        context: { tar: packContext(host.context) },
        tags: [host.tag],
        labels: {
          ...createLabels({ daemonId: this.daemonId, role: 'runtime' }),
          [nodeVersionLabel]: host.nodeVersion,
        },
        ...signalOption(options.signal),
      },
      (line) => options.log(`runtime image: ${line}`),
    );
    try {
      await this.verify(host, options.signal);
    } catch (error) {
      // A broken image under this tag would be reused forever; better to try again next time.
      await this.engine.removeImage(host.tag, { force: true });
      throw error;
    }
    return imageId;
  }

  /** Runs `node` in the fresh image once, so that a missing library shows up here and not in every run. */
  private async verify(host: HostRuntime, signal: AbortSignal | undefined): Promise<void> {
    const id = await this.engine.createContainer({
      name: `testground-runtime-check-${randomBytes(4).toString('hex')}`,
      image: host.tag,
      cmd: ['node', '-e', 'console.log(process.version)'],
      env: {},
      // Removed below; the labels let the leftovers sweep find it when this process dies first.
      labels: createLabels({ daemonId: this.daemonId, role: 'runtime-check' }),
    });
    const broken = (what: string): BuildError =>
      new BuildError(
        `runtime image ${host.tag} built from ${host.nodePath} does not run node: ${what}; the binary may load files ldd does not list`,
      );
    try {
      const expected = `v${host.nodeVersion}`;
      const version = await waitForLogLine(this.engine, id, expected, runtimeCheckTimeoutMs, signal);
      try {
        await this.engine.startContainer(id);
      } catch (error) {
        version.close();
        if (error instanceof DockerEngineError) throw broken(error.message);
        throw error;
      }
      try {
        await version.line;
      } catch (error) {
        if (error instanceof LogLineError) throw broken(error.message);
        throw error;
      }
      const exitTimeout = AbortSignal.timeout(runtimeCheckTimeoutMs);
      const exit = await this.engine.waitContainer(
        id,
        signal ? AbortSignal.any([signal, exitTimeout]) : exitTimeout,
      );
      if (exit.exitCode !== 0) throw broken(`it printed ${expected}, then exited with code ${exit.exitCode}`);
    } finally {
      await this.engine.removeContainer(id, { force: true });
    }
  }
}

function signalOption(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal ? { signal } : {};
}

async function collectHostRuntime(nodePathOption: string, repository: string): Promise<HostRuntime> {
  const nodePath = await realpath(nodePathOption);
  const { stdout: versionOut } = await execFileAsync(nodePath, ['--version']);
  const nodeVersion = versionOut.trim().replace(/^v/, '');
  const files = new Map<string, string>([['/usr/bin/node', nodePath]]);
  const libraries = await sharedLibraries(nodePath);
  for (const library of libraries) {
    // Kept at the path the loader found it under (its search path), with the bytes of the real file.
    files.set(library, await realpath(library));
  }
  const context = hostRuntimeContext(files);
  const tag = `${repository}:${nodeVersion}-${(await digestContext(context)).slice(0, 12)}`;
  return { nodePath, nodeVersion, libraryCount: libraries.length, context, tag };
}

/** Everything that goes into the image, so that any change to it (a new libc, a new layout) gets a new tag. */
async function digestContext(context: readonly ContextEntry[]): Promise<string> {
  const hash = createHash('sha256');
  for (const entry of context) {
    hash.update(`${entry.type}\0${entry.name}\0`);
    if (entry.type === 'symlink') hash.update(`${entry.target}\0`);
    else hash.update(`${entry.mode ?? ''}\0`);
    if (entry.type === 'content') hash.update(entry.content);
    if (entry.type === 'file')
      for await (const chunk of createReadStream(entry.source)) hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

/** The absolute paths of the shared libraries `ldd` says `binary` loads, the dynamic loader included. */
async function sharedLibraries(binary: string): Promise<string[]> {
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync('ldd', [binary]));
  } catch (error) {
    const failure = error as Error & { code?: string | number; stdout?: string; stderr?: string };
    const said = `${failure.stdout ?? ''}${failure.stderr ?? ''}`;
    // A static binary needs no libraries; ldd says so and exits 1.
    if (/not a dynamic executable|statically linked/.test(said)) return [];
    if (failure.code === 'ENOENT') {
      throw new DependencyError(
        `cannot list the shared libraries of ${binary}: ldd is not installed (Debian: apt-get install -y libc-bin)`,
      );
    }
    throw new DependencyError(`ldd ${binary} failed: ${said.trim() || failure.message}`);
  }
  const libraries: string[] = [];
  for (const line of stdout.split('\n')) {
    const text = line.trim();
    if (!text) continue;
    if (/=>\s*not found/.test(text)) {
      throw new DependencyError(`${binary} needs a library the host lacks: ${text}`);
    }
    // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)` or `/lib64/ld-linux-x86-64.so.2 (0x…)`;
    // the vDSO (`linux-vdso.so.1 (0x…)`) is the kernel's and has no file.
    const match = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)$/.exec(text);
    if (match?.[1]) libraries.push(match[1]);
  }
  return libraries;
}

/** The build context: a Dockerfile plus `rootfs/`, copied onto an empty image. */
function hostRuntimeContext(files: ReadonlyMap<string, string>): ContextEntry[] {
  const rootfs: ContextEntry[] = [
    { type: 'content', name: 'rootfs/etc/passwd', content: passwd },
    { type: 'content', name: 'rootfs/etc/group', content: group },
    // Without it glibc asks DNS before /etc/hosts; files first answers localhost and the container's own
    // name locally, and network aliases still come from the engine's DNS server.
    { type: 'content', name: 'rootfs/etc/nsswitch.conf', content: nsswitch },
    { type: 'directory', name: 'rootfs/tmp', mode: 0o1777 },
    { type: 'directory', name: 'rootfs/root', mode: 0o700 },
  ];
  for (const [inImage, source] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) {
    rootfs.push({ type: 'file', name: `rootfs${inImage}`, source, mode: 0o755 });
  }
  // Explicit parent directories, so their modes do not depend on how the engine fills them in.
  const directories = new Set<string>();
  for (const entry of rootfs) {
    for (
      let dir = path.posix.dirname(entry.name);
      dir !== '.' && dir !== 'rootfs';
      dir = path.posix.dirname(dir)
    ) {
      if (!rootfs.some((other) => other.type === 'directory' && other.name === dir)) directories.add(dir);
    }
  }
  return [
    { type: 'content', name: 'Dockerfile', content: dockerfile },
    ...[...directories].sort().map((name): ContextEntry => ({ type: 'directory', name, mode: 0o755 })),
    ...rootfs,
  ];
}

const dockerfile = `FROM scratch
COPY rootfs/ /
ENV PATH=/usr/bin:/bin
CMD ["node"]
`;
const passwd = `root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
`;
const group = `root:x:0:
nogroup:x:65534:
`;
const nsswitch = `passwd: files
group: files
hosts: files dns
`;

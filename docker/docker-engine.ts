/**
 * The one implementation of the Docker seam (`container-engine.ts`) and, with its swarm extension
 * `docker-swarm.ts`, the only file that imports dockerode. It absorbs the engine's quirks once, so
 * builders and runners never see HTTP status codes, multiplexed log frames or progress streams: 304
 * "already started/stopped" is success, a build, pull or push stream's error lines are a failure,
 * stdout/stderr are demultiplexed, abort signals pass through.
 */
import type { Readable } from 'node:stream';
import Docker from 'dockerode';
import { DependencyError, ValidationError } from '../core/errors.ts';
import { packContext, listContextDirectory } from './build-context.ts';
import type {
  AttachedLogs,
  BuildImageOptions,
  ContainerEngine,
  ContainerExit,
  ContainerSpec,
  ContainerState,
  ContainerSummary,
  EngineInfo,
  ImageInfo,
  LogHandlers,
  NetworkInfo,
  NetworkSpec,
  PortBinding,
  PullImageOptions,
  PushImageOptions,
} from './container-engine.ts';
import { DockerEngineError, isStatus, SubnetInUseError } from './engine-errors.ts';
import { chunkSink, lineSplitter, readMessages, streamFinished } from './engine-streams.ts';
import type { LabelFilter } from './labels.ts';

export interface DockerEngineOptions {
  /**
   * The engine's unix socket. When neither it nor {@link endpoint} is given, `DOCKER_HOST` (with
   * `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH`, as the docker CLI reads them) when set, else `/var/run/docker.sock`.
   */
  socketPath?: string;
  /**
   * The engine as a URL: `unix:///path/to/docker.sock`, or `tcp://host:port` (plain HTTP; the port
   * defaults to 2375 as with the docker CLI). Instead of {@link socketPath}, not with it.
   */
  endpoint?: string;
  /** How long {@link DockerEngine.ping} waits for an answer; default 5000 ms. */
  pingTimeoutMs?: number;
}

const defaultSocketPath = '/var/run/docker.sock';
// The allocator takes milliseconds on an idle manager; a busy one gets ample room.
const swarmAllocationTimeoutMs = 15_000;
const swarmAllocationPollMs = 100;
const defaultSkippedNames = ['node_modules', '.git'];
// Errors of the connection itself (not of an operation): the engine is not there, or we may not talk to it.
const connectionErrorCodes = new Set([
  'ENOENT',
  'ECONNREFUSED',
  'EACCES',
  'EPERM',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** A Docker engine, through its HTTP API. Stateless apart from the connection settings. */
export class DockerEngine implements ContainerEngine {
  readonly endpoint: string;
  protected readonly docker: Docker;
  private readonly pingTimeoutMs: number;

  constructor(options: DockerEngineOptions = {}) {
    this.pingTimeoutMs = options.pingTimeoutMs ?? 5_000;
    const dockerHost = process.env.DOCKER_HOST;
    if (options.endpoint !== undefined) {
      if (options.socketPath !== undefined) {
        const message = `give the Docker engine as socketPath (${options.socketPath}) or as endpoint (${options.endpoint}), not both`;
        throw new ValidationError(message, [{ path: 'endpoint', message }]);
      }
      const connection = parseEndpoint(options.endpoint);
      this.docker = new Docker(connection);
      this.endpoint =
        'socketPath' in connection
          ? `unix://${connection.socketPath}`
          : `tcp://${connection.host}:${connection.port}`;
    } else if (options.socketPath === undefined && dockerHost) {
      // dockerode reads DOCKER_HOST and the TLS variables exactly as the docker CLI does when given nothing.
      this.docker = new Docker();
      this.endpoint = dockerHost;
    } else {
      const socketPath = options.socketPath ?? defaultSocketPath;
      this.docker = new Docker({ socketPath });
      this.endpoint = `unix://${socketPath}`;
    }
  }

  async ping(): Promise<void> {
    const signal = AbortSignal.timeout(this.pingTimeoutMs);
    try {
      // dockerode's types lack ping's options; it does pass `abortSignal` through to the request.
      const pingOptions: object = { abortSignal: signal };
      const ping = this.docker.ping.bind(this.docker) as (options: object) => Promise<unknown>;
      await ping(pingOptions);
    } catch (error) {
      if (signal.aborted) {
        throw new DependencyError(
          `Docker engine at ${this.endpoint} did not answer within ${this.pingTimeoutMs} ms; ${startHint}`,
        );
      }
      throw this.translate('ping', error);
    }
  }

  async info(): Promise<EngineInfo> {
    const info = (await this.call('read engine info', () => this.docker.info())) as Record<string, unknown>;
    return {
      serverVersion: String(info.ServerVersion ?? ''),
      os: String(info.OperatingSystem ?? ''),
      kernelVersion: String(info.KernelVersion ?? ''),
      cgroupVersion: String(info.CgroupVersion ?? ''),
      cgroupDriver: String(info.CgroupDriver ?? ''),
      cpus: Number(info.NCPU ?? 0),
      memoryBytes: Number(info.MemTotal ?? 0),
    };
  }

  // ── images ────────────────────────────────────────────────────────────────────────────────────────

  async imageExists(ref: string): Promise<boolean> {
    return (await this.inspectImage(ref)) !== undefined;
  }

  /** The image, or `undefined` when the engine has none by that reference. */
  async inspectImage(ref: string): Promise<ImageInfo | undefined> {
    try {
      const image = await this.call(`inspect image ${ref}`, () => this.docker.getImage(ref).inspect());
      return { id: image.Id, tags: image.RepoTags ?? [], labels: image.Config?.Labels ?? {} };
    } catch (error) {
      if (isStatus(error, 404)) return undefined;
      throw error;
    }
  }

  /**
   * Pulls `ref` from its registry. Fails with the engine's reason (no registry, unknown image, no access)
   * as soon as the engine gives up; it never retries.
   */
  async pullImage(ref: string, options: PullImageOptions = {}): Promise<void> {
    const operation = `pull image ${ref}`;
    // dockerode types pull's options as `{}`; it does pass `abortSignal` through to the request.
    const pullOptions: object = options.signal ? { abortSignal: options.signal } : {};
    const stream = await this.call(operation, () => this.docker.pull(ref, pullOptions));
    let failure: string | undefined;
    await this.call(operation, () =>
      readMessages(stream, (message) => {
        if (message.error !== undefined) failure ??= message.errorDetail?.message ?? message.error;
        // Per-layer progress ticks would flood the log; the status changes are what a person wants to see.
        else if (message.status && !message.progress) {
          options.onLine?.(message.id ? `${message.id}: ${message.status}` : message.status);
        }
      }),
    );
    if (failure !== undefined) throw new DockerEngineError(operation, failure);
  }

  /** Gives the image `ref` one more name, `repo:tag` (`10.240.77.1:5000/tg/plan:abc`). */
  async tagImage(ref: string, repo: string, tag: string): Promise<void> {
    await this.call(`tag image ${ref} as ${repo}:${tag}`, () => this.docker.getImage(ref).tag({ repo, tag }));
  }

  /**
   * Pushes `ref` (`registry/repo:tag`, one tag) to its registry and returns the manifest digest the
   * registry stored it under, what `repo@digest` pins. Fails with the registry's reason; never retries.
   */
  async pushImage(ref: string, options: PushImageOptions = {}): Promise<{ digest: string }> {
    const operation = `push image ${ref}`;
    // The engine wants credentials in a header even for a registry without any: `{}` says "none".
    const pushOptions = { authconfig: {}, ...(options.signal ? { abortSignal: options.signal } : {}) };
    const stream = (await this.call(operation, () =>
      this.docker.getImage(ref).push(pushOptions),
    )) as NodeJS.ReadableStream;
    let failure: string | undefined;
    let digest: string | undefined;
    await this.call(operation, () =>
      readMessages(stream, (message) => {
        if (message.error !== undefined) failure ??= message.errorDetail?.message ?? message.error;
        else if (message.status && !message.progress) {
          options.onLine?.(message.id ? `${message.id}: ${message.status}` : message.status);
        }
        if (message.aux?.Digest) digest = message.aux.Digest;
      }),
    );
    if (failure !== undefined) throw new DockerEngineError(operation, failure.trim());
    if (!digest) throw new DockerEngineError(operation, 'the engine reported success but gave no digest');
    return { digest };
  }

  /**
   * Builds an image with the classic builder (BuildKit needs a session the engine may not offer) and
   * returns its id. Every line of build output goes to `onLine`; a failed step throws a
   * {@link DockerEngineError} carrying the builder's own message.
   */
  async buildImage(options: BuildImageOptions, onLine: (line: string) => void): Promise<string> {
    const [firstTag] = options.tags;
    const operation = `build image ${firstTag ?? '(untagged)'}`;
    const tar =
      'tar' in options.context
        ? options.context.tar
        : packContext(
            await listContextDirectory(
              options.context.dir,
              new Set(options.context.skip ?? defaultSkippedNames),
            ),
          );
    const stream = await this.call(operation, () =>
      this.docker.buildImage(tar as unknown as NodeJS.ReadableStream, {
        // The engine takes `t` once per tag; dockerode's types only allow one, its query encoder repeats arrays.
        t: [...options.tags] as unknown as string,
        dockerfile: options.dockerfile ?? 'Dockerfile',
        labels: { ...options.labels },
        buildargs: { ...options.buildArgs },
        rm: true,
        forcerm: true,
        version: '1',
        ...(options.signal ? { abortSignal: options.signal } : {}),
      }),
    ).catch((error: unknown) => {
      // The request never took the context: close the files the tar holds open.
      tar.destroy();
      throw error;
    });
    let failure: string | undefined;
    let imageId: string | undefined;
    const lines = lineSplitter(onLine);
    await this.call(operation, () =>
      readMessages(stream, (message) => {
        if (message.stream !== undefined) lines.push(message.stream);
        else if (message.status !== undefined && !message.progress) lines.push(`${message.status}\n`);
        if (message.aux?.ID) imageId = message.aux.ID;
        if (message.error !== undefined) failure ??= message.errorDetail?.message ?? message.error;
      }),
    );
    lines.flush();
    if (failure !== undefined) throw new DockerEngineError(operation, failure.trim());
    if (imageId) return imageId;
    // Engines that do not send the `aux` message still tagged the image: read its id back.
    const built = firstTag ? await this.inspectImage(firstTag) : undefined;
    if (!built) throw new DockerEngineError(operation, 'the engine reported success but named no image');
    return built.id;
  }

  /** Removes the image; an image that is already gone is success. */
  async removeImage(ref: string, options: { force?: boolean } = {}): Promise<void> {
    try {
      await this.call(`remove image ${ref}`, () =>
        this.docker.getImage(ref).remove({ force: options.force }),
      );
    } catch (error) {
      if (!isStatus(error, 404)) throw error;
    }
  }

  async listImages(filter: LabelFilter): Promise<ImageInfo[]> {
    const images = await this.call('list images', () =>
      this.docker.listImages({ filters: { label: [...filter] } }),
    );
    return images.map((image) => ({
      id: image.Id,
      tags: (image.RepoTags ?? []).filter((tag) => tag !== '<none>:<none>'),
      labels: image.Labels ?? {},
      created: new Date(image.Created * 1000).toISOString(),
      size: image.Size,
    }));
  }

  // ── networks ──────────────────────────────────────────────────────────────────────────────────────

  /** Creates the network and returns its id; a {@link SubnetInUseError} when the subnet is taken. */
  async createNetwork(spec: NetworkSpec): Promise<string> {
    const operation = `create network ${spec.name} (${spec.subnet})`;
    let id: string;
    try {
      const network = await this.call(operation, () =>
        this.docker.createNetwork({
          Name: spec.name,
          Driver: spec.driver ?? 'bridge',
          CheckDuplicate: true,
          Internal: spec.internal ?? false,
          Attachable: spec.attachable ?? false,
          Labels: { ...spec.labels },
          IPAM: {
            Driver: 'default',
            Config: [{ Subnet: spec.subnet, ...(spec.gateway ? { Gateway: spec.gateway } : {}) }],
          },
        }),
      );
      id = network.id;
    } catch (error) {
      // The engine says "Pool overlaps with other one on this address space" (403 on 20.10).
      if (error instanceof DockerEngineError && /overlaps/i.test(error.message)) {
        throw new SubnetInUseError(operation, error.message.slice(operation.length + 2), error.statusCode, {
          cause: error,
        });
      }
      throw error;
    }
    if (spec.driver === 'overlay') await this.awaitSwarmAllocation(id, spec.subnet, operation);
    return id;
  }

  /**
   * A swarm manager accepts an overlay network whose subnet overlaps another one (201), and only its
   * allocator, a moment later, fails on it: "Pool overlaps with other one on this address space" goes to
   * the manager's log, and the network stays, without driver or subnet, unusable. Waits for the
   * allocation; refuses the network as a bridge's engine would when an allocated one holds the subnet.
   */
  private async awaitSwarmAllocation(id: string, subnet: string, operation: string): Promise<void> {
    const deadline = Date.now() + swarmAllocationTimeoutMs;
    for (;;) {
      const details = (await this.call(operation, () => this.docker.getNetwork(id).inspect())) as {
        Driver?: string;
      };
      if (details.Driver) return;
      const networks = await this.call(operation, () => this.docker.listNetworks());
      const holders = networks.filter(
        (network) =>
          network.Id !== id &&
          network.Scope === 'swarm' &&
          (network.IPAM?.Config ?? []).some(
            (config) => config.Subnet && subnetsOverlap(config.Subnet, subnet),
          ),
      );
      let failure: DockerEngineError | undefined;
      if (holders.length > 0) {
        const held = holders.map((network) => `${network.Name} (${network.IPAM?.Config?.[0]?.Subnet})`);
        failure = new SubnetInUseError(
          operation,
          `the swarm could not allocate it: Pool overlaps with other one on this address space (${held.join(', ')}); pick another subnet`,
        );
      } else if (Date.now() >= deadline) {
        failure = new DockerEngineError(
          operation,
          `the swarm did not allocate the network within ${swarmAllocationTimeoutMs} ms; see the manager's log`,
        );
      }
      if (failure) {
        await this.removeNetwork(id);
        throw failure;
      }
      await new Promise((resolve) => setTimeout(resolve, swarmAllocationPollMs));
    }
  }

  /** Removes the network; a network that is already gone is success. */
  async removeNetwork(idOrName: string): Promise<void> {
    try {
      await this.call(`remove network ${idOrName}`, () => this.docker.getNetwork(idOrName).remove());
    } catch (error) {
      if (!isStatus(error, 404)) throw error;
    }
  }

  async listNetworks(filter: LabelFilter): Promise<NetworkInfo[]> {
    const networks = await this.call('list networks', () =>
      this.docker.listNetworks({ filters: { label: [...filter] } }),
    );
    return networks.map((network) => ({
      id: network.Id,
      name: network.Name,
      labels: network.Labels ?? {},
      subnets: (network.IPAM?.Config ?? []).flatMap((config) => (config.Subnet ? [config.Subnet] : [])),
    }));
  }

  async connectNetwork(
    network: string,
    containerId: string,
    options: { aliases?: readonly string[] } = {},
  ): Promise<void> {
    await this.call(`connect container ${containerId} to network ${network}`, () =>
      this.docker.getNetwork(network).connect({
        Container: containerId,
        EndpointConfig: { Aliases: [...(options.aliases ?? [])] },
      }),
    );
  }

  async networkEndpoints(idOrName: string): Promise<{ id: string; name: string }[]> {
    try {
      const details = (await this.call(`inspect network ${idOrName}`, () =>
        this.docker.getNetwork(idOrName).inspect(),
      )) as { Containers?: Record<string, { Name?: string }> };
      return Object.entries(details.Containers ?? {}).map(([id, endpoint]) => ({
        id,
        name: endpoint.Name ?? '',
      }));
    } catch (error) {
      if (isStatus(error, 404)) return [];
      throw error;
    }
  }

  async disconnectNetwork(network: string, container: string): Promise<void> {
    try {
      await this.call(`disconnect ${container} from network ${network}`, () =>
        this.docker.getNetwork(network).disconnect({ Container: container, Force: true }),
      );
    } catch (error) {
      if (!isStatus(error, 404)) throw error;
    }
  }

  // ── containers ────────────────────────────────────────────────────────────────────────────────────

  /** Creates (does not start) the container and returns its id. */
  async createContainer(spec: ContainerSpec): Promise<string> {
    const ports = spec.portBindings ?? [];
    const portKey = (binding: PortBinding): string => `${binding.containerPort}/tcp`;
    const container = await this.call(`create container ${spec.name}`, () =>
      this.docker.createContainer({
        name: spec.name,
        Image: spec.image,
        ...(spec.cmd ? { Cmd: [...spec.cmd] } : {}),
        ...(spec.entrypoint ? { Entrypoint: [...spec.entrypoint] } : {}),
        Env: Object.entries(spec.env).map(([key, value]) => `${key}=${value}`),
        Labels: { ...spec.labels },
        ...(spec.workingDir ? { WorkingDir: spec.workingDir } : {}),
        ...(spec.user ? { User: spec.user } : {}),
        ...(spec.hostname ? { Hostname: spec.hostname } : {}),
        // No TTY: stdout and stderr stay apart (multiplexed), which is what the runners need.
        Tty: false,
        OpenStdin: false,
        ExposedPorts: Object.fromEntries(ports.map((binding) => [portKey(binding), {}])),
        HostConfig: {
          NetworkMode: spec.network?.name ?? 'none',
          Mounts: (spec.mounts ?? []).map((mount) => ({
            Type: 'bind' as const,
            Source: mount.source,
            Target: mount.target,
            ReadOnly: mount.readOnly ?? false,
          })),
          PortBindings: Object.fromEntries(
            ports.map((binding) => [
              portKey(binding),
              [{ HostIp: binding.hostIp, HostPort: binding.hostPort ? String(binding.hostPort) : '' }],
            ]),
          ),
          ...(spec.memoryBytes ? { Memory: spec.memoryBytes, MemorySwap: spec.memoryBytes } : {}),
          ...(spec.nanoCpus ? { NanoCpus: spec.nanoCpus } : {}),
          // A late attachLogs reads the log back; json-file is the driver every engine can read back.
          LogConfig: { Type: 'json-file', Config: {} },
        },
        ...(spec.network
          ? {
              NetworkingConfig: {
                EndpointsConfig: { [spec.network.name]: { Aliases: [...(spec.network.aliases ?? [])] } },
              },
            }
          : {}),
      }),
    );
    return container.id;
  }

  /** Starts the container; one that is already running is success (the engine says 304). */
  async startContainer(id: string): Promise<void> {
    try {
      await this.call(`start container ${id}`, () => this.docker.getContainer(id).start());
    } catch (error) {
      if (!isStatus(error, 304)) throw error;
    }
  }

  /** SIGTERM, then SIGKILL after `timeoutSeconds`; a container that is not running is success (304). */
  async stopContainer(id: string, options: { timeoutSeconds?: number } = {}): Promise<void> {
    try {
      await this.call(`stop container ${id}`, () =>
        this.docker.getContainer(id).stop({ t: options.timeoutSeconds ?? 10 }),
      );
    } catch (error) {
      if (!isStatus(error, 304)) throw error;
    }
  }

  /** Sends `signal` (default SIGKILL); a container that is not running is success. */
  async killContainer(id: string, signal = 'SIGKILL'): Promise<void> {
    try {
      await this.call(`kill container ${id} with ${signal}`, () =>
        this.docker.getContainer(id).kill({ signal }),
      );
    } catch (error) {
      // 409 "Container … is not running": it ended on its own meanwhile, which is what kill wanted.
      if (!isStatus(error, 409)) throw error;
    }
  }

  /**
   * Waits until the container is not running and says how it ended. Call it after
   * {@link startContainer}: a created, never started container counts as "not running" already.
   */
  async waitContainer(id: string, signal?: AbortSignal): Promise<ContainerExit> {
    const waited = (await this.call(`wait for container ${id}`, () =>
      this.docker
        .getContainer(id)
        .wait({ condition: 'not-running', ...(signal ? { abortSignal: signal } : {}) }),
    )) as { StatusCode?: number };
    // The wait answer has the exit code only; whether the kernel OOM-killed it is in the container state.
    try {
      const state = await this.inspectContainer(id);
      return { exitCode: state.exitCode, oomKilled: state.oomKilled };
    } catch (error) {
      if (!isStatus(error, 404)) throw error;
      return { exitCode: waited.StatusCode ?? -1, oomKilled: false };
    }
  }

  /**
   * Attaches (the engine registers the attachment before it answers, so nothing written after the start
   * is missed) while the container is only created; reads the log otherwise. The log (`logs?follow`) also
   * starts from the first byte, but on engine 20.10 a follow read ends before the final unterminated line
   * is flushed, and it cannot be opened ahead of the start.
   */
  async attachLogs(id: string, handlers: LogHandlers): Promise<AttachedLogs> {
    const operation = `read output of container ${id}`;
    const container = this.docker.getContainer(id);
    const details = await this.call(operation, () => container.inspect());
    const signalOption = handlers.signal ? { abortSignal: handlers.signal } : {};
    let stream: NodeJS.ReadableStream;
    if (details.State.Status === 'created') {
      // `logs: true` as well: were it started between the inspect and now, its output so far is replayed.
      stream = await this.call(operation, () =>
        container.attach({ stream: true, stdout: true, stderr: true, logs: true, ...signalOption }),
      );
    } else {
      // An attach to a container that stops before the engine serves it never ends: read the log instead.
      stream = await this.call(operation, () =>
        container.logs({ follow: true, stdout: true, stderr: true, since: 0, ...signalOption }),
      );
    }
    return this.deliverOutput(operation, stream, handlers, { tty: details.Config.Tty });
  }

  /**
   * Hands a container's output stream (of an attach, a container log or a service log) to the
   * handlers: demultiplexed into stdout and stderr unless it comes from a TTY, paused while a handler
   * asks to wait.
   */
  protected deliverOutput(
    operation: string,
    stream: NodeJS.ReadableStream,
    handlers: LogHandlers,
    options: { tty: boolean },
  ): AttachedLogs {
    // A handler that asks to wait pauses the stream: the engine then stops reading the container's output.
    let waiting = 0;
    const deliver =
      (handler: LogHandlers['onStdout']) =>
      (chunk: Buffer): void => {
        const ready = handler(chunk);
        if (!ready) return;
        waiting += 1;
        stream.pause();
        const done = (): void => {
          waiting -= 1;
          if (waiting === 0) stream.resume();
        };
        ready.then(done, done);
      };
    if (options.tty) {
      // With a TTY the engine sends one raw stream, no frame headers: it is all stdout.
      stream.on('data', deliver(handlers.onStdout));
    } else {
      this.docker.modem.demuxStream(
        stream,
        chunkSink(deliver(handlers.onStdout)) as NodeJS.WritableStream,
        chunkSink(deliver(handlers.onStderr)) as NodeJS.WritableStream,
      );
    }
    const ended = this.call(operation, () => streamFinished(stream));
    // Callers await `ended` once the output is done; until then a failure must not count as unhandled.
    ended.catch(() => undefined);
    // Destroying the stream emits 'close', which resolves `ended`.
    return { ended, close: () => void (stream as Readable).destroy() };
  }

  async inspectContainer(id: string): Promise<ContainerState> {
    const details = await this.call(`inspect container ${id}`, () => this.docker.getContainer(id).inspect());
    const hostPorts: Required<PortBinding>[] = [];
    for (const [key, bindings] of Object.entries(details.NetworkSettings.Ports ?? {})) {
      const containerPort = Number.parseInt(key, 10);
      for (const binding of bindings ?? []) {
        hostPorts.push({ containerPort, hostIp: binding.HostIp, hostPort: Number(binding.HostPort) });
      }
    }
    const ipAddresses: Record<string, string> = {};
    for (const [name, endpoint] of Object.entries(details.NetworkSettings.Networks ?? {})) {
      if (endpoint.IPAddress) ipAddresses[name] = endpoint.IPAddress;
    }
    return {
      id: details.Id,
      name: details.Name.replace(/^\//, ''),
      running: details.State.Running,
      status: details.State.Status,
      exitCode: details.State.ExitCode,
      oomKilled: details.State.OOMKilled,
      labels: details.Config.Labels ?? {},
      hostPorts,
      ipAddresses,
      pid: details.State.Pid ?? 0,
    };
  }

  /** Removes the container; one that is already gone (or being removed) is success. */
  async removeContainer(id: string, options: { force: boolean }): Promise<void> {
    try {
      await this.call(`remove container ${id}`, () =>
        this.docker.getContainer(id).remove({ force: options.force, v: true }),
      );
    } catch (error) {
      if (isStatus(error, 404)) return;
      // Two cleanups racing: the other one is removing it already.
      if (isStatus(error, 409) && /already in progress/i.test((error as Error).message)) return;
      throw error;
    }
  }

  async listContainers(filter: LabelFilter, options: { all: boolean }): Promise<ContainerSummary[]> {
    const containers = await this.call('list containers', () =>
      this.docker.listContainers({ all: options.all, filters: { label: [...filter] } }),
    );
    return containers.map((container) => ({
      id: container.Id,
      name: (container.Names[0] ?? '').replace(/^\//, ''),
      labels: container.Labels ?? {},
      state: container.State,
      // The engine counts in seconds since the epoch.
      createdAt: new Date(container.Created * 1_000),
    }));
  }

  // ── errors ────────────────────────────────────────────────────────────────────────────────────────

  /** Runs one engine call, turning its failure into one of our errors. */
  protected async call<T>(operation: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw this.translate(operation, error);
    }
  }

  protected translate(operation: string, error: unknown): Error {
    if (error instanceof DockerEngineError || error instanceof DependencyError) return error;
    const failure = error as Error & { code?: string; statusCode?: number; json?: unknown };
    // A cancel is not a failure of the engine; callers tell it apart by its name.
    if (failure.name === 'AbortError') return failure;
    if (failure.statusCode === undefined && failure.code && connectionErrorCodes.has(failure.code)) {
      const reason =
        failure.code === 'EACCES' || failure.code === 'EPERM'
          ? `permission denied (${failure.code}); run as root or as a member of the docker group`
          : `${failure.code}: ${failure.message}`;
      return new DependencyError(
        `Docker engine at ${this.endpoint} is unreachable (${operation}): ${reason}; ${startHint}`,
      );
    }
    if (failure.statusCode !== undefined) {
      return new DockerEngineError(operation, engineMessage(failure), failure.statusCode, { cause: error });
    }
    return new DockerEngineError(operation, failure.message ?? String(error), undefined, { cause: error });
  }
}

/** Whether two IPv4 CIDRs share an address (anything else never overlaps for our purpose). */
function subnetsOverlap(a: string, b: string): boolean {
  const parse = (cidr: string): { base: number; prefix: number } | undefined => {
    const match = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(cidr);
    if (!match) return undefined;
    const octets = match.slice(1, 5).map(Number);
    return { base: octets.reduce((sum, octet) => sum * 256 + octet, 0), prefix: Number(match[5]) };
  };
  const first = parse(a);
  const second = parse(b);
  if (!first || !second) return false;
  // The shorter prefix decides: both lie in the same block of that size.
  const size = 2 ** (32 - Math.min(first.prefix, second.prefix));
  return Math.floor(first.base / size) === Math.floor(second.base / size);
}

const endpointHint = 'give unix:///path/to/docker.sock or tcp://host:port (plain HTTP)';

/** What dockerode needs to reach the engine of an `endpoint` URL. */
function parseEndpoint(
  endpoint: string,
): { socketPath: string } | { host: string; port: number; protocol: 'http' } {
  const refuse = (why: string): never => {
    const message = `Docker endpoint ${JSON.stringify(endpoint)} ${why}; ${endpointHint}`;
    throw new ValidationError(message, [{ path: 'endpoint', message }]);
  };
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return refuse('is not a URL');
  }
  if (url.protocol === 'unix:') {
    if (url.host !== '' || url.pathname === '' || url.pathname === '/') {
      return refuse('names no socket path (three slashes: unix:///var/run/docker.sock)');
    }
    return { socketPath: decodeURIComponent(url.pathname) };
  }
  if (url.protocol === 'tcp:') {
    if (!url.hostname) return refuse('names no host');
    if ((url.pathname !== '' && url.pathname !== '/') || url.search || url.username) {
      return refuse('has more than a host and a port');
    }
    // The docker CLI's default for tcp:// without a port.
    return { host: url.hostname, port: url.port ? Number(url.port) : 2375, protocol: 'http' };
  }
  return refuse(`has the scheme ${url.protocol.replace(/:$/, '')}, which is not supported`);
}

const startHint =
  'start the engine with `dockerd` (as root; `apt-get install -y docker.io` when it is missing) or set DOCKER_HOST to a running one';

/** The engine's own message (`{"message": …}`), without dockerode's "(HTTP code 404) …" decoration. */
function engineMessage(error: Error & { json?: unknown }): string {
  const json = error.json;
  if (json && typeof json === 'object' && 'message' in json && typeof json.message === 'string') {
    return json.message.trim();
  }
  if (Buffer.isBuffer(json) && json.length > 0) return json.toString().trim();
  // Streamed endpoints (pull, build, logs) leave `json` empty and put the engine's text in the message.
  return error.message.replace(/^\(HTTP code \d+\) [^-]*- /, '').trim();
}

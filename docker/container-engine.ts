/**
 * What builders and runners may ask of a container engine, split by resource the way testcontainers
 * splits it: {@link ContainerClient}, {@link NetworkClient}, {@link ImageClient}, and {@link EngineClient}
 * for the engine itself. Consumers name the narrowest one they need; `docker-engine.ts` implements them
 * all (a Swarm or Kubernetes seam would implement the same ones). Only our own small types cross it.
 */
import type { Readable } from 'node:stream';
import type { LabelFilter, Labels } from './labels.ts';

// ── the engine ────────────────────────────────────────────────────────────────────────────────────

export interface EngineInfo {
  serverVersion: string;
  os: string;
  kernelVersion: string;
  /** `1` or `2`; decides how memory limits and OOM kills behave. */
  cgroupVersion: string;
  cgroupDriver: string;
  cpus: number;
  memoryBytes: number;
}

export interface EngineClient {
  /** Where the engine is, for messages: `unix:///var/run/docker.sock`, or `DOCKER_HOST`. */
  readonly endpoint: string;
  /** Resolves when the engine answers; a `DependencyError` saying how to start it otherwise. */
  ping(): Promise<void>;
  info(): Promise<EngineInfo>;
}

// ── images ────────────────────────────────────────────────────────────────────────────────────────

export interface ImageInfo {
  id: string;
  tags: string[];
  labels: Labels;
  /** ISO 8601; filled in by `listImages`. */
  created?: string;
  /** Bytes the image holds, layers shared with other images included; filled in by `listImages`. */
  size?: number;
}

/** Where a build's files come from: a directory on the host, or a tar stream made by the caller. */
export type BuildContext =
  /** `skip`: file and directory names left out at any depth (default `node_modules`, `.git`). */
  { dir: string; skip?: readonly string[] } | { tar: Readable };

export interface BuildImageOptions {
  context: BuildContext;
  /** Path of the Dockerfile inside the context, `/`-separated; default `Dockerfile`. */
  dockerfile?: string;
  tags: readonly string[];
  labels?: Labels;
  buildArgs?: Readonly<Record<string, string>>;
  signal?: AbortSignal;
}

export interface PullImageOptions {
  signal?: AbortSignal;
  /** Status changes (not per-layer progress ticks), one line each. */
  onLine?: (line: string) => void;
}

export interface PushImageOptions {
  signal?: AbortSignal;
  /** Status changes (`Preparing`, `Pushed`, `Layer already exists`), one line each. */
  onLine?: (line: string) => void;
}

export interface ImageClient {
  imageExists(ref: string): Promise<boolean>;
  /** The image, or `undefined` when the engine has none by that reference. */
  inspectImage(ref: string): Promise<ImageInfo | undefined>;
  /**
   * Pulls `ref` from its registry. Fails with the engine's reason (no registry, unknown image, no access)
   * as soon as the engine gives up; it never retries.
   */
  pullImage(ref: string, options?: PullImageOptions): Promise<void>;
  /** Gives the image `ref` one more name, `repo:tag`. */
  tagImage(ref: string, repo: string, tag: string): Promise<void>;
  /**
   * Pushes `ref` (`registry/repo:tag`, one tag) to its registry and returns the manifest digest the
   * registry stored it under (`sha256:…`, what `repo@digest` pins). Fails with a `DockerEngineError`
   * carrying the registry's reason; it never retries.
   */
  pushImage(ref: string, options?: PushImageOptions): Promise<{ digest: string }>;
  /**
   * Builds an image and returns its id. Every line of build output goes to `onLine`; a failed step
   * throws a `DockerEngineError` carrying the builder's own message.
   */
  buildImage(options: BuildImageOptions, onLine: (line: string) => void): Promise<string>;
  /** Removes the image; an image that is already gone is success. */
  removeImage(ref: string, options?: { force?: boolean }): Promise<void>;
  listImages(filter: LabelFilter): Promise<ImageInfo[]>;
}

// ── networks ──────────────────────────────────────────────────────────────────────────────────────

export interface NetworkSpec {
  name: string;
  /** CIDR, e.g. `16.0.0.0/16`. */
  subnet: string;
  gateway?: string;
  labels: Labels;
  /**
   * Default `bridge` (one engine). `overlay` spans a swarm's nodes; only a swarm manager creates one, and
   * it is `attachable` when containers started outside services (`docker run`) may join it.
   */
  driver?: 'bridge' | 'overlay';
  attachable?: boolean;
  /** No route out of the network (instances then reach only each other and the sync service). */
  internal?: boolean;
}

export interface NetworkInfo {
  id: string;
  name: string;
  labels: Labels;
  subnets: string[];
}

export interface NetworkClient {
  /** Creates the network and returns its id; a `SubnetInUseError` when the subnet is taken. */
  createNetwork(spec: NetworkSpec): Promise<string>;
  /** Removes the network; a network that is already gone is success. */
  removeNetwork(idOrName: string): Promise<void>;
  listNetworks(filter: LabelFilter): Promise<NetworkInfo[]>;
  /**
   * Attaches a created (not yet started) container to one more network; a container joins the network
   * of its {@link ContainerSpec} when it is created, and any others this way (engines before API 1.44
   * take one network at creation).
   */
  connectNetwork(
    network: string,
    containerId: string,
    options?: { aliases?: readonly string[] },
  ): Promise<void>;
  /**
   * The endpoints the engine holds on the network, by container id and name; none when the network is
   * gone. After runs of many containers the engine can keep endpoints of containers already removed.
   */
  networkEndpoints(idOrName: string): Promise<{ id: string; name: string }[]>;
  /** Forcibly detaches a container (or a stale endpoint) from the network; either being gone is success. */
  disconnectNetwork(network: string, container: string): Promise<void>;
}

// ── containers ────────────────────────────────────────────────────────────────────────────────────

export interface PortBinding {
  containerPort: number;
  hostIp: string;
  /** Absent: the engine picks a free port; read it back with {@link ContainerClient.inspectContainer}. */
  hostPort?: number;
}

export interface BindMount {
  source: string;
  target: string;
  readOnly?: boolean;
}

export interface ContainerSpec {
  name: string;
  image: string;
  cmd?: readonly string[];
  entrypoint?: readonly string[];
  env: Readonly<Record<string, string>>;
  labels: Labels;
  /** The one network the container joins. Absent: no network at all (`none`). */
  network?: { name: string; aliases?: readonly string[] };
  /**
   * Host directories bind-mounted into the container. Fields, not `host:container` strings: a host path
   * may hold a colon (outputs live under `…/local:docker/…`).
   */
  mounts?: readonly BindMount[];
  /** Hard memory limit; swap is capped at the same value, so the limit cannot be exceeded by swapping. */
  memoryBytes?: number;
  /** CPU limit in units of 1e-9 CPUs (0.5 CPU = 500_000_000). */
  nanoCpus?: number;
  portBindings?: readonly PortBinding[];
  workingDir?: string;
  user?: string;
  hostname?: string;
}

export interface ContainerExit {
  exitCode: number;
  /** The kernel killed a process of the container for exceeding its memory limit. */
  oomKilled: boolean;
}

export interface ContainerState extends ContainerExit {
  id: string;
  name: string;
  running: boolean;
  /** The engine's word: `created`, `running`, `exited`, … */
  status: string;
  labels: Labels;
  /** Published ports with the host port the engine chose. */
  hostPorts: Required<PortBinding>[];
  /** IPv4 address by network name. */
  ipAddresses: Readonly<Record<string, string>>;
  /** The pid of its main process on the engine's host (its namespaces are `/proc/<pid>/ns/*`); 0 when not running. */
  pid: number;
}

export interface ContainerSummary {
  id: string;
  name: string;
  labels: Labels;
  state: string;
  /** When the engine created it; how leftovers without a run (runtime checks) are told from live ones. */
  createdAt: Date;
}

export interface LogHandlers {
  /** A promise returned from a handler pauses the stream until it settles (backpressure). */
  onStdout: (chunk: Buffer) => void | Promise<void>;
  onStderr: (chunk: Buffer) => void | Promise<void>;
  /** Stops delivering output; `ended` then rejects with an AbortError. */
  signal?: AbortSignal;
}

export interface AttachedLogs {
  /** Resolves when the container's output has ended and every chunk has been delivered. */
  ended: Promise<void>;
  /**
   * Stops delivering and resolves `ended`. Needed when the container is never started: the engine
   * keeps an attachment to a created container open even after the container is removed.
   */
  close(): void;
}

export interface ContainerClient {
  /** Creates (does not start) the container and returns its id. */
  createContainer(spec: ContainerSpec): Promise<string>;
  /** Starts the container; one that is already running is success. */
  startContainer(id: string): Promise<void>;
  /** SIGTERM, then SIGKILL after `timeoutSeconds`; a container that is not running is success. */
  stopContainer(id: string, options?: { timeoutSeconds?: number }): Promise<void>;
  /** Sends `signal` (default SIGKILL); a container that is not running is success. */
  killContainer(id: string, signal?: string): Promise<void>;
  /**
   * Waits until the container is not running and says how it ended. Call it after
   * {@link startContainer}: a created, never started container counts as "not running" already.
   */
  waitContainer(id: string, signal?: AbortSignal): Promise<ContainerExit>;
  /**
   * Delivers everything the container writes, demultiplexed into stdout and stderr chunks. Resolves once
   * the output is connected; `ended` resolves when the output has ended (the container exited, failed to
   * start or was removed) and every chunk has been delivered.
   *
   * Call it between {@link createContainer} and {@link startContainer}, as `docker run` does: output
   * written from the first instruction on is then delivered, the last line included even without a
   * trailing newline. Called later, it reads the engine's log: a running container's output from its
   * first byte (an unterminated last line may be missing), an exited container's whole output.
   */
  attachLogs(id: string, handlers: LogHandlers): Promise<AttachedLogs>;
  inspectContainer(id: string): Promise<ContainerState>;
  /** Removes the container; one that is already gone (or being removed) is success. */
  removeContainer(id: string, options: { force: boolean }): Promise<void>;
  listContainers(filter: LabelFilter, options: { all: boolean }): Promise<ContainerSummary[]>;
}

/** Everything at once, for the composition root and for code that truly needs every resource. */
export interface ContainerEngine extends EngineClient, ImageClient, NetworkClient, ContainerClient {}

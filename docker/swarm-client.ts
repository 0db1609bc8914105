/**
 * What cluster:swarm may ask of a Docker Swarm manager, in our own small types, beside the engine seam of
 * `container-engine.ts`: services (one per instance, the sync service, the outputs collectors), their
 * tasks, the nodes, and the logs the swarm gathers from every node. `docker-swarm.ts` implements it over
 * the manager's HTTP API; networks are the engine seam's own ({@link NetworkClient}, with `driver: 'overlay'`).
 */
import type { AttachedLogs, EngineClient, LogHandlers, NetworkClient } from './container-engine.ts';
import type { LabelFilter, Labels } from './labels.ts';

/** A mount of a service's containers: an anonymous volume (removed with its container) or a node's path. */
export type ServiceMount =
  { type: 'volume'; target: string } | { type: 'bind'; source: string; target: string; readOnly?: boolean };

export interface ServiceSpec {
  name: string;
  /** Pinned by digest (`registry/repo@sha256:…`), so every node runs the same bytes and pulls them once. */
  image: string;
  /** On the service object: how leftovers are found through the manager. */
  labels: Labels;
  /** On each of its containers: how an engine of a node (and the outputs collector) finds them. */
  containerLabels: Labels;
  env: Readonly<Record<string, string>>;
  /** Replaces the image's entrypoint (swarm's `Command`). */
  entrypoint?: readonly string[];
  /** Arguments after the entrypoint (swarm's `Args`). */
  args?: readonly string[];
  hostname?: string;
  /** Overlay networks joined from the start, each with the names peers find the container by. */
  networks: readonly { name: string; aliases?: readonly string[] }[];
  mounts?: readonly ServiceMount[];
  /** Reserved and limited both: the scheduler places the task only where this much is free. */
  memoryBytes?: number;
  /** Reserved and limited both, in units of 1e-9 CPUs. */
  nanoCpus?: number;
  /** Placement constraints as swarm writes them: `node.labels.zone==a`, `node.id==abc`. */
  constraints?: readonly string[];
  /**
   * A container port published on the node the task runs on (host mode, a port the engine picks), read
   * back from {@link TaskState.publishedPorts}. Host mode, not the routing mesh: the mesh needs IPVS.
   */
  publishPort?: number;
  /** Time between SIGTERM and SIGKILL when the task is stopped; default 0 (killed at once). */
  stopGracePeriodMs?: number;
}

/** One task of a service, as the manager last saw it. */
export interface TaskState {
  id: string;
  serviceId: string;
  /** Empty while the scheduler has not placed it. */
  nodeId: string;
  /** `running`, `shutdown`, … : what the orchestrator wants. */
  desiredState: string;
  /** `new`, `pending`, `assigned`, `accepted`, `preparing`, `starting`, `running`, `complete`, `failed`, `shutdown`, `rejected`, `orphaned`, `remove`. */
  state: string;
  /** The manager's status message (`started`, `finished`, `pending task scheduling`). */
  message: string;
  /** Why it failed or cannot be scheduled (`no suitable node (insufficient resources on 3 nodes)`); empty when none. */
  error: string;
  /** The container's exit code once it exited; `null` before and when it never ran. */
  exitCode: number | null;
  /** Empty until the node created the container. */
  containerId: string;
  /** The labels of its containers (the service's {@link ServiceSpec.containerLabels}). */
  containerLabels: Labels;
  /** Ports published in host mode on its node, once it runs. */
  publishedPorts: readonly { target: number; published: number }[];
  /** When its state last changed. */
  updatedAt: Date;
}

export interface NodeSummary {
  id: string;
  hostname: string;
  /** The address the node's engine advertises, which its host-mode ports listen on. */
  address: string;
  role: 'manager' | 'worker';
  leader: boolean;
  /** `ready`, `down`, `disconnected`, `unknown`. */
  state: string;
  /** `active`, `pause`, `drain`. */
  availability: string;
  /** Why it is in its state, when the manager says (`heartbeat failure`). */
  message: string;
  nanoCpus: number;
  memoryBytes: number;
  labels: Labels;
}

export interface ServiceSummary {
  id: string;
  name: string;
  labels: Labels;
}

/** What the engine behind the endpoint says of its swarm. */
export interface SwarmMembership {
  /** `active`, `inactive`, `pending`, `error`, `locked`. */
  state: string;
  nodeId: string;
  isManager: boolean;
}

export interface SwarmClient extends EngineClient, NetworkClient {
  swarmMembership(): Promise<SwarmMembership>;
  /** Creates the service (one replica, never restarted: an instance that ends stays ended) and returns its id. */
  createService(spec: ServiceSpec): Promise<string>;
  /** Sets the service's replica count; 0 stops its task, whose container stays until the service is removed. */
  scaleService(idOrName: string, replicas: number): Promise<void>;
  /** Removes the service; its containers go on every node. One that is already gone is success. */
  removeService(idOrName: string): Promise<void>;
  listServices(filter: LabelFilter): Promise<ServiceSummary[]>;
  /** Every task of the swarm, or only those of the given services (by id). */
  listTasks(serviceIds?: readonly string[]): Promise<TaskState[]>;
  listNodes(): Promise<NodeSummary[]>;
  /**
   * Delivers the output of the service's tasks, gathered by the swarm from whichever node runs them,
   * demultiplexed into stdout and stderr. With `follow`, it goes on until closed (the swarm keeps the
   * stream open after the task ended); without, `ended` resolves once everything so far was delivered.
   */
  serviceLogs(idOrName: string, handlers: LogHandlers & { follow: boolean }): Promise<AttachedLogs>;
}

/**
 * The swarm seam (`swarm-client.ts`) over a manager's HTTP API: the engine seam of `docker-engine.ts`
 * (whose dockerode connection, error translation and output demultiplexing it shares) plus services,
 * tasks, nodes and service logs. With `docker-engine.ts`, the only file that imports dockerode.
 */
import type Docker from 'dockerode';
import type { AttachedLogs, LogHandlers } from './container-engine.ts';
import { DockerEngine } from './docker-engine.ts';
import { DockerEngineError, isStatus } from './engine-errors.ts';
import type { LabelFilter, Labels } from './labels.ts';
import type {
  NodeSummary,
  ServiceSpec,
  ServiceSummary,
  SwarmClient,
  SwarmMembership,
  TaskState,
} from './swarm-client.ts';

type DialOptions = Parameters<Docker['modem']['dial']>[0];

/** The parts of a task the manager returns that we read (`GET /tasks`). */
interface SwarmTask {
  ID: string;
  ServiceID?: string;
  NodeID?: string;
  DesiredState?: string;
  UpdatedAt?: string;
  Spec?: { ContainerSpec?: { Labels?: Record<string, string> } };
  Status?: {
    Timestamp?: string;
    State?: string;
    Message?: string;
    Err?: string;
    ContainerStatus?: { ContainerID?: string; ExitCode?: number };
    PortStatus?: { Ports?: { TargetPort?: number; PublishedPort?: number }[] };
  };
}

/** The parts of a node the manager returns that we read (`GET /nodes`). */
interface SwarmNode {
  ID: string;
  Spec?: { Role?: string; Availability?: string; Labels?: Record<string, string> };
  Description?: { Hostname?: string; Resources?: { NanoCPUs?: number; MemoryBytes?: number } };
  Status?: { State?: string; Message?: string; Addr?: string };
  ManagerStatus?: { Leader?: boolean; Addr?: string };
}

interface SwarmService {
  ID: string;
  Version?: { Index?: number };
  Spec?: { Name?: string; Labels?: Record<string, string>; Mode?: { Replicated?: { Replicas?: number } } };
}

// A task whose container ran and stopped; before that its status has no exit code worth reporting.
const exitedStates = new Set(['complete', 'failed', 'shutdown']);

/** A swarm manager's engine. Stateless apart from the connection settings. */
export class DockerSwarm extends DockerEngine implements SwarmClient {
  async swarmMembership(): Promise<SwarmMembership> {
    const info = (await this.call('read engine info', () => this.docker.info())) as {
      Swarm?: { LocalNodeState?: string; NodeID?: string; ControlAvailable?: boolean };
    };
    return {
      state: info.Swarm?.LocalNodeState ?? 'inactive',
      nodeId: info.Swarm?.NodeID ?? '',
      isManager: info.Swarm?.ControlAvailable ?? false,
    };
  }

  async createService(spec: ServiceSpec): Promise<string> {
    const memory = spec.memoryBytes === undefined ? {} : { MemoryBytes: spec.memoryBytes };
    const cpus = spec.nanoCpus === undefined ? {} : { NanoCPUs: spec.nanoCpus };
    const body = {
      Name: spec.name,
      Labels: { ...spec.labels },
      TaskTemplate: {
        ContainerSpec: {
          Image: spec.image,
          Labels: { ...spec.containerLabels },
          Env: Object.entries(spec.env).map(([key, value]) => `${key}=${value}`),
          ...(spec.hostname === undefined ? {} : { Hostname: spec.hostname }),
          ...(spec.entrypoint === undefined ? {} : { Command: [...spec.entrypoint] }),
          ...(spec.args === undefined ? {} : { Args: [...spec.args] }),
          Mounts: (spec.mounts ?? []).map((mount) =>
            mount.type === 'volume'
              ? // Without a source the engine makes an anonymous volume, removed with the container.
                { Type: 'volume', Target: mount.target }
              : {
                  Type: 'bind',
                  Source: mount.source,
                  Target: mount.target,
                  ReadOnly: mount.readOnly ?? false,
                },
          ),
          // Swarm counts in nanoseconds.
          StopGracePeriod: (spec.stopGracePeriodMs ?? 0) * 1_000_000,
        },
        Resources: { Limits: { ...memory, ...cpus }, Reservations: { ...memory, ...cpus } },
        // An instance that ended stays ended: swarm must not start it again.
        RestartPolicy: { Condition: 'none' },
        Placement: { Constraints: [...(spec.constraints ?? [])] },
        Networks: spec.networks.map((network) => ({
          Target: network.name,
          Aliases: [...(network.aliases ?? [])],
        })),
      },
      Mode: { Replicated: { Replicas: 1 } },
      // No virtual IP and no routing mesh: both need IPVS, which not every node's kernel has.
      EndpointSpec: {
        Mode: 'dnsrr',
        Ports:
          spec.publishPort === undefined
            ? []
            : [{ TargetPort: spec.publishPort, Protocol: 'tcp', PublishMode: 'host' }],
      },
    };
    const created = await this.dial<{ ID: string }>(`create service ${spec.name}`, {
      path: '/services/create',
      method: 'POST',
      options: { _body: body },
      statusCodes: { 200: true, 201: true },
    });
    return created.ID;
  }

  async scaleService(idOrName: string, replicas: number): Promise<void> {
    const operation = `scale service ${idOrName} to ${replicas}`;
    // The manager refuses an update based on a version someone else has just replaced: read it again.
    for (let attempt = 1; ; attempt += 1) {
      const service = await this.dial<SwarmService>(operation, {
        path: `/services/${encodeURIComponent(idOrName)}`,
        method: 'GET',
        statusCodes: { 200: true },
      });
      const spec = { ...service.Spec, Mode: { Replicated: { Replicas: replicas } } };
      try {
        await this.dial(operation, {
          path: `/services/${encodeURIComponent(service.ID)}/update?`,
          method: 'POST',
          options: { _query: { version: service.Version?.Index ?? 0 }, _body: spec },
          statusCodes: { 200: true },
        });
        return;
      } catch (error) {
        if (
          attempt >= 2 ||
          !(error instanceof DockerEngineError) ||
          !/out of sequence/i.test(error.message)
        ) {
          throw error;
        }
      }
    }
  }

  async removeService(idOrName: string): Promise<void> {
    try {
      await this.dial(`remove service ${idOrName}`, {
        path: `/services/${encodeURIComponent(idOrName)}`,
        method: 'DELETE',
        statusCodes: { 200: true, 204: true },
      });
    } catch (error) {
      if (!isStatus(error, 404)) throw error;
    }
  }

  async listServices(filter: LabelFilter): Promise<ServiceSummary[]> {
    const services = await this.dial<SwarmService[]>('list services', {
      path: '/services?',
      method: 'GET',
      options: { filters: { label: [...filter] } },
      statusCodes: { 200: true },
    });
    return services.map((service) => ({
      id: service.ID,
      name: service.Spec?.Name ?? '',
      labels: service.Spec?.Labels ?? {},
    }));
  }

  async listTasks(serviceIds?: readonly string[]): Promise<TaskState[]> {
    // All, then filtered here: the manager's `service` filter looks each id up and fails the whole
    // list (404) when one of them was removed meanwhile.
    const tasks = await this.dial<SwarmTask[]>('list tasks', {
      path: '/tasks',
      method: 'GET',
      statusCodes: { 200: true },
    });
    const wanted = serviceIds === undefined ? undefined : new Set(serviceIds);
    return tasks
      .filter((task) => wanted === undefined || wanted.has(task.ServiceID ?? ''))
      .map((task) => toTaskState(task));
  }

  async listNodes(): Promise<NodeSummary[]> {
    const nodes = await this.dial<SwarmNode[]>('list nodes', {
      path: '/nodes',
      method: 'GET',
      statusCodes: { 200: true },
    });
    return nodes.map((node) => ({
      id: node.ID,
      hostname: node.Description?.Hostname ?? '',
      address: nodeAddress(node),
      role: node.Spec?.Role === 'manager' ? 'manager' : 'worker',
      leader: node.ManagerStatus?.Leader ?? false,
      state: node.Status?.State ?? 'unknown',
      availability: node.Spec?.Availability ?? '',
      message: node.Status?.Message ?? '',
      nanoCpus: node.Description?.Resources?.NanoCPUs ?? 0,
      memoryBytes: node.Description?.Resources?.MemoryBytes ?? 0,
      labels: node.Spec?.Labels ?? {},
    }));
  }

  async serviceLogs(idOrName: string, handlers: LogHandlers & { follow: boolean }): Promise<AttachedLogs> {
    const operation = `read output of service ${idOrName}`;
    const stream = await this.dial<NodeJS.ReadableStream>(operation, {
      path: `/services/${encodeURIComponent(idOrName)}/logs?`,
      method: 'GET',
      isStream: true,
      options: { stdout: true, stderr: true, follow: handlers.follow },
      statusCodes: { 200: true },
      ...(handlers.signal ? { abortSignal: handlers.signal } : {}),
    });
    // Services are created without a TTY: the swarm relays each container's output multiplexed.
    return this.deliverOutput(operation, stream, handlers, { tty: false });
  }

  /** One request to the manager, for the endpoints dockerode's methods do not fit (body and query both, streams). */
  private dial<T = unknown>(operation: string, options: DialOptions): Promise<T> {
    return this.call(
      operation,
      () =>
        new Promise<T>((resolve, reject) => {
          this.docker.modem.dial(options, (error, result) => {
            if (error) reject(error);
            else resolve(result as T);
          });
        }),
    );
  }
}

/**
 * A manager that joined with a wildcard listen address reports `0.0.0.0` as its own (a known engine
 * quirk); its manager status then has the address it advertises to the others.
 */
function nodeAddress(node: SwarmNode): string {
  const address = node.Status?.Addr ?? '';
  if (address && address !== '0.0.0.0') return address;
  const advertised = node.ManagerStatus?.Addr ?? '';
  return advertised ? advertised.replace(/:\d+$/, '') : address;
}

function toTaskState(task: SwarmTask): TaskState {
  const status = task.Status ?? {};
  const state = status.State ?? 'new';
  const container = status.ContainerStatus;
  const labels: Labels = task.Spec?.ContainerSpec?.Labels ?? {};
  return {
    id: task.ID,
    serviceId: task.ServiceID ?? '',
    nodeId: task.NodeID ?? '',
    desiredState: task.DesiredState ?? '',
    state,
    message: status.Message ?? '',
    error: status.Err ?? '',
    // A task stopped before its node made the container has a status without one: it never ran.
    exitCode:
      exitedStates.has(state) && container?.ContainerID && container.ExitCode !== undefined
        ? container.ExitCode
        : null,
    containerId: container?.ContainerID ?? '',
    containerLabels: labels,
    publishedPorts: (status.PortStatus?.Ports ?? []).flatMap((port) =>
      port.TargetPort !== undefined && port.PublishedPort !== undefined
        ? [{ target: port.TargetPort, published: port.PublishedPort }]
        : [],
    ),
    updatedAt: new Date(status.Timestamp ?? task.UpdatedAt ?? 0),
  };
}

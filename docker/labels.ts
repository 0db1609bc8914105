/**
 * Label keys on every container, network and image Testground creates, so that leftovers can always be
 * found (and removed) through the engine, whatever process created them.
 */

/** Labels as the engine stores them on a container, network or image. */
export type Labels = Readonly<Record<string, string>>;

/** The run (= task) an object belongs to. */
export const runIdLabel = 'testground.run_id';
/** The daemon that created the object; leftovers of a dead daemon are found by it. */
export const daemonLabel = 'testground.daemon';
/** The plan name of a plan image (or of a run's objects). */
export const planLabel = 'testground.plan';
/** What the object is for; one of {@link Role}. */
export const roleLabel = 'testground.role';
/** The group id of an instance container. */
export const groupLabel = 'testground.group';
/** The index of an instance within its group. */
export const instanceLabel = 'testground.instance';
/** The Node version inside a runtime image built from the host's node. */
export const nodeVersionLabel = 'testground.node_version';

/**
 * What an object is for. `sync-service` is a run's sync service container and its image (objects made
 * before the rename carry `sidecar`; leftovers are found by run and daemon, whatever their role);
 * `network` is a run's data network (the one plans shape), `control-network` the one its sync service is on;
 * `runtime-check` is the short-lived container that checks a freshly built runtime image;
 * `outputs-collector` is cluster:swarm's per-node service that reads a run's outputs there.
 */
export type Role =
  | 'instance'
  | 'sync-service'
  | 'network'
  | 'control-network'
  | 'runtime'
  | 'runtime-check'
  | 'plan-image'
  | 'outputs-collector';

export interface LabelsInput {
  /** Absent for objects that outlive runs: images, runtime checks. */
  runId?: string;
  daemonId: string;
  role: Role;
  plan?: string;
  group?: string;
  instance?: number;
}

/** The labels of one object Testground creates; the only place label sets are assembled. */
export function createLabels(input: LabelsInput): Labels {
  return {
    ...(input.runId === undefined ? {} : { [runIdLabel]: input.runId }),
    [daemonLabel]: input.daemonId,
    [roleLabel]: input.role,
    ...(input.plan === undefined ? {} : { [planLabel]: input.plan }),
    ...(input.group === undefined ? {} : { [groupLabel]: input.group }),
    ...(input.instance === undefined ? {} : { [instanceLabel]: String(input.instance) }),
  };
}

/**
 * A label filter as the engine's list endpoints take it: each item is `key` (the label is present, any
 * value) or `key=value`. An object passes only when it matches every item.
 */
export type LabelFilter = readonly string[];

/**
 * Builds a {@link LabelFilter}: `true` matches any value of that key, a string matches exactly.
 *
 * @example labelFilter({ [runIdLabel]: runId, [daemonLabel]: true })
 */
export function labelFilter(match: Readonly<Record<string, string | true>>): LabelFilter {
  return Object.entries(match).map(([key, value]) => {
    // The engine splits `key=value` at the first `=`; a key holding one could never match.
    if (key.length === 0 || key.includes('=')) {
      throw new Error(
        `label key ${JSON.stringify(key)} cannot be used in a filter: it is empty or holds '='`,
      );
    }
    return value === true ? key : `${key}=${value}`;
  });
}

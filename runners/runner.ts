import type { z } from 'zod';
import type { Artifact, ArtifactKind } from '../core/artifact.ts';
import type { TaskLog } from '../core/task-log.ts';
import type { ResolvedRun, InstanceResult } from '../core/run.ts';

export interface RunInput {
  runId: string;
  run: ResolvedRun;
  /** The artifact each group starts from, by group id. */
  artifacts: ReadonlyMap<string, Artifact>;
  /** `<outputs root>/<runner>/<plan>/<run_id>`; instance `i` of group `g` writes to `<outputsDir>/g/i`. */
  outputsDir: string;
  /** Scratch space for the run, removed by the engine afterwards. */
  tempDir: string;
  startTime: Date;
  log: TaskLog;
  /** Aborted when someone cancels the task: instances are stopped and end as `canceled`. */
  signal: AbortSignal;
  /** Where the daemon learns how far the run has got beyond what `log` carries; absent in some tests. */
  progress?: RunProgressPort;
}

/**
 * What a runner tells the daemon so that a waiting user sees the run's barriers: the address of the run's
 * sync service as the daemon reaches it (its `GET /status` answers the states' counts).
 */
export interface RunProgressPort {
  syncServiceAt(address: { host: string; port: number }): void;
}

export interface RunOutput {
  instances: InstanceResult[];
}

/** Starts every instance of a run from its group's artifact and reports how each one ended. */
export interface Runner {
  readonly id: string;
  /** The kind of artifact it starts instances from; submission refuses builders that make another. */
  readonly accepts: ArtifactKind;
  /**
   * The `run_config` keys this runner understands, each with a description: a strict object, so that a
   * misspelt key can be refused at submission rather than ignored.
   */
  readonly configSchema: z.ZodObject;
  run(input: RunInput): Promise<RunOutput>;
  /**
   * Removes what a run left behind when the daemon running it died (processes, containers), given
   * the run id and the temp directory it had.
   */
  cleanupInterrupted(runId: string, tempDir: string): Promise<void>;
  /** Checks what the runner needs; with `fix`, repairs what it can. Runs in `activeRunIds` are left alone. */
  healthcheck(options: { fix: boolean; activeRunIds: ReadonlySet<string> }): Promise<HealthcheckCheck[]>;
  /**
   * Removes everything the runner created for runs not in `activeRunIds`; returns what it removed. What
   * it cannot remove goes to `onNotRemoved` when given, and the rest is removed all the same; without it,
   * the failures are thrown together once everything else was tried.
   */
  removeLeftovers(
    activeRunIds: ReadonlySet<string>,
    onNotRemoved?: (item: NotRemoved) => void,
  ): Promise<Record<string, number>>;
}

/** A leftover a cleanup could not remove, and the engine's or system's reason. */
export interface NotRemoved {
  kind: string;
  name: string;
  reason: string;
}

export interface HealthcheckCheck {
  name: string;
  ok: boolean;
  message: string;
  /** What `--fix` did about it, when it did something. */
  fix?: string;
}

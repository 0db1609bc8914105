import type { Artifact } from '../core/artifact.ts';
import type { TaskLog } from '../core/task-log.ts';

export interface BuildInput {
  /** The plan's directory (holds `manifest.toml`); builders never write into it. */
  planDir: string;
  /** Manifest name with `/` replaced by `-`. */
  planName: string;
  buildConfig: Record<string, unknown>;
  log: TaskLog;
  signal: AbortSignal;
}

/** Turns a plan into an artifact a runner can start. Implementations cache by content. */
export interface Builder {
  readonly id: string;
  build(input: BuildInput): Promise<Artifact>;
}

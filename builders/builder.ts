import type { TaskLog } from '../daemon/task-log.ts';

/** What a builder produced: a bundle on the host, or (docker builders) an image. */
export type Artifact =
  { kind: 'bundle'; path: string; cached: boolean } | { kind: 'image'; imageId: string; cached: boolean };

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

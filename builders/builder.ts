import { z } from 'zod';
import type { Artifact, ArtifactKind } from '../core/artifact.ts';
import type { BuildDependency } from '../core/run.ts';
import { BuildError } from '../core/errors.ts';
import type { TaskLog } from '../core/task-log.ts';
import { problemsFromZod } from '../plan/problems.ts';

export interface BuildInput {
  /** The plan's directory (holds `manifest.toml`); builders never write into it. */
  planDir: string;
  /** Manifest name with `/` replaced by `-`. */
  planName: string;
  buildConfig: Record<string, unknown>;
  /** Packages to take at another version or from another source than the plan's package.json says; none when absent. */
  dependencies?: readonly BuildDependency[];
  log: TaskLog;
  signal: AbortSignal;
}

/** Turns a plan into an artifact a runner can start. Implementations cache by content. */
export interface Builder {
  readonly id: string;
  /** What its artifacts are; a runner starts one kind only. */
  readonly produces: ArtifactKind;
  /**
   * The `build_config` keys this builder understands, as a strict table: a run whose composition sets
   * anything else is refused when it is submitted, naming the key and the accepted ones.
   */
  readonly configSchema: z.ZodObject;
  build(input: BuildInput): Promise<Artifact>;
}

/**
 * The builder's typed view of a build config. Keys it does not know are left out (the manifest may carry
 * settings for other tools; the composition's own keys were checked at submit), values it knows are
 * checked again here because a build config can also come from a plan's manifest.
 *
 * @throws BuildError naming each bad key as `build_config.<key>`.
 */
export function readBuildConfig<S extends z.ZodObject>(
  builder: { id: string; configSchema: S },
  config: Record<string, unknown>,
): z.infer<S> {
  const parsed = builder.configSchema.strip().safeParse(config, { reportInput: true });
  if (parsed.success) return parsed.data as z.infer<S>;
  const problems = problemsFromZod(parsed.error, 'build_config');
  throw new BuildError(
    `${builder.id}: ${problems.map((problem) => `${problem.path}: ${problem.message}`).join('; ')}`,
    problems,
  );
}

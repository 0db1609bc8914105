/**
 * `build_config` and `run_config` checked at submit against what the chosen builder or runner understands,
 * so a typo (`bulid_args`) is a 400 naming the key and the accepted ones, not an `error` minutes later.
 */
import type { z } from 'zod';
import type { ArtifactKind } from '../core/artifact.ts';
import type { ProblemDetail } from '../core/errors.ts';
import { formatPath, problemsFromZod } from './problems.ts';

/** The config keys one builder or runner understands, as a strict table whose keys are all optional. */
export type ConfigSchema = z.ZodObject;

/** What submission needs to know of one builder: the config it understands and what it makes. */
export interface BuilderTraits {
  configSchema: ConfigSchema;
  produces: ArtifactKind;
}

/** What submission needs to know of one runner: the config it understands and what it starts. */
export interface RunnerTraits {
  configSchema: ConfigSchema;
  accepts: ArtifactKind;
}

/** This daemon's builders and runners, by id (the Builder and Runner objects themselves fit). */
export interface Components {
  builders: Readonly<Record<string, BuilderTraits>>;
  runners: Readonly<Record<string, RunnerTraits>>;
}

/** One source of config values, lowest precedence first. */
export interface ConfigLayer {
  /** Where the values were written, e.g. `global.build_config` or `manifest.builders."exec:node"`. */
  path: string;
  values: Readonly<Record<string, unknown>> | undefined;
  /**
   * Whether keys the component does not know are refused. Compositions are strict; a manifest's tables
   * may carry settings for other tools and the original's builders, so only their known keys are checked.
   */
  strict: boolean;
}

/**
 * The problems of each layer checked on its own (every key is optional, so a layer is valid alone), paths
 * pointing into the layer that set the value. Keys in `checkedElsewhere` are left to their own checks.
 */
export function checkConfigLayers(
  schema: ConfigSchema,
  layers: readonly ConfigLayer[],
  checkedElsewhere: readonly string[] = [],
): ProblemDetail[] {
  const problems: ProblemDetail[] = [];
  for (const layer of layers) {
    if (layer.values === undefined) continue;
    const values = Object.fromEntries(
      Object.entries(layer.values).filter(([key]) => !checkedElsewhere.includes(key)),
    );
    const parsed = (layer.strict ? schema : schema.strip()).safeParse(values, { reportInput: true });
    if (!parsed.success) problems.push(...problemsFromZod(parsed.error, layer.path));
  }
  return problems;
}

/** The path of a manifest's builder or runner table: `manifest.builders."exec:node"`. */
export function manifestTablePath(kind: 'builders' | 'runners', id: string): string {
  return formatPath([kind, id], 'manifest');
}

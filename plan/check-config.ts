/**
 * `build_config` and `run_config` checked at submit against what the chosen builder or runner understands,
 * so a typo (`bulid_args`) is a 400 naming the key and the accepted ones, not an `error` minutes later.
 */
import type { z } from 'zod';
import type { ArtifactKind } from '../core/artifact.ts';
import type { ProblemDetail } from '../core/errors.ts';
import { originalComponentsWithKey } from './original-config-keys.ts';
import { formatPath, listOrNone, problemsFromZod } from './problems.ts';

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

/** What a config check found: refusals (typos, bad values) and warnings (keys that have no effect here). */
export interface ConfigCheck {
  problems: ProblemDetail[];
  warnings: ProblemDetail[];
}

/** The builder or runner whose config is checked. */
export interface ConfigOwner {
  kind: 'builder' | 'runner';
  id: string;
  schema: ConfigSchema;
}

/**
 * Each layer checked on its own (every key is optional, so a layer is valid alone), paths pointing into the
 * layer that set the value. In a strict layer, a key the component does not know is refused as a typo,
 * unless it is a key of the original Testground's builders or runners (`go_version`, `keep_service`, …):
 * compositions written for the original carry those, so they are warned about as having no effect. Keys in
 * `checkedElsewhere` are left to their own checks.
 */
export function checkConfigLayers(
  owner: ConfigOwner,
  layers: readonly ConfigLayer[],
  checkedElsewhere: readonly string[] = [],
): ConfigCheck {
  const found: ConfigCheck = { problems: [], warnings: [] };
  const known = Object.keys(owner.schema.shape);
  // A schema that lets unknown keys through (zod's loose object) has no typos to find.
  const catchall = owner.schema.def.catchall?._zod.def.type;
  const takesAnyKey = catchall !== undefined && catchall !== 'never';
  for (const layer of layers) {
    if (layer.values === undefined) continue;
    const values: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(layer.values)) {
      if (checkedElsewhere.includes(key)) continue;
      if (known.includes(key) || !layer.strict || takesAnyKey) {
        values[key] = value;
        continue;
      }
      const path = formatPath([key], layer.path);
      const original = originalComponentsWithKey(owner.kind, key);
      if (original === undefined) {
        found.problems.push({
          path,
          message: `unknown key ${JSON.stringify(key)}; accepted keys here: ${listOrNone(known)}`,
        });
      } else {
        const whose = `the original's ${original.join(', ')} ${owner.kind}${original.length === 1 ? '' : 's'}`;
        found.warnings.push({
          path,
          message:
            `${JSON.stringify(key)} was a setting of ${whose}; it has no effect on ${owner.id}, ` +
            `which understands: ${listOrNone(known)}`,
        });
      }
    }
    const parsed = owner.schema.strip().safeParse(values, { reportInput: true });
    if (!parsed.success) found.problems.push(...problemsFromZod(parsed.error, layer.path));
  }
  return found;
}

/** The path of a manifest's builder or runner table: `manifest.builders."exec:node"`. */
export function manifestTablePath(kind: 'builders' | 'runners', id: string): string {
  return formatPath([kind, id], 'manifest');
}

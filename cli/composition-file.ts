import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import type { GroupArtifactView } from '../api/schemas.ts';
import { packPlanDirectory } from './pack-plan.ts';
import { locatePlan } from './plan-locator.ts';
import { renderComposition } from './template/render-composition.ts';

/** A composition file as the CLI needs it: its text (rendered, then sent as is) and its parsed document. */
export interface CompositionFile {
  path: string;
  /** The composition after rendering it as a template; the file's own text when it is none. */
  text: string;
  /** Whether the file is a template (its rendered text differs from what it says). */
  templated: boolean;
  format: 'toml' | 'json';
  document: CompositionDocument;
}

/** The little of a composition the CLI reads itself; the daemon checks the rest. */
export interface CompositionDocument {
  global?: { plan?: unknown };
  groups?: { id?: unknown; run?: Record<string, unknown> }[];
  runs?: { id?: unknown; groups?: { id?: unknown; group_id?: unknown }[] }[];
  [key: string]: unknown;
}

/**
 * Reads a composition, TOML or JSON (JSON when the first non-blank character is `{`, as the daemon decides),
 * after rendering it as a Go text/template with the environment, as the original CLI did.
 */
export async function readCompositionFile(
  file: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<CompositionFile> {
  const source = await readFile(file, 'utf8');
  const text = renderComposition(source, { file, env });
  const format = text.trimStart().startsWith('{') ? 'json' : 'toml';
  const document = (format === 'json' ? JSON.parse(text) : parseToml(text)) as CompositionDocument;
  return { path: file, text, templated: text !== source, format, document };
}

/**
 * Writes each group's artifact into the composition as `[groups.run] artifact = "…"`, so running it skips
 * the build. A [[groups]] entry gets the artifact built for it: under its own id, or under the id of a
 * run-group that uses it (`group_id`). The file is written anew from its parsed document, so TOML comments
 * and layout are not kept (JSON is written with two-space indentation). A template is not overwritten with
 * its rendered form: the result goes beside it (`comp.toml` → `comp.built.toml`). Returns the file written
 * and the groups it wrote.
 */
export async function writeArtifacts(
  composition: CompositionFile,
  artifacts: readonly GroupArtifactView[],
): Promise<{ file: string; written: { group: string; artifact: string }[] }> {
  const document = structuredClone(composition.document);
  const written: { group: string; artifact: string }[] = [];
  for (const group of document.groups ?? []) {
    if (typeof group.id !== 'string') continue;
    const artifact = artifactFor(document, group.id, artifacts);
    if (artifact === undefined) continue;
    group.run = { ...group.run, artifact };
    written.push({ group: group.id, artifact });
  }
  const text =
    composition.format === 'json'
      ? `${JSON.stringify(document, null, 2)}\n`
      : `${stringifyToml(document as Record<string, unknown>)}\n`;
  const file = composition.templated ? builtFileName(composition.path) : composition.path;
  await writeFile(file, text);
  return { file, written };
}

/** `comp.toml` → `comp.built.toml`. */
function builtFileName(file: string): string {
  const extension = path.extname(file);
  return `${file.slice(0, file.length - extension.length)}.built${extension}`;
}

function artifactFor(
  document: CompositionDocument,
  groupId: string,
  artifacts: readonly GroupArtifactView[],
): string | undefined {
  const own = artifacts.find((entry) => entry.group === groupId);
  if (own) return own.artifact;
  for (const run of document.runs ?? []) {
    for (const runGroup of run.groups ?? []) {
      if (runGroup.group_id !== groupId) continue;
      const used = artifacts.find((entry) => entry.group === runGroup.id);
      if (used) return used.artifact;
    }
  }
  return undefined;
}

/**
 * A composition file and the plan directory it names (`--plan` wins over its `global.plan`), packed for
 * upload.
 */
export async function readCompositionWithPlan(
  file: string,
  plan: string | undefined,
): Promise<{ composition: CompositionFile; archive: Buffer }> {
  const composition = await readCompositionFile(file);
  const planName = plan ?? composition.document.global?.plan;
  if (typeof planName !== 'string')
    throw new Error(`${file} has no global.plan; name the plan there or with --plan`);
  // A plan the user typed (--plan) is where they stand; one the file names is where the file is.
  const planDir =
    plan === undefined
      ? locatePlan(planName, process.env, process.cwd(), path.dirname(path.resolve(file)))
      : locatePlan(planName);
  return { composition, archive: await packPlanDirectory(planDir) };
}

import { readFile, writeFile } from 'node:fs/promises';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import type { GroupArtifactView } from '../api/schemas.ts';

/** A composition file as the CLI needs it: its text (sent as is) and its parsed document. */
export interface CompositionFile {
  path: string;
  text: string;
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

/** Reads a composition, TOML or JSON (JSON when the first non-blank character is `{`, as the daemon decides). */
export async function readCompositionFile(file: string): Promise<CompositionFile> {
  const text = await readFile(file, 'utf8');
  const format = text.trimStart().startsWith('{') ? 'json' : 'toml';
  const document = (format === 'json' ? JSON.parse(text) : parseToml(text)) as CompositionDocument;
  return { path: file, text, format, document };
}

/**
 * Writes each group's artifact into the composition as `[groups.run] artifact = "…"`, so running it skips
 * the build. A [[groups]] entry gets the artifact built for it: under its own id, or under the id of a
 * run-group that uses it (`group_id`). The file is written anew from its parsed document, so TOML comments
 * and layout are not kept (JSON is written with two-space indentation). Returns the groups it wrote.
 */
export async function writeArtifacts(
  composition: CompositionFile,
  artifacts: readonly GroupArtifactView[],
): Promise<{ group: string; artifact: string }[]> {
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
  await writeFile(composition.path, text);
  return written;
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

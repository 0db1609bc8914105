import type { CompositionDocument } from './composition-file.ts';

/**
 * `run composition --ignore-artifacts` (the original's `-i`): the composition without the prebuilt artifacts
 * `build composition -w` wrote into it, so every group is built afresh. Sent as JSON, which the daemon reads
 * like TOML; the file itself is left as it is.
 */
export function withoutArtifacts(document: CompositionDocument): { text: string; removed: number } {
  const copy = structuredClone(document);
  let removed = 0;
  const strip = (groups: unknown): void => {
    if (!Array.isArray(groups)) return;
    for (const group of groups as { run?: Record<string, unknown> }[]) {
      if (group?.run !== undefined && 'artifact' in group.run) {
        delete group.run.artifact;
        removed += 1;
      }
    }
  };
  strip(copy.groups);
  for (const run of copy.runs ?? []) strip(run.groups);
  return { text: JSON.stringify(copy), removed };
}

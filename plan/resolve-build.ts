/**
 * What each [[groups]] entry is built from (`build.dependencies`, merged from `[global.build]` and
 * `[groups.build]`) or run from instead of a build (`run.artifact`), as the original Testground read them.
 */
import type { BuildDependency } from '../core/run.ts';
import type { Composition, CompositionBuild } from './composition.ts';
import type { Findings } from './findings.ts';

/**
 * Each group's dependency overrides: the global ones, with the group's own entries replacing a global
 * entry for the same module (as the original's `ApplyDefaults` did), sorted by module so that two groups
 * asking for the same packages share one build.
 */
export function resolveDependencies(composition: Composition, findings: Findings): BuildDependency[][] {
  const globalEntries = byModule(composition.global.build, 'global.build', findings);
  return composition.groups.map((group, index) => {
    const merged = new Map(globalEntries);
    for (const [module, dependency] of byModule(group.build, `groups[${index}].build`, findings))
      merged.set(module, dependency);
    return [...merged.values()].sort((a, b) => (a.module < b.module ? -1 : a.module > b.module ? 1 : 0));
  });
}

/** The prebuilt artifact a group runs from: its own `run.artifact`, else the global one (`""` is unset). */
export function resolveArtifacts(composition: Composition): (string | undefined)[] {
  const fallback = composition.global.run?.artifact;
  return composition.groups.map((group) => group.run?.artifact ?? fallback);
}

function byModule(
  build: CompositionBuild | undefined,
  path: string,
  findings: Findings,
): Map<string, BuildDependency> {
  const entries = new Map<string, BuildDependency>();
  const firstIndex = new Map<string, number>();
  (build?.dependencies ?? []).forEach((entry, index) => {
    const first = firstIndex.get(entry.module);
    if (first !== undefined) {
      findings.warn(
        `${path}.dependencies[${index}].module`,
        `module ${JSON.stringify(entry.module)} is listed twice (also ${path}.dependencies[${first}]); ` +
          'the later entry is used, as in the original',
      );
    }
    firstIndex.set(entry.module, index);
    entries.set(entry.module, {
      module: entry.module,
      ...(entry.version === undefined ? {} : { version: entry.version }),
      ...(entry.target === undefined ? {} : { target: entry.target }),
    });
  });
  return entries;
}

/**
 * Settings of the original Testground's compositions that are accepted but have no effect here. Each one
 * is a warning naming the key, its value and why, so a composition written for the original runs without
 * silently losing what its author asked for.
 */
import type { Composition } from './composition.ts';
import type { Findings } from './findings.ts';
import { describeValue } from './problems.ts';

export function warnIgnoredSettings(composition: Composition, findings: Findings): void {
  const { global, groups } = composition;

  const builds = global.concurrent_builds;
  // 0 meant "no limit" and 1 "one at a time"; builds here are one at a time anyway.
  if (builds !== undefined && builds !== 0 && builds !== 1) {
    findings.warn(
      'global.concurrent_builds',
      `concurrent_builds = ${builds} has no effect: a task builds each distinct build once (groups with the ` +
        'same builder, build config and dependencies share it), one build after another',
    );
  }

  warnSelectors(global.build?.selectors, 'global.build.selectors', findings);
  warnProfiles(global.run?.profiles, 'global.run.profiles', findings);
  groups.forEach((group, index) => {
    warnSelectors(group.build?.selectors, `groups[${index}].build.selectors`, findings);
    warnProfiles(group.run?.profiles, `groups[${index}].run.profiles`, findings);
    const runConfig = group.run_config;
    if (runConfig !== undefined && Object.keys(runConfig).length > 0) {
      findings.warn(
        `groups[${index}].run_config`,
        `run_config in a group has no effect (keys: ${Object.keys(runConfig).join(', ')}): the runner is ` +
          'configured once for the whole run, in [global.run_config]; the original ignored it here too',
      );
    }
  });
  (composition.runs ?? []).forEach((run, runIndex) => {
    run.groups.forEach((runGroup, index) =>
      warnProfiles(runGroup.profiles, `runs[${runIndex}].groups[${index}].profiles`, findings),
    );
  });
}

function warnSelectors(selectors: readonly string[] | undefined, path: string, findings: Findings): void {
  if (selectors === undefined || selectors.length === 0) return;
  findings.warn(
    path,
    `selectors ${selectors.map((s) => JSON.stringify(s)).join(', ')} have no effect: the original passed them ` +
      'to its Go builders as build tags, and the builders here (Node bundles, Dockerfiles) have none; ' +
      'choose code paths with test params instead',
  );
}

function warnProfiles(
  profiles: Readonly<Record<string, string>> | undefined,
  path: string,
  findings: Findings,
): void {
  if (profiles === undefined || Object.keys(profiles).length === 0) return;
  const listed = Object.entries(profiles)
    .map(([kind, every]) => `${kind} = ${describeValue(every)}`)
    .join(', ');
  findings.warn(
    path,
    `profiles (${listed}) have no effect: the original's Go SDK captured pprof profiles; this SDK captures none`,
  );
}

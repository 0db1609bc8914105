import { ApiError } from './api-client.ts';
import type { ProblemDetailView } from '../api/schemas.ts';

/**
 * `run single` builds a composition the user never saw, so the daemon's answers name composition paths
 * (`global.total_instances`); these are the flags the user typed instead. A path with no flag behind it is
 * left as it is.
 */
export function singleRunFlagFor(path: string, options: { timeoutFlag: boolean }): string {
  const exact: Record<string, string> = {
    'global.plan': '--plan',
    'global.case': '--testcase',
    'global.total_instances': '--instances',
    'groups[0].instances.count': '--instances',
    'groups[0].instances': '--instances',
    'global.builder': '--builder',
    'global.runner': '--runner',
    'groups[0].run.artifact': '--use-build',
  };
  if (exact[path] !== undefined) return exact[path];
  if (path === 'global.run_config.timeout' && options.timeoutFlag) return '--timeout';
  const keyed: [RegExp, string][] = [
    [/^global\.build_config\.(.+)$/, '--build-config'],
    [/^global\.run_config\.(.+)$/, '--run-config'],
    [/^(?:global|groups\[0\])\.run\.test_params\.(.+)$/, '--test-param'],
  ];
  for (const [pattern, flag] of keyed) {
    const key = pattern.exec(path)?.[1];
    if (key !== undefined) return `${flag} ${key}=…`;
  }
  return path;
}

/**
 * The daemon's refusal of a `run single` composition, said in flags. Two problems that land on one flag
 * (`-i 0` is both "at least 1" for the total and "count = 0 means unset" for the group) keep the first: the
 * second speaks of a composition the user did not write.
 */
export function inSingleRunTerms(error: unknown, options: { timeoutFlag: boolean }): unknown {
  if (!(error instanceof ApiError) || error.details.length === 0) return error;
  const seen = new Set<string>();
  const details: ProblemDetailView[] = [];
  for (const detail of error.details) {
    const flag = singleRunFlagFor(detail.path, options);
    if (flag !== detail.path && seen.has(flag)) continue;
    seen.add(flag);
    details.push({ ...detail, path: flag });
  }
  const count = details.length === 1 ? '1 problem' : `${details.length} problems`;
  return new ApiError(error.status, error.code, `the run has ${count}`, details);
}

/** A warning's path in the same terms. */
export function inSingleRunWarning<T extends { path: string }>(
  warning: T,
  options: { timeoutFlag: boolean },
): T {
  return { ...warning, path: singleRunFlagFor(warning.path, options) };
}

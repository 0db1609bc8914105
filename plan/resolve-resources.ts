import type { ResolvedGroup } from '../core/run.ts';
import { ValidationError } from '../core/errors.ts';
import type { CompositionResources } from './composition.ts';
import type { Findings } from './findings.ts';
import { describeValue } from './problems.ts';
import { parseByteSize, parseCpus } from './units.ts';

/**
 * A group's or run-group's `resources` in bytes and CPUs. Memory takes byte sizes as Kubernetes writes
 * them too (`512Mi`, `1Gi`, `500M`), cpu takes millicores (`"1500m"`); `""` for either means unset.
 *
 * @param path the `resources` table, like `groups[0].resources`.
 */
export function resolveResources(
  resources: CompositionResources | undefined,
  path: string,
  findings: Findings,
): ResolvedGroup['resources'] {
  const resolved: ResolvedGroup['resources'] = {};
  const memory = resources?.memory;
  const cpu = resources?.cpu;
  // The schema has checked both for parsed compositions; hand-built ones are checked here.
  if (memory !== undefined && memory !== '') {
    try {
      resolved.memoryBytes = parseByteSize(memory, `${path}.memory`);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      for (const detail of err.details) findings.problem(detail.path, detail.message);
    }
  }
  if (cpu !== undefined && cpu !== '') {
    const cpus = parseCpus(cpu);
    if (cpus === undefined)
      findings.problem(`${path}.cpu`, `expected a positive number of CPUs, got ${describeValue(cpu)}`);
    else resolved.cpus = cpus;
  }
  return resolved;
}

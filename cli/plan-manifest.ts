import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import type { ParamDescription, PlanDescription } from './json-views.ts';

type Table = Record<string, unknown>;

/**
 * A plan's manifest as `describe` and `plan list` show it. This reads leniently, for people: the daemon
 * checks the manifest strictly when a run is submitted, and says there what is wrong.
 */
export async function readPlanDescription(planDir: string): Promise<PlanDescription> {
  const file = path.join(planDir, 'manifest.toml');
  let manifest: Table;
  try {
    manifest = parseToml(await readFile(file, 'utf8')) as Table;
  } catch (error) {
    throw new Error(`${file} is not valid TOML: ${(error as Error).message}`);
  }
  const defaults = table(manifest.defaults);
  return {
    name: typeof manifest.name === 'string' ? manifest.name : path.basename(planDir),
    dir: planDir,
    defaults: { builder: text(defaults.builder), runner: text(defaults.runner) },
    builders: enabled(manifest.builders),
    runners: enabled(manifest.runners),
    testcases: (Array.isArray(manifest.testcases) ? manifest.testcases : []).map((entry) => {
      const testCase = table(entry);
      const instances = table(testCase.instances);
      const min = typeof instances.min === 'number' ? instances.min : 1;
      const max = typeof instances.max === 'number' ? instances.max : min;
      return {
        name: text(testCase.name) ?? '(unnamed)',
        instances: { min, max, default: typeof instances.default === 'number' ? instances.default : min },
        params: Object.entries(table(testCase.params)).map(([name, spec]) =>
          describeParam(name, table(spec)),
        ),
      };
    }),
  };
}

function describeParam(name: string, spec: Table): ParamDescription {
  const value = spec.default;
  return {
    name,
    type: text(spec.type) ?? 'string',
    default:
      typeof value === 'string' ||
      typeof value === 'number' ||
      typeof value === 'boolean' ||
      Array.isArray(value)
        ? value
        : null,
    unit: text(spec.unit),
    desc: text(spec.desc),
  };
}

/** Builders or runners the manifest lists; those with `enabled = false` are left out. */
function enabled(value: unknown): string[] {
  return Object.entries(table(value))
    .filter(([, config]) => table(config).enabled !== false)
    .map(([id]) => id);
}

function table(value: unknown): Table {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Table) : {};
}

function text(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

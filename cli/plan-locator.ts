import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';

/**
 * Finds a plan directory: a path to one, or a name looked up in `$TESTGROUND_HOME/plans/<name>` then
 * `./plans/<name>` (where a checkout of this repository keeps its example plans).
 *
 * A composition's `global.plan` is found from the composition file, not from wherever the user stands:
 * given `near` (the file's directory), a path is taken relative to it first, and a name is also looked up
 * in the `plans/<name>` of the file's directory and of each directory above it, and as the directory
 * above that is named after it (a plan's own `_compositions/` folder).
 */
export function locatePlan(
  nameOrPath: string,
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
  near?: string,
): string {
  const home = env.TESTGROUND_HOME ?? path.join(os.homedir(), '.testground');
  const looksLikePath = nameOrPath.includes('/') || nameOrPath.startsWith('.');
  const candidates = looksLikePath
    ? [...(near === undefined ? [] : [path.resolve(near, nameOrPath)]), path.resolve(cwd, nameOrPath)]
    : [
        path.join(home, 'plans', nameOrPath),
        ...(near === undefined ? [] : nearbyPlanDirs(path.resolve(near), nameOrPath)),
        path.join(cwd, 'plans', nameOrPath),
        path.resolve(cwd, nameOrPath),
      ];
  const unique = [...new Set(candidates)];
  const found = unique.find(
    (candidate) => existsSync(path.join(candidate, 'manifest.toml')) && statSync(candidate).isDirectory(),
  );
  if (found !== undefined) return found;
  throw new Error(
    `plan ${JSON.stringify(nameOrPath)} not found: looked for manifest.toml in ${unique.join(', ')}`,
  );
}

/** `<dir>/plans/<name>` for the directory and each above it, and each of them named `<name>` itself. */
function nearbyPlanDirs(dir: string, name: string): string[] {
  const found: string[] = [];
  for (let current = dir; ; current = path.dirname(current)) {
    found.push(path.join(current, 'plans', name));
    if (path.basename(current) === name) found.push(current);
    if (path.dirname(current) === current) return found;
  }
}

/** The plan's name as its manifest declares it; compositions must use that name. */
export async function readPlanName(planDir: string): Promise<string> {
  const manifest = parseToml(await readFile(path.join(planDir, 'manifest.toml'), 'utf8')) as {
    name?: unknown;
  };
  if (typeof manifest.name !== 'string' || manifest.name === '') {
    throw new Error(`${path.join(planDir, 'manifest.toml')} has no "name"`);
  }
  return manifest.name;
}

/** The plan's test cases with their minimum instance counts, as its manifest declares them. */
export async function readTestCases(planDir: string): Promise<{ name: string; minInstances: number }[]> {
  const manifest = parseToml(await readFile(path.join(planDir, 'manifest.toml'), 'utf8')) as {
    testcases?: { name?: unknown; instances?: { min?: unknown } }[];
  };
  return (manifest.testcases ?? []).flatMap((testCase) =>
    typeof testCase.name === 'string'
      ? [
          {
            name: testCase.name,
            minInstances:
              typeof testCase.instances?.min === 'number' ? Math.max(1, testCase.instances.min) : 1,
          },
        ]
      : [],
  );
}

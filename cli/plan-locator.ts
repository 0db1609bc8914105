import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';

/**
 * Finds a plan directory: a path to one, or a name looked up in `$TESTGROUND_HOME/plans/<name>` then
 * `./plans/<name>` (where a checkout of this repository keeps its example plans).
 */
export function locatePlan(
  nameOrPath: string,
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): string {
  const home = env.TESTGROUND_HOME ?? path.join(os.homedir(), '.testground');
  const candidates = [
    path.resolve(cwd, nameOrPath),
    path.join(home, 'plans', nameOrPath),
    path.join(cwd, 'plans', nameOrPath),
  ];
  const looksLikePath = nameOrPath.includes('/') || nameOrPath.startsWith('.');
  for (const candidate of looksLikePath
    ? candidates.slice(0, 1)
    : candidates.slice(1).concat(candidates.slice(0, 1))) {
    if (existsSync(path.join(candidate, 'manifest.toml')) && statSync(candidate).isDirectory())
      return candidate;
  }
  throw new Error(
    `plan ${JSON.stringify(nameOrPath)} not found: looked for manifest.toml in ${candidates.join(', ')}`,
  );
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

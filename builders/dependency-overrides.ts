/**
 * `build.dependencies` for Node plans: each `{ module, version | target }` makes npm install that package
 * at another version, or from another source, wherever it sits in the plan's dependency tree — what the
 * original's Go builders did with `go mod edit -replace`.
 *
 * The plan's (copied) package.json gets an npm `overrides` entry per module, which reaches every copy of
 * the package in the tree, transitive ones included. npm refuses an override of a direct dependency whose
 * spec differs from the dependency's own, so a direct dependency is rewritten to the same spec as well.
 */
import { readFile, realpath, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BuildDependency } from '../core/run.ts';
import { BuildError } from '../core/errors.ts';
import type { TaskLog } from '../core/task-log.ts';

/** The package.json fields a direct dependency can be declared in. */
const dependencyFields = ['dependencies', 'optionalDependencies', 'devDependencies'] as const;
// What npm accepts as a package name (scoped or not); anything else in `target` is taken as a full spec.
const packageName = /^(?:@[a-z0-9-~][a-z0-9-._~]*\/)?[a-z0-9-~][a-z0-9-._~]*$/;

export interface AppliedOverride {
  module: string;
  /** What package.json now asks for, in npm's terms. */
  spec: string;
  /** The spec the plan's package.json declared for it as a direct dependency, if it did. */
  declared?: string;
}

/**
 * The npm spec a dependency entry stands for: `version` alone is a version or range; `target` alone is
 * anything npm accepts as a version (`npm:other@1.2.3`, a tarball URL, `file:vendor/x`); a `target` that
 * is a package name with a `version` is that package at that version (`npm:<target>@<version>`).
 *
 * @throws BuildError naming `dependencies[index]` when the entry cannot be read one of these ways.
 */
export function overrideSpec(dependency: BuildDependency, index: number): string | undefined {
  const field = `dependencies[${index}]`;
  const version = dependency.version?.trim() || undefined;
  const target = dependency.target?.trim() || undefined;
  if (target === undefined) return version;
  if (version === undefined) return target;
  if (packageName.test(target)) return `npm:${target}@${version}`;
  throw new BuildError(
    `${field}: target ${JSON.stringify(target)} is a full npm spec and version ${JSON.stringify(version)} would be ignored; set the version inside the target, or make the target a package name`,
    [{ path: field, message: 'target and version together need a package name as target' }],
  );
}

/**
 * Rewrites `<dir>/package.json` (which must exist) so that npm installs every override. Returns the
 * overrides applied, in order (a later entry for the same module wins). Entries that name neither a
 * version nor a target are warnings in the build log.
 *
 * @throws BuildError for an entry that cannot be applied (see {@link overrideSpec}; a `file:` target
 *   outside the plan).
 */
export async function applyDependencyOverrides(
  dir: string,
  dependencies: readonly BuildDependency[],
  log: TaskLog,
  builderId: string,
): Promise<AppliedOverride[]> {
  if (dependencies.length === 0) return [];
  const file = path.join(dir, 'package.json');
  let manifest: Record<string, unknown>;
  try {
    manifest = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    throw new BuildError(`package.json of the plan is not valid JSON: ${(error as Error).message}`);
  }
  const applied = new Map<string, AppliedOverride>();
  for (const [index, dependency] of dependencies.entries()) {
    const spec = overrideSpec(dependency, index);
    if (spec === undefined) {
      log.warn(
        `${builderId}: build dependency ${dependency.module} ignored: it names neither a version nor a target`,
      );
      continue;
    }
    await checkFileTarget(dir, spec, index);
    let declared: string | undefined;
    for (const field of dependencyFields) {
      const table = manifest[field];
      if (!isTable(table) || typeof table[dependency.module] !== 'string') continue;
      declared ??= table[dependency.module] as string;
      table[dependency.module] = spec;
    }
    // A plan's own override of the same module would fight ours; ours is what the composition asked for.
    manifest.overrides = {
      ...(isTable(manifest.overrides) ? manifest.overrides : {}),
      [dependency.module]: spec,
    };
    applied.set(dependency.module, { module: dependency.module, spec, ...(declared ? { declared } : {}) });
  }
  await writeFile(file, `${JSON.stringify(manifest, null, 2)}\n`);
  return [...applied.values()];
}

/**
 * Names in the build log what each override installed (version and place in `node_modules`), read from
 * npm's own record of the tree it made; an override that matched no installed package is a warning, as
 * the plan does not depend on that module at all.
 */
export async function reportDependencyOverrides(
  dir: string,
  applied: readonly AppliedOverride[],
  log: TaskLog,
  builderId: string,
): Promise<void> {
  if (applied.length === 0) return;
  const packages = await installedPackages(dir);
  for (const override of applied) {
    const declared = override.declared === undefined ? '' : ` (package.json had ${override.declared})`;
    const copies = Object.entries(packages).filter(
      ([location]) =>
        location === `node_modules/${override.module}` ||
        location.endsWith(`/node_modules/${override.module}`),
    );
    if (copies.length === 0) {
      log.warn(
        `${builderId}: build dependency ${override.module} → ${override.spec} changed nothing: the plan does not depend on ${override.module} (npm installed no package of that name among its production dependencies, direct or transitive)`,
      );
      continue;
    }
    const installed = copies.map(([location, entry]) => {
      // A `file:` directory is installed as a link; its version is on the entry of the directory itself.
      const real = entry.link && entry.resolved ? packages[entry.resolved] : entry;
      return `${real?.name ?? override.module}@${real?.version ?? '?'} at ${location}`;
    });
    log.info(
      `${builderId}: build dependency override ${override.module} → ${override.spec}${declared}: installed ${installed.join(', ')}`,
    );
  }
}

interface LockEntry {
  name?: string;
  version?: string;
  resolved?: string;
  link?: boolean;
}

/** npm's hidden lockfile: the tree `npm install` actually left in node_modules. */
async function installedPackages(dir: string): Promise<Record<string, LockEntry>> {
  const file = path.join(dir, 'node_modules', '.package-lock.json');
  try {
    const lock = JSON.parse(await readFile(file, 'utf8')) as { packages?: Record<string, LockEntry> };
    return lock.packages ?? {};
  } catch {
    return {};
  }
}

/** A `file:` target must stay inside the plan: the plan is the only part of the host a build may read. */
async function checkFileTarget(dir: string, spec: string, index: number): Promise<void> {
  if (!spec.startsWith('file:')) return;
  const field = `dependencies[${index}].target`;
  const relative = spec.slice('file:'.length);
  const root = await realpath(dir);
  const resolved = path.resolve(root, relative);
  const real = await realpath(resolved).catch(() => resolved);
  if (path.isAbsolute(relative) || !real.startsWith(root + path.sep)) {
    throw new BuildError(
      `${field}: ${JSON.stringify(spec)} is outside the plan directory; name a path inside the plan, relative to its package.json`,
      [{ path: field, message: 'file: target outside the plan directory' }],
    );
  }
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

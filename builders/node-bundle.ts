/**
 * The bundling every Node builder shares: a plan (its npm dependencies installed) → one ES module for
 * Node 20 with the plan's own code and our SDK (`testground-sdk`) in it, beside the plan's production
 * `node_modules`; and the hash of what a bundle is made of, so a cached bundle is reused exactly while
 * none of its inputs changed.
 *
 * The rule that decides what is bundled: **code we can see whole is bundled, packages npm installed are
 * not.** The plan's own files and our SDK (with what it imports from our tree) go into `bundle.mjs`; every
 * bare import of the plan's own code that names a package in the plan's `node_modules` stays an import,
 * and Node loads that package from `node_modules` beside the bundle at run time, exactly as `npm start`
 * would. Bundling an npm package is faithful only when nothing in it depends on where its files are
 * (`__filename`, `__dirname`, `bindings`, `node-gyp-build`, `.node` files, `require(variable)`, files read
 * at run time), and no rule short of running it tells which packages do; Node's own loader is faithful
 * for all of them.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { build as esbuild, type BuildOptions, type Message, type Plugin } from 'esbuild';
import type { BuildDependency } from '../core/run.ts';
import { BuildError } from '../core/errors.ts';
import type { TaskLog } from '../core/task-log.ts';
import { applyDependencyOverrides, reportDependencyOverrides } from './dependency-overrides.ts';
import { missingPackageHint, packageNameOf } from './missing-package.ts';
import type { NpmSandbox } from './npm-sandbox.ts';
import type { PlanTypeChecker } from './plan-typecheck.ts';

/**
 * What every Node bundle we make shares (plan bundles, the sync service): one ES module file for Node 20.
 * Bundled CommonJS code gets what Node gives every CommonJS module: `require` (resolving from the bundle's
 * directory), `__filename` and `__dirname` (the bundle's); a module that declares its own keeps it.
 */
export const nodeBundleOptions = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  // The oldest Node this project supports (package.json engines): esbuild keeps what it has, import
  // attributes (`with { type: 'json' }`) included, which a plain `node20` target would strip.
  target: 'node20.19',
  logLevel: 'silent',
  // ws loads these native speed-ups optionally, inside a try/catch.
  external: ['bufferutil', 'utf-8-validate'],
  // `define` replaces only free identifiers: a module's own `__dirname` variable is left alone.
  define: { __filename: '__tgFilename', __dirname: '__tgDirname' },
  banner: {
    js: [
      "import { createRequire as __tgCreateRequire } from 'node:module';",
      "import { fileURLToPath as __tgFileURLToPath } from 'node:url';",
      "import { dirname as __tgDirnameOf } from 'node:path';",
      'const require = __tgCreateRequire(import.meta.url);',
      'const __tgFilename = __tgFileURLToPath(import.meta.url);',
      'const __tgDirname = __tgDirnameOf(__tgFilename);',
    ].join(' '),
  },
} as const satisfies BuildOptions;

/** The import name plans use for our SDK; it is always bundled, whatever the plan's node_modules holds. */
export const sdkImportName = 'testground-sdk';
const entryCandidates = ['index.ts', 'index.js', 'index.mjs', 'index.cjs', 'src/index.ts', 'src/index.js'];
/** The file name of a plan bundle, in the exec:node cache and in docker:node images. */
export const bundleName = 'bundle.mjs';

/**
 * A digest of every file esbuild reads when it bundles an entry (its metafile's inputs: our SDK, the
 * contract it imports, the npm packages it pulls in), path and bytes. A plan's bundle depends on these as
 * much as on the plan itself, so they are part of its cache key: hashing only the `sdk/` folder would miss a
 * change in `core/contract/` and reuse a stale bundle.
 *
 * Bundling to find the inputs costs a few hundred milliseconds, so the list is kept and only the files are
 * read again on each call: the list can change only when an import changes, and that changes the bytes of a
 * file already on it, which sends this back to esbuild for the new list.
 */
export class BundleInputs {
  private readonly entry: string;
  private known: { files: string[]; hash: string } | undefined;

  constructor(entry: string) {
    this.entry = entry;
  }

  async hash(): Promise<string> {
    if (this.known !== undefined && (await hashFiles(this.known.files)) === this.known.hash) {
      return this.known.hash;
    }
    const result = await esbuild({
      ...nodeBundleOptions,
      entryPoints: [this.entry],
      write: false,
      metafile: true,
      absWorkingDir: path.dirname(this.entry),
    });
    const files = Object.keys(result.metafile.inputs)
      .map((input) => path.resolve(path.dirname(this.entry), input))
      .sort();
    this.known = { files, hash: await hashFiles(files) };
    return this.known.hash;
  }
}

async function hashFiles(files: readonly string[]): Promise<string> {
  const hash = createHash('sha256');
  for (const file of files) {
    hash.update(`input\0${file}\0`);
    // A file that went away is a change too; the next call bundles again and finds the new list.
    hash.update(await readFile(file).catch(() => Buffer.from('\0missing\0')));
  }
  return hash.digest('hex');
}

export interface BundlePlanInput {
  planDir: string;
  /**
   * Receives a copy of the plan, its production `node_modules` and `bundle.mjs`: the whole directory is
   * what runs (the bundle loads npm packages from beside it). Need not exist.
   */
  workDir: string;
  buildConfig: Record<string, unknown>;
  /** Packages npm installs at another version or from another source (`build.dependencies`). */
  dependencies?: readonly BuildDependency[];
  /** The SDK's entry file; plans import it as `testground-sdk`. */
  sdkEntry: string;
  log: TaskLog;
  signal: AbortSignal;
  /** Names the builder in log lines and errors, e.g. `exec:node`. */
  builderId: string;
  /** Runs `npm install` as plan code: as the plan user, without the daemon's environment. */
  npm: NpmSandbox;
  /**
   * Puts the plan (without its `node_modules`) into `workDir`; a plain copy unless given (exec:node links
   * its files to the content store instead, see content-store.ts).
   */
  copyPlan?: (planDir: string, workDir: string) => Promise<void>;
  /** Type-checks a TypeScript plan before it is bundled; absent when `build_config.typecheck = false`. */
  typecheck?: PlanTypeChecker;
}

/**
 * The bundling step every Node builder shares: copies the plan into `workDir`, applies the dependency
 * overrides to the copy's package.json, installs its production npm dependencies there, and bundles its
 * entry into `bundle.mjs` by the rule in this module's comment. Returns the bundle's path; `node_modules`
 * stays beside it. Failures are {@link BuildError}s.
 */
export async function bundlePlan(input: BundlePlanInput): Promise<string> {
  const { workDir, builderId, log } = input;
  if (input.copyPlan) await input.copyPlan(input.planDir, workDir);
  else
    await cp(input.planDir, workDir, {
      recursive: true,
      filter: (source) => !source.split(path.sep).includes('node_modules'),
    });
  // Read (and checked) before the overrides rewrite it.
  const installs = await hasDependencies(workDir);
  if (!installs) {
    for (const dependency of input.dependencies ?? []) {
      log.warn(
        `${builderId}: build dependency ${dependency.module} ignored: the plan declares no npm dependencies, so nothing can depend on it`,
      );
    }
  } else {
    const overrides = await applyDependencyOverrides(workDir, input.dependencies ?? [], log, builderId);
    // Beside the work directory, not in it: nothing of the install's home ends up in the artifact.
    const homeDir = `${workDir}.npm-home`;
    try {
      await input.npm.install({
        dir: workDir,
        homeDir,
        scripts: input.buildConfig.npm_scripts === true,
        log,
        signal: input.signal,
        builderId,
      });
    } finally {
      await rm(homeDir, { recursive: true, force: true });
    }
    await reportDependencyOverrides(workDir, overrides, log, builderId);
  }
  const entry = await findEntry(workDir, input.buildConfig);
  const { typecheck } = input;
  // The check and the bundling read the same files and need nothing of each other: they run side by side
  // (tsc in a process of its own, esbuild on its threads), and the bundle is written only once both
  // succeeded, so the check never sees a half-written bundle among the plan's files.
  const checked = (async () => {
    if (typecheck === undefined) return;
    await input.npm.planUser.reach(workDir);
    await typecheck.check({
      dir: workDir,
      log,
      builderId,
      planUser: input.npm.planUser,
      signal: input.signal,
    });
  })();
  log.info(`${builderId}: bundling ${path.relative(workDir, entry)}`);
  const bundlePath = path.join(workDir, bundleName);
  // esbuild names importers by their real path; the plugin compares them with this.
  const bundled = realpath(workDir).then((planRoot) =>
    bundle(entry, bundlePath, input.sdkEntry, planRoot, builderId),
  );
  const [check, made] = await Promise.allSettled([checked, bundled]);
  // A plan that does not type-check usually does not bundle either; tsc says more about why.
  if (check.status === 'rejected') throw check.reason;
  if (made.status === 'rejected') throw made.reason;
  const { external, contents, sourceMap } = made.value;
  await writeFile(`${bundlePath}.map`, sourceMap);
  await writeFile(bundlePath, contents);
  if (external.length > 0) {
    log.info(`${builderId}: loaded from node_modules beside the bundle at run time: ${external.join(', ')}`);
  }
  // Instances running as the plan user read all of it, and change none of it.
  await input.npm.planUser.takeBackTree(workDir).catch((error: Error) => {
    throw new BuildError(
      `${builderId}: could not make the bundle readable to the plan user: ${error.message}`,
    );
  });
  return bundlePath;
}

async function hasDependencies(dir: string): Promise<boolean> {
  const manifest = await readPackageJson(dir);
  return ['dependencies', 'optionalDependencies'].some((field) => {
    const table = manifest?.[field];
    return typeof table === 'object' && table !== null && Object.keys(table).length > 0;
  });
}

async function readPackageJson(dir: string): Promise<Record<string, unknown> | undefined> {
  const file = path.join(dir, 'package.json');
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    throw new BuildError(`package.json of the plan is not valid JSON: ${(error as Error).message}`);
  }
}

async function findEntry(dir: string, buildConfig: Record<string, unknown>): Promise<string> {
  const configured = buildConfig.entry;
  const main = (await readPackageJson(dir))?.main;
  const candidates = [
    ...(typeof configured === 'string' ? [configured] : []),
    ...(typeof main === 'string' ? [main] : []),
    ...entryCandidates,
  ];
  for (const candidate of candidates) {
    const resolved = path.resolve(dir, candidate);
    if (resolved.startsWith(dir + path.sep) && existsSync(resolved)) return resolved;
  }
  throw new BuildError(
    `no entry point found in the plan: looked for ${candidates.join(', ')}; set "main" in package.json or build_config.entry`,
  );
}

/**
 * Bundles `entry` as `outfile` would be, in memory; returns its bytes, its source map (for `outfile.map`,
 * which the bundle names) and the packages left to Node's loader, sorted.
 */
async function bundle(
  entry: string,
  outfile: string,
  sdkEntry: string,
  planRoot: string,
  builderId: string,
): Promise<{ external: string[]; contents: Uint8Array; sourceMap: Uint8Array }> {
  const external = new Set<string>();
  let contents: Uint8Array | undefined;
  let sourceMap: Uint8Array | undefined;
  try {
    const result = await esbuild({
      ...nodeBundleOptions,
      // Locations in errors are relative to this: the plan's own paths (`index.ts:3:7`), not the daemon's cache.
      absWorkingDir: planRoot,
      entryPoints: [entry],
      outfile,
      write: false,
      // Beside the bundle, not inside it: an inline map (~500 KB of base64 for a plan with our SDK) cost
      // every instance ~50 ms of CPU at start on the reference machine, Node reading a map it never used.
      // The bundle ends with a comment naming `bundle.mjs.map`; only a stack's mapping reads it.
      sourcemap: 'linked',
      alias: { [sdkImportName]: sdkEntry },
      plugins: [
        installedPackagesStayExternal(planRoot, external),
        confinedToPlan(planRoot, await realpath(sdkEntry)),
      ],
    });
    for (const file of result.outputFiles) {
      if (file.path.endsWith('.map')) sourceMap = file.contents;
      else contents = file.contents;
    }
  } catch (error) {
    const errors = (error as { errors?: Message[] }).errors ?? [];
    const described = errors.map((message) => {
      const where = message.location
        ? `${message.location.file}:${message.location.line}:${message.location.column}: `
        : '';
      return `${where}${message.text}${missingDependencyHint(message)}`;
    });
    throw new BuildError(
      `${builderId}: bundling failed: ${described.join('; ') || (error as Error).message}`,
    );
  }
  if (contents === undefined || sourceMap === undefined) {
    throw new BuildError(`${builderId}: bundling produced no bundle or no source map`);
  }
  return { external: [...external].sort(), contents, sourceMap };
}

/**
 * Leaves every import of the plan's own code that names a package installed in its `node_modules` to
 * Node's loader at run time (the rule in this module's comment). Imports from our SDK are not the plan's:
 * the SDK is bundled with the packages it was written against, even when the plan installed another
 * version of one of them.
 */
function installedPackagesStayExternal(planRoot: string, external: Set<string>): Plugin {
  const nodeModules = path.join(planRoot, 'node_modules');
  return {
    name: 'testground-installed-packages',
    setup(build) {
      // Bare specifiers only: relative and absolute paths are the plan's own files.
      build.onResolve({ filter: /^[^./]/ }, (args) => {
        if (!args.importer.startsWith(planRoot + path.sep)) return undefined;
        if (args.importer.startsWith(nodeModules + path.sep)) return undefined;
        const name = packageNameOf(args.path);
        if (name === undefined || name === sdkImportName) return undefined;
        // A link (a `file:` dependency) counts as installed too: npm put it there.
        if (!existsSync(path.join(nodeModules, name))) return undefined;
        external.add(name);
        return { path: args.path, external: true };
      });
    },
  };
}

const confinementCheck = Symbol('confinement check');

/**
 * Refuses every import of the plan's code that resolves outside the plan directory (`/etc/hostname`,
 * `../../secret`, a link pointing out, a package found in a `node_modules` above the plan): a bundle holds
 * the plan's own files, its npm dependencies and our SDK, never a file of the daemon's host. esbuild reports
 * the error at the import, and the file is never read.
 */
function confinedToPlan(planRoot: string, sdkEntry: string): Plugin {
  return {
    name: 'testground-confined-to-plan',
    setup(build) {
      build.onResolve({ filter: /.*/ }, async (args) => {
        if (args.pluginData === confinementCheck || args.kind === 'entry-point') return undefined;
        // The SDK's own imports (its files and the packages it was written against) are ours.
        if (!isWithin(args.importer, planRoot)) return undefined;
        if (args.path === sdkImportName || args.path.startsWith(`${sdkImportName}/`)) return undefined;
        const resolved = await build.resolve(args.path, {
          kind: args.kind,
          importer: args.importer,
          resolveDir: args.resolveDir,
          namespace: args.namespace,
          with: args.with,
          pluginData: confinementCheck,
        });
        if (resolved.errors.length > 0 || resolved.external || resolved.namespace !== 'file')
          return undefined;
        if (resolved.path === '' || resolved.path === sdkEntry || isWithin(resolved.path, planRoot))
          return undefined;
        return {
          errors: [
            {
              text:
                `${JSON.stringify(args.path)} resolves to ${resolved.path}, outside the plan directory; a plan may ` +
                'bundle only its own files, its npm dependencies and testground-sdk',
            },
          ],
        };
      });
    },
  };
}

/** The hint for a bare import esbuild could not resolve from the plan's own code (not the SDK's, not a package's). */
function missingDependencyHint(message: Message): string {
  const specifier = /^Could not resolve "([^"]+)"$/.exec(message.text)?.[1];
  if (specifier === undefined || message.location === null) return '';
  if (message.location.file.startsWith('..') || message.location.file.split('/').includes('node_modules'))
    return '';
  return missingPackageHint(specifier);
}

function isWithin(file: string, dir: string): boolean {
  return file === dir || file.startsWith(dir + path.sep);
}

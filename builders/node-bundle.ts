/**
 * The bundling every Node builder shares: a plan (its npm dependencies installed) → one self-contained ES
 * module file for Node 20, with `testground-sdk` aliased to our SDK; and the hash of what a bundle is made
 * of, so a cached bundle is reused exactly while none of its inputs changed.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { build as esbuild, type BuildOptions, type Message } from 'esbuild';
import { BuildError } from '../core/errors.ts';
import type { TaskLog } from '../core/task-log.ts';

/**
 * What every self-contained Node bundle we make shares (plan bundles, the sync service): one ES module
 * file for Node 20 that needs nothing beside it.
 */
export const nodeBundleOptions = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'silent',
  // ws loads these native speed-ups optionally, inside a try/catch.
  external: ['bufferutil', 'utf-8-validate'],
  // CommonJS dependencies (the official SDK is one) call require(); ES module output needs one.
  banner: {
    js: "import { createRequire as __tgCreateRequire } from 'node:module'; const require = __tgCreateRequire(import.meta.url);",
  },
} as const satisfies BuildOptions;

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
  /** Receives a copy of the plan (without `node_modules`) and `bundle.mjs`; need not exist. */
  workDir: string;
  buildConfig: Record<string, unknown>;
  /** The SDK's entry file; plans import it as `testground-sdk`. */
  sdkEntry: string;
  log: TaskLog;
  signal: AbortSignal;
  /** Names the builder in log lines and errors, e.g. `exec:node`. */
  builderId: string;
}

/**
 * The bundling step every Node builder shares: copies the plan into `workDir`, installs its npm
 * dependencies, bundles its entry into one self-contained ES module (`testground-sdk` aliased to our SDK)
 * and drops `node_modules` again. Returns the bundle's path; failures are {@link BuildError}s.
 */
export async function bundlePlan(input: BundlePlanInput): Promise<string> {
  const { workDir } = input;
  await cp(input.planDir, workDir, {
    recursive: true,
    filter: (source) => !source.split(path.sep).includes('node_modules'),
  });
  if (await hasDependencies(workDir)) await npmInstall(workDir, input.log, input.signal, input.builderId);
  const entry = await findEntry(workDir, input.buildConfig);
  input.log.info(`${input.builderId}: bundling ${path.relative(workDir, entry)}`);
  const bundlePath = path.join(workDir, bundleName);
  await bundle(entry, bundlePath, input.sdkEntry, input.builderId);
  await rm(path.join(workDir, 'node_modules'), { recursive: true, force: true });
  return bundlePath;
}

async function hasDependencies(dir: string): Promise<boolean> {
  const manifest = await readPackageJson(dir);
  const dependencies = manifest?.dependencies;
  return typeof dependencies === 'object' && dependencies !== null && Object.keys(dependencies).length > 0;
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

function npmInstall(dir: string, log: TaskLog, signal: AbortSignal, builderId: string): Promise<void> {
  log.info(`${builderId}: installing the plan's npm dependencies`);
  const args = ['install', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'];
  return new Promise((resolve, reject) => {
    const child = spawn('npm', args, { cwd: dir, signal, stdio: ['ignore', 'pipe', 'pipe'] });
    const tail: string[] = [];
    const forward = (chunk: Buffer): void => {
      for (const line of chunk.toString().split('\n')) {
        if (!line.trim()) continue;
        log.info(`npm: ${line}`);
        tail.push(line);
        if (tail.length > 20) tail.shift();
      }
    };
    child.stdout.on('data', forward);
    child.stderr.on('data', forward);
    child.once('error', (error) => reject(new BuildError(`npm install could not run: ${error.message}`)));
    child.once('close', (code) => {
      if (code === 0) resolve();
      else
        reject(
          new BuildError(
            `npm install of the plan's dependencies exited with code ${code}: ${tail.join(' | ')}`,
          ),
        );
    });
  });
}

async function bundle(entry: string, outfile: string, sdkEntry: string, builderId: string): Promise<void> {
  try {
    await esbuild({
      ...nodeBundleOptions,
      entryPoints: [entry],
      outfile,
      sourcemap: 'inline',
      alias: { 'testground-sdk': sdkEntry },
    });
  } catch (error) {
    const errors = (error as { errors?: Message[] }).errors ?? [];
    const described = errors.map((message) => {
      const where = message.location
        ? `${message.location.file}:${message.location.line}:${message.location.column}: `
        : '';
      return `${where}${message.text}`;
    });
    throw new BuildError(
      `${builderId}: bundling failed: ${described.join('; ') || (error as Error).message}`,
    );
  }
}

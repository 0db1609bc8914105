import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { build as esbuild, type Message } from 'esbuild';
import { BuildError } from '../core/errors.ts';
import type { TaskLog } from '../core/task-log.ts';
import { nodeBundleOptions } from './node-bundle.ts';
import type { BuildInput, Builder } from './builder.ts';
import { hashDirectory, stableStringify } from './plan-hash.ts';
import type { Artifact } from '../core/artifact.ts';

// Bump when the bundle layout changes, so old cache entries are not reused.
const builderVersion = 'exec-node/1';
const entryCandidates = ['index.ts', 'index.js', 'index.mjs', 'index.cjs', 'src/index.ts', 'src/index.js'];
const bundleName = 'bundle.mjs';

export interface ExecNodeBuilderOptions {
  /** Where bundles are cached, one directory per content hash. */
  cacheDir: string;
  /** The SDK's entry file; plans import it as `testground-sdk`. */
  sdkEntry: string;
}

/**
 * `exec:node`: plan directory → one self-contained ES module bundle on the host. The plan's own npm
 * dependencies are installed first, so plans written for the official `@testground/sdk` build too.
 */
export class ExecNodeBuilder implements Builder {
  readonly id = 'exec:node';
  private readonly options: ExecNodeBuilderOptions;
  private readonly inFlight = new Map<string, Promise<Artifact>>();
  private sdkHash: Promise<string> | undefined;

  constructor(options: ExecNodeBuilderOptions) {
    this.options = options;
  }

  async build(input: BuildInput): Promise<Artifact> {
    this.sdkHash ??= hashDirectory(path.dirname(this.options.sdkEntry));
    const hash = await hashDirectory(input.planDir, [
      builderVersion,
      stableStringify(input.buildConfig),
      await this.sdkHash,
    ]);
    const bundleDir = path.join(this.options.cacheDir, hash.slice(0, 32));
    const bundlePath = path.join(bundleDir, bundleName);
    if (existsSync(bundlePath)) {
      input.log.info(`exec:node: plan unchanged, reusing bundle ${bundlePath}`);
      return { kind: 'bundle', path: bundlePath, cached: true };
    }
    // Two groups (or two runs) with the same plan and config share one build.
    let pending = this.inFlight.get(bundleDir);
    if (!pending) {
      pending = this.buildInto(bundleDir, input).finally(() => this.inFlight.delete(bundleDir));
      this.inFlight.set(bundleDir, pending);
    }
    return pending;
  }

  private async buildInto(bundleDir: string, input: BuildInput): Promise<Artifact> {
    const workDir = `${bundleDir}.tmp-${randomBytes(4).toString('hex')}`;
    await mkdir(path.dirname(workDir), { recursive: true });
    try {
      await bundlePlan({ ...input, workDir, sdkEntry: this.options.sdkEntry, builderId: this.id });
      try {
        await rename(workDir, bundleDir);
      } catch (error) {
        // Another daemon sharing the cache finished the same build first: theirs is as good as ours.
        if (!existsSync(path.join(bundleDir, bundleName))) throw error;
      }
      input.log.info(`exec:node: built ${path.join(bundleDir, bundleName)}`);
      return { kind: 'bundle', path: path.join(bundleDir, bundleName), cached: false };
    } finally {
      await rm(workDir, { recursive: true, force: true });
    }
  }
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

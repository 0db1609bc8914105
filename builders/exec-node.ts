import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { Artifact } from '../core/artifact.ts';
import { SingleFlight } from '../core/single-flight.ts';
import { stableStringify } from '../core/stable-stringify.ts';
import { strictTable } from '../plan/problems.ts';
import { readBuildConfig, type BuildInput, type Builder } from './builder.ts';
import { BundleInputs, bundleName, bundlePlan } from './node-bundle.ts';
import { NpmSandbox } from './npm-sandbox.ts';
import { hashDirectory } from './plan-hash.ts';

// Bump when the bundle layout or how it is built changes, so old cache entries are not reused (5: npm as
// the plan user, lifecycle scripts only with npm_scripts = true).
const builderVersion = 'exec-node/5';

/** The build_config keys of the Node builders. */
export const nodeBuildConfigShape = {
  entry: z
    .string()
    .min(1)
    .optional()
    .describe("the plan's entry file, relative to the plan; default package.json's main, then index.ts"),
  npm_scripts: z
    .boolean()
    .optional()
    .describe(
      "let npm run lifecycle scripts (the plan's preinstall/install/postinstall/prepare and its dependencies' install scripts, node-gyp builds included) as the unprivileged plan user; default false: they are skipped. Set it in the manifest's builder table",
    ),
};

export interface ExecNodeBuilderOptions {
  /** Where bundles are cached, one directory per content hash. */
  cacheDir: string;
  /** The SDK's entry file; plans import it as `testground-sdk`. */
  sdkEntry: string;
  /** How npm installs run: default as this process's user, with a scrubbed environment. */
  npm?: NpmSandbox;
}

/**
 * `exec:node`: plan directory → a directory in the cache holding `bundle.mjs` (the plan's code and our SDK)
 * beside a copy of the plan and its production `node_modules`, which the bundle loads npm packages from
 * (see node-bundle.ts for the rule). Plans written for the official `@testground/sdk` build too.
 */
export class ExecNodeBuilder implements Builder {
  readonly produces = 'bundle';
  readonly id = 'exec:node';
  readonly configSchema = strictTable(nodeBuildConfigShape);
  private readonly options: ExecNodeBuilderOptions;
  // Two groups (or two runs) with the same plan and config share one build.
  private readonly builds = new SingleFlight<Artifact>();

  private readonly sdkInputs: BundleInputs;
  private readonly npm: NpmSandbox;

  constructor(options: ExecNodeBuilderOptions) {
    this.options = options;
    this.sdkInputs = new BundleInputs(options.sdkEntry);
    this.npm = options.npm ?? new NpmSandbox();
  }

  async build(input: BuildInput): Promise<Artifact> {
    readBuildConfig(this, input.buildConfig);
    const hash = await hashDirectory(input.planDir, [
      builderVersion,
      stableStringify(input.buildConfig),
      // package.json and the lock file are in the plan directory; what the composition changes is here.
      stableStringify(input.dependencies ?? []),
      await this.sdkInputs.hash(),
    ]);
    const bundleDir = path.join(this.options.cacheDir, hash.slice(0, 32));
    const bundlePath = path.join(bundleDir, bundleName);
    if (existsSync(bundlePath)) {
      input.log.info(`exec:node: plan unchanged, reusing bundle ${bundlePath}`);
      return { kind: 'bundle', path: bundlePath, cached: true };
    }
    return this.builds.run(bundleDir, () => this.buildInto(bundleDir, input));
  }

  private async buildInto(bundleDir: string, input: BuildInput): Promise<Artifact> {
    const workDir = `${bundleDir}.tmp-${randomBytes(4).toString('hex')}`;
    await mkdir(path.dirname(workDir), { recursive: true });
    try {
      await bundlePlan({
        ...input,
        workDir,
        sdkEntry: this.options.sdkEntry,
        builderId: this.id,
        npm: this.npm,
      });
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

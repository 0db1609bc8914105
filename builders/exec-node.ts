import { randomBytes } from 'node:crypto';
import { existsSync, utimesSync } from 'node:fs';
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
import type { ContentStore } from './content-store.ts';
import type { PlanTypeChecker } from './plan-typecheck.ts';

// Bump when the bundle layout or how it is built changes, so old cache entries are not reused (5: npm as
// the plan user, lifecycle scripts only with npm_scripts = true; 6: TypeScript plans type-checked).
const builderVersion = 'exec-node/7';

/** Whether a Node builder's build config leaves the type check on (the default). */
export function typecheckWanted(config: { typecheck?: boolean | 'true' | 'false' | undefined }): boolean {
  return config.typecheck !== false && config.typecheck !== 'false';
}

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
  // `true`/`false` as written in TOML or JSON, or as `--build-config typecheck=false` sends them.
  typecheck: z
    .union([z.boolean(), z.enum(['true', 'false'])], {
      error: (issue) => `${JSON.stringify(issue.input)} is not a yes/no value; use true or false`,
    })
    .optional()
    .describe(
      "type-check a TypeScript plan (tsc --noEmit, with the plan's tsconfig.json when it has one) before bundling it, and refuse the build on a type error; default true",
    ),
};

export interface ExecNodeBuilderOptions {
  /** Where bundles are cached, one directory per content hash. */
  cacheDir: string;
  /** The SDK's entry file; plans import it as `testground-sdk`. */
  sdkEntry: string;
  /** How npm installs run: default as this process's user, with a scrubbed environment. */
  npm?: NpmSandbox;
  /**
   * Where the plan's files are kept once by content; each bundle's copy of the plan links to them. Without
   * it the plan is copied.
   */
  contents?: ContentStore;
  /** The daemon's task snapshots: a plan under it gives its files to the content store (no copy at all). */
  snapshotsDir?: string;
  /** Type-checks TypeScript plans before bundling; without it they are bundled unchecked. */
  typecheck?: PlanTypeChecker;
}

// Rewritten by the build (dependency overrides, npm's lock file): copied, never linked to stored content.
const rewrittenFiles = new Set(['package.json', 'package-lock.json', 'npm-shrinkwrap.json']);

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
    const config = readBuildConfig(this, input.buildConfig);
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
      // Marks the entry used, in the same tick as the check: the retention collector, in this process,
      // removes only entries unused since the builds in progress began (see retention-collector.ts).
      markUsed(bundleDir);
      input.log.info(`exec:node: plan unchanged, reusing bundle ${bundlePath}`);
      return { kind: 'bundle', path: bundlePath, cached: true };
    }
    return this.builds.run(bundleDir, () => this.buildInto(bundleDir, input, typecheckWanted(config)));
  }

  private async buildInto(bundleDir: string, input: BuildInput, typecheck: boolean): Promise<Artifact> {
    const workDir = `${bundleDir}.tmp-${randomBytes(4).toString('hex')}`;
    await mkdir(path.dirname(workDir), { recursive: true });
    try {
      const { contents, snapshotsDir } = this.options;
      await bundlePlan({
        ...input,
        workDir,
        sdkEntry: this.options.sdkEntry,
        builderId: this.id,
        npm: this.npm,
        ...(this.options.typecheck && typecheck ? { typecheck: this.options.typecheck } : {}),
        ...(contents
          ? {
              copyPlan: (from: string, to: string) =>
                contents.linkTree(from, to, {
                  skip: (name) => name.split('/').includes('node_modules'),
                  copy: (name) => rewrittenFiles.has(name.split('/').pop() ?? ''),
                  adopt: snapshotsDir !== undefined && from.startsWith(snapshotsDir + path.sep),
                }),
            }
          : {}),
      });
      try {
        await rename(workDir, bundleDir);
      } catch (error) {
        // Another daemon sharing the cache finished the same build first: theirs is as good as ours.
        if (!existsSync(path.join(bundleDir, bundleName))) throw error;
      }
      markUsed(bundleDir);
      input.log.info(`exec:node: built ${path.join(bundleDir, bundleName)}`);
      return { kind: 'bundle', path: path.join(bundleDir, bundleName), cached: false };
    } finally {
      await rm(workDir, { recursive: true, force: true });
    }
  }
}

/** A cache entry's mtime is when a build last used it: retention removes the least recently used first. */
function markUsed(bundleDir: string): void {
  const now = new Date();
  try {
    utimesSync(bundleDir, now, now);
  } catch {
    // Gone since the check (removed by hand): the build goes on, and the runner says the bundle is missing.
  }
}

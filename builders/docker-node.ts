import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { SingleFlight } from '../core/single-flight.ts';
import { listContextDirectory, packContext, type ContextEntry } from '../docker/build-context.ts';
import type { ImageClient } from '../docker/container-engine.ts';
import { strictTable } from '../plan/problems.ts';
import { defaultBaseImage, type RuntimeImage, type RuntimeImageProvider } from './runtime-image.ts';
import { readBuildConfig, type BuildInput, type Builder } from './builder.ts';
import { nodeBuildConfigShape, typecheckWanted } from './exec-node.ts';
import { BundleInputs, bundleName, bundlePlan } from './node-bundle.ts';
import { NpmSandbox } from './npm-sandbox.ts';
import type { PlanTypeChecker } from './plan-typecheck.ts';
import { walkDir } from '../core/walk-dir.ts';
import { dockerStep, planImageLabels, planImageTag } from './plan-image.ts';
import { stableStringify } from '../core/stable-stringify.ts';
import { hashDirectory } from './plan-hash.ts';
import type { Artifact } from '../core/artifact.ts';

// Bump when the image layout or how it is built changes, so older images are not reused (5: npm as the
// plan user, lifecycle scripts only with npm_scripts = true; 6: TypeScript plans type-checked).
const builderVersion = 'docker-node/8';

/** The Node runtime image to build on, for the docker builders' `base_image` key. */
export const baseImageSchema = z
  .string()
  .trim()
  .min(1)
  .optional()
  .describe(
    `the Node runtime image to build on; default ${defaultBaseImage}, else one built from the host's node`,
  );

export interface DockerNodeBuilderOptions {
  engine: ImageClient;
  /** Shared with the other docker builders, so that one runtime image is built at a time. */
  runtimeImages: RuntimeImageProvider;
  /** The SDK's entry file; plans import it as `testground-sdk`. */
  sdkEntry: string;
  /** Scratch space for bundling; default the OS temp directory. */
  tempDir?: string;
  /** Written to the `testground.daemon` label of the images it builds. */
  daemonId: string;
  /** How npm installs run: default as this process's user, with a scrubbed environment. */
  npm?: NpmSandbox;
  /** Type-checks TypeScript plans before bundling; without it they are bundled unchecked. */
  typecheck?: PlanTypeChecker;
}

/**
 * `docker:node`: the plan bundled exactly as `exec:node` bundles it, and the same directory (`bundle.mjs`,
 * the plan's production `node_modules`, a copy of the plan) at `/app` on a Node runtime image
 * (`build_config.base_image`, default `node:20-bookworm-slim`, else one built from the host's node).
 * Images are tagged `testground-plan/<plan>:<content hash>`; an unchanged plan, SDK and base image reuse
 * the image.
 *
 * npm runs on the host, so native addons in `node_modules` are compiled for the host's libc and Node: the
 * runtime image built from the host's node carries that very libc; a pulled base image runs them only when
 * its libc is as new as the host's and its Node has the same ABI (the build log says so when it matters).
 */
export class DockerNodeBuilder implements Builder {
  readonly produces = 'image';
  readonly id = 'docker:node';
  readonly configSchema = strictTable({ ...nodeBuildConfigShape, base_image: baseImageSchema });
  private readonly options: DockerNodeBuilderOptions;
  // Two groups (or two runs) with the same plan and config share one build.
  private readonly builds = new SingleFlight<Artifact>();

  private readonly sdkInputs: BundleInputs;
  private readonly npm: NpmSandbox;

  constructor(options: DockerNodeBuilderOptions) {
    this.options = options;
    this.sdkInputs = new BundleInputs(options.sdkEntry);
    this.npm = options.npm ?? new NpmSandbox();
  }

  async build(input: BuildInput): Promise<Artifact> {
    const config = readBuildConfig(this, input.buildConfig);
    const baseImage = config.base_image ?? defaultBaseImage;
    const runtime = await dockerStep(this.id, `no Node runtime image for base ${baseImage}`, () =>
      this.options.runtimeImages.ensure({
        baseImage,
        log: (line) => input.log.info(line),
        signal: input.signal,
      }),
    );
    input.log.info(`runtime image: ${runtime.summary}`);
    const hash = await hashDirectory(input.planDir, [
      builderVersion,
      stableStringify(input.buildConfig),
      stableStringify(input.dependencies ?? []),
      await this.sdkInputs.hash(),
      // The image the base ref names now: a re-pulled or rebuilt base makes a new plan image.
      runtime.imageId,
    ]);
    const tag = planImageTag(input.planName, hash);
    const existing = await this.options.engine.inspectImage(tag);
    if (existing) {
      input.log.info(`${this.id}: plan unchanged, reusing image ${tag} (${existing.id})`);
      return { kind: 'image', imageId: existing.id, cached: true };
    }
    return this.builds.run(tag, () => this.buildImage(tag, runtime, input, typecheckWanted(config)));
  }

  private async buildImage(
    tag: string,
    runtime: RuntimeImage,
    input: BuildInput,
    typecheck: boolean,
  ): Promise<Artifact> {
    const workDir = await mkdtemp(path.join(this.options.tempDir ?? os.tmpdir(), 'tg-docker-node-'));
    try {
      const appDir = path.join(workDir, 'app');
      await bundlePlan({
        ...input,
        workDir: appDir,
        sdkEntry: this.options.sdkEntry,
        builderId: this.id,
        npm: this.npm,
        ...(this.options.typecheck && typecheck ? { typecheck: this.options.typecheck } : {}),
      });
      if (runtime.origin === 'base' || runtime.origin === 'pulled') {
        await warnAboutHostAddons(appDir, runtime, input, this.id);
      }
      const app = await listContextDirectory(appDir, new Set());
      const context = packContext([
        { type: 'content', name: 'Dockerfile', content: planDockerfile(runtime) },
        ...app.map((entry): ContextEntry => ({ ...entry, name: `app/${entry.name}` })),
      ]);
      input.log.info(`${this.id}: building image ${tag} on ${runtime.ref}`);
      const imageId = await dockerStep(this.id, `docker build of ${tag} failed`, () =>
        this.options.engine.buildImage(
          {
            context: { tar: context },
            tags: [tag],
            labels: planImageLabels(input.planName, this.options.daemonId),
            signal: input.signal,
          },
          (line) => input.log.info(`docker build: ${line}`),
        ),
      );
      input.log.info(`${this.id}: built image ${tag} (${imageId})`);
      return { kind: 'image', imageId, cached: false };
    } finally {
      await rm(workDir, { recursive: true, force: true });
    }
  }
}

function planDockerfile(runtime: RuntimeImage): string {
  // FROM the image id, not the ref: the content hash was computed for exactly this image. Without
  // --enable-source-maps, as local:exec starts instances: Node would read and parse `bundle.mjs.map` at every
  // start; the SDK maps the stacks it records itself (sdk/stack-source-map.ts), when something failed.
  return `FROM ${runtime.imageId}
COPY app/ /app/
WORKDIR /app
ENTRYPOINT ["node", "/app/${bundleName}"]
`;
}

/**
 * Native addons npm built on this host (`.node` files outside `prebuilds/`, which hold builds for every
 * platform) load in another image only when its libc and Node ABI match the host's: say so, once.
 */
async function warnAboutHostAddons(
  appDir: string,
  runtime: RuntimeImage,
  input: BuildInput,
  builderId: string,
): Promise<void> {
  const nodeModules = path.join(appDir, 'node_modules');
  if (!existsSync(nodeModules)) return;
  const packages = new Set<string>();
  for (const entry of await walkDir(nodeModules)) {
    const parts = entry.name.split('/');
    if (entry.kind !== 'file' || !entry.name.endsWith('.node') || parts.includes('prebuilds')) continue;
    // The package is what follows the last node_modules/ (the walk's own root counts as one).
    const inner = parts.slice(parts.lastIndexOf('node_modules') + 1);
    packages.add(inner[0]?.startsWith('@') ? inner.slice(0, 2).join('/') : (inner[0] ?? entry.name));
  }
  if (packages.size === 0) return;
  input.log.warn(
    `${builderId}: native addons in node_modules (${[...packages].sort().join(', ')}) were compiled on this host for Node ${process.version} (ABI ${process.versions.modules}); they load in ${runtime.ref} only if its libc is as new as the host's and its node has ABI ${process.versions.modules}`,
  );
}

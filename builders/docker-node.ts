import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BuildError, DependencyError } from '../core/errors.ts';
import { packContext } from '../docker/build-context.ts';
import type { ImageClient } from '../docker/container-engine.ts';
import { createLabels, type Labels } from '../docker/labels.ts';
import { defaultBaseImage, type RuntimeImage, type RuntimeImageProvider } from './runtime-image.ts';
import type { BuildInput, Builder } from './builder.ts';
import { bundlePlan } from './exec-node.ts';
import { hashDirectory, stableStringify } from './plan-hash.ts';
import type { Artifact } from '../core/artifact.ts';

// Bump when the image layout changes, so images built by an older layout are not reused.
const builderVersion = 'docker-node/1';

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
}

/**
 * `docker:node`: the plan bundled exactly as `exec:node` bundles it (npm dependencies included), on a
 * Node runtime image (`build_config.base_image`, default `node:20-bookworm-slim`, else one built from the
 * host's node). Images are tagged `testground-plan/<plan>:<content hash>`; an unchanged plan, SDK and
 * base image reuse the image.
 */
export class DockerNodeBuilder implements Builder {
  readonly id = 'docker:node';
  private readonly options: DockerNodeBuilderOptions;
  private readonly inFlight = new Map<string, Promise<Artifact>>();
  private sdkHash: Promise<string> | undefined;

  constructor(options: DockerNodeBuilderOptions) {
    this.options = options;
  }

  async build(input: BuildInput): Promise<Artifact> {
    const baseImage = readBaseImage(input.buildConfig);
    const runtime = await dockerStep(this.id, `no Node runtime image for base ${baseImage}`, () =>
      this.options.runtimeImages.ensure({
        baseImage,
        log: (line) => input.log.info(line),
        signal: input.signal,
      }),
    );
    this.sdkHash ??= hashDirectory(path.dirname(this.options.sdkEntry));
    const hash = await hashDirectory(input.planDir, [
      builderVersion,
      stableStringify(input.buildConfig),
      await this.sdkHash,
      // The image the base ref names now: a re-pulled or rebuilt base makes a new plan image.
      runtime.imageId,
    ]);
    const tag = planImageTag(input.planName, hash);
    const existing = await this.options.engine.inspectImage(tag);
    if (existing) {
      input.log.info(`${this.id}: plan unchanged, reusing image ${tag} (${existing.id})`);
      return { kind: 'image', imageId: existing.id, cached: true };
    }
    // Two groups (or two runs) with the same plan and config share one build.
    let pending = this.inFlight.get(tag);
    if (!pending) {
      pending = this.buildImage(tag, runtime, input).finally(() => this.inFlight.delete(tag));
      this.inFlight.set(tag, pending);
    }
    return pending;
  }

  private async buildImage(tag: string, runtime: RuntimeImage, input: BuildInput): Promise<Artifact> {
    const workDir = await mkdtemp(path.join(this.options.tempDir ?? os.tmpdir(), 'tg-docker-node-'));
    try {
      const bundlePath = await bundlePlan({
        ...input,
        workDir: path.join(workDir, 'plan'),
        sdkEntry: this.options.sdkEntry,
        builderId: this.id,
      });
      const context = packContext([
        { type: 'content', name: 'Dockerfile', content: planDockerfile(runtime) },
        { type: 'file', name: 'bundle.mjs', source: bundlePath, mode: 0o644 },
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
  // FROM the image id, not the ref: the content hash was computed for exactly this image.
  return `FROM ${runtime.imageId}
COPY bundle.mjs /app/bundle.mjs
WORKDIR /app
ENTRYPOINT ["node", "--enable-source-maps", "/app/bundle.mjs"]
`;
}

function readBaseImage(buildConfig: Record<string, unknown>): string {
  const value = buildConfig.base_image;
  if (value === undefined) return defaultBaseImage;
  if (typeof value !== 'string' || value.trim() === '') {
    throw new BuildError(
      `build_config.base_image must be an image reference such as "${defaultBaseImage}", got ${JSON.stringify(value)}`,
      [{ path: 'build_config.base_image', message: 'must be a non-empty string' }],
    );
  }
  return value.trim();
}

/** `testground-plan/<plan>:<hash>`, the plan name folded into what image references allow. */
export function planImageTag(planName: string, contentHash: string): string {
  const repository =
    planName
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, '-')
      .replace(/^[._-]+|[._-]+$/g, '') || 'plan';
  return `testground-plan/${repository}:${contentHash.slice(0, 24)}`;
}

export function planImageLabels(planName: string, daemonId: string): Labels {
  return createLabels({ daemonId, role: 'plan-image', plan: planName });
}

/**
 * Runs one engine step of a build. An unreachable engine and a cancel pass through unchanged (they are
 * not the plan's fault); anything else becomes a {@link BuildError} carrying the engine's message.
 */
export async function dockerStep<T>(builderId: string, what: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (error instanceof DependencyError || error instanceof BuildError) throw error;
    if ((error as Error).name === 'AbortError') throw error;
    throw new BuildError(`${builderId}: ${what}: ${(error as Error).message}`);
  }
}

import { readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { BuildError } from '../core/errors.ts';
import type { ImageClient } from '../docker/container-engine.ts';
import type { RuntimeImageProvider } from './runtime-image.ts';
import { z } from 'zod';
import { SingleFlight } from '../core/single-flight.ts';
import { strictTable } from '../plan/problems.ts';
import { readBuildConfig, type BuildInput, type Builder } from './builder.ts';
import { baseImageSchema } from './docker-node.ts';
import { dockerStep, planImageLabels, planImageTag } from './plan-image.ts';
import { stableStringify } from '../core/stable-stringify.ts';
import { hashDirectory } from './plan-hash.ts';
import type { Artifact } from '../core/artifact.ts';

// Bump when what goes into the image changes, so images built the old way are not reused.
const builderVersion = 'docker-generic/1';
// Never part of the build context: dependencies are installed by the Dockerfile, not copied from the host.
const skippedNames = ['node_modules', '.git', '.testground'];
/**
 * A build argument this builder fills in with the Node runtime image when the Dockerfile mentions it and
 * the composition does not set it, so a plan can write `ARG TESTGROUND_NODE_RUNTIME` / `FROM ${…}` and
 * build on hosts that cannot pull `node` images.
 */
export const runtimeBuildArg = 'TESTGROUND_NODE_RUNTIME';

export interface DockerGenericBuilderOptions {
  engine: ImageClient;
  /** Fills in {@link runtimeBuildArg}; without it the Dockerfile's own default applies. */
  runtimeImages?: RuntimeImageProvider;
  /** Written to the `testground.daemon` label of the images it builds. */
  daemonId: string;
}

/**
 * `docker:generic`: the plan's own Dockerfile (`build_config.path`, default `Dockerfile`, relative to the
 * plan directory) with the plan directory as context and `build_config.build_args`. Images are tagged
 * `testground-plan/<plan>:<content hash>`; an unchanged plan and config reuse the image.
 */
export class DockerGenericBuilder implements Builder {
  readonly produces = 'image';
  readonly id = 'docker:generic';
  readonly configSchema = strictTable({
    path: z
      .string()
      .trim()
      .min(1)
      .optional()
      .describe("the Dockerfile's path relative to the plan directory; default Dockerfile"),
    build_args: z
      .record(z.string(), z.string())
      .optional()
      .describe('build arguments passed to the Dockerfile'),
    base_image: baseImageSchema,
  });
  private readonly options: DockerGenericBuilderOptions;
  // Two groups (or two runs) with the same plan and config share one build.
  private readonly builds = new SingleFlight<Artifact>();

  constructor(options: DockerGenericBuilderOptions) {
    this.options = options;
  }

  async build(input: BuildInput): Promise<Artifact> {
    const config = readBuildConfig(this, input.buildConfig);
    const dockerfile = await resolveDockerfile(input.planDir, config.path);
    const buildArgs = { ...config.build_args };
    const extra: string[] = [];
    const { runtimeImages } = this.options;
    if (runtimeImages && buildArgs[runtimeBuildArg] === undefined) {
      const text = await readFile(dockerfile.absolute, 'utf8');
      if (text.includes(runtimeBuildArg)) {
        const baseImage = config.base_image;
        const runtime = await dockerStep(this.id, 'no Node runtime image', () =>
          runtimeImages.ensure({
            ...(baseImage === undefined ? {} : { baseImage }),
            log: (line) => input.log.info(line),
            signal: input.signal,
          }),
        );
        buildArgs[runtimeBuildArg] = runtime.ref;
        extra.push(runtime.imageId);
      }
    }
    const hash = await hashDirectory(input.planDir, [
      builderVersion,
      stableStringify(input.buildConfig),
      stableStringify(buildArgs),
      ...extra,
    ]);
    const tag = planImageTag(input.planName, hash);
    const existing = await this.options.engine.inspectImage(tag);
    if (existing) {
      input.log.info(`${this.id}: plan unchanged, reusing image ${tag} (${existing.id})`);
      return { kind: 'image', imageId: existing.id, cached: true };
    }
    return this.builds.run(tag, () => this.buildImage(tag, dockerfile.relative, buildArgs, input));
  }

  private async buildImage(
    tag: string,
    dockerfile: string,
    buildArgs: Record<string, string>,
    input: BuildInput,
  ): Promise<Artifact> {
    input.log.info(`${this.id}: building image ${tag} from ${dockerfile}`);
    const imageId = await dockerStep(this.id, `docker build of ${dockerfile} failed`, () =>
      this.options.engine.buildImage(
        {
          context: { dir: input.planDir, skip: skippedNames },
          dockerfile,
          tags: [tag],
          labels: planImageLabels(input.planName, this.options.daemonId),
          buildArgs,
          signal: input.signal,
        },
        (line) => input.log.info(`docker build: ${line}`),
      ),
    );
    input.log.info(`${this.id}: built image ${tag} (${imageId})`);
    return { kind: 'image', imageId, cached: false };
  }
}

/** The Dockerfile named by `build_config.path`, which must be a file inside the plan directory. */
async function resolveDockerfile(
  planDir: string,
  configured: string | undefined,
): Promise<{ absolute: string; relative: string }> {
  const problem = (message: string): BuildError =>
    new BuildError(`build_config.path ${message}`, [{ path: 'build_config.path', message }]);
  const name = configured ?? 'Dockerfile';
  const root = await realpath(planDir);
  const absolute = path.resolve(root, name);
  const inside = (candidate: string): boolean => candidate.startsWith(root + path.sep);
  if (path.isAbsolute(name) || !inside(absolute)) {
    throw problem(`${JSON.stringify(name)} is outside the plan directory; name a file inside it`);
  }
  const real = await realpath(absolute).catch(() => undefined);
  if (real === undefined || !(await stat(real)).isFile()) {
    throw problem(`${JSON.stringify(name)}: no such file in the plan directory`);
  }
  // A symlink inside the plan must not lead the build to a Dockerfile elsewhere on the host.
  if (!inside(real)) {
    throw problem(`${JSON.stringify(name)} is a link to ${real}, outside the plan directory`);
  }
  const relative = path.relative(root, absolute).split(path.sep).join('/');
  const skipped = relative.split('/').find((part) => skippedNames.includes(part));
  if (skipped !== undefined) {
    throw problem(`${JSON.stringify(name)} is inside ${skipped}, which the build context leaves out`);
  }
  return { absolute: real, relative };
}

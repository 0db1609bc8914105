import { readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { BuildError } from '../core/errors.ts';
import type { ProblemDetail } from '../core/errors.ts';
import type { ImageClient } from '../docker/container-engine.ts';
import type { RuntimeImageProvider } from './runtime-image.ts';
import type { BuildInput, Builder } from './builder.ts';
import { dockerStep, planImageLabels, planImageTag } from './docker-node.ts';
import { hashDirectory, stableStringify } from './plan-hash.ts';
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
  readonly id = 'docker:generic';
  private readonly options: DockerGenericBuilderOptions;
  private readonly inFlight = new Map<string, Promise<Artifact>>();

  constructor(options: DockerGenericBuilderOptions) {
    this.options = options;
  }

  async build(input: BuildInput): Promise<Artifact> {
    const dockerfile = await resolveDockerfile(input.planDir, input.buildConfig.path);
    const buildArgs = readBuildArgs(input.buildConfig.build_args);
    const extra: string[] = [];
    const { runtimeImages } = this.options;
    if (runtimeImages && buildArgs[runtimeBuildArg] === undefined) {
      const text = await readFile(dockerfile.absolute, 'utf8');
      if (text.includes(runtimeBuildArg)) {
        const baseImage = input.buildConfig.base_image;
        const runtime = await dockerStep(this.id, 'no Node runtime image', () =>
          runtimeImages.ensure({
            ...(typeof baseImage === 'string' ? { baseImage } : {}),
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
    let pending = this.inFlight.get(tag);
    if (!pending) {
      pending = this.buildImage(tag, dockerfile.relative, buildArgs, input).finally(() =>
        this.inFlight.delete(tag),
      );
      this.inFlight.set(tag, pending);
    }
    return pending;
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
  configured: unknown,
): Promise<{ absolute: string; relative: string }> {
  const problem = (message: string): BuildError =>
    new BuildError(`build_config.path ${message}`, [{ path: 'build_config.path', message }]);
  if (configured !== undefined && (typeof configured !== 'string' || configured.trim() === '')) {
    throw problem(`must be the Dockerfile's path relative to the plan, got ${JSON.stringify(configured)}`);
  }
  const name = (configured as string | undefined) ?? 'Dockerfile';
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

/** `build_config.build_args`: an object of strings; every bad entry is reported at once. */
function readBuildArgs(value: unknown): Record<string, string> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BuildError(`build_config.build_args must be a table of strings, got ${JSON.stringify(value)}`, [
      { path: 'build_config.build_args', message: 'must be a table of strings' },
    ]);
  }
  const args: Record<string, string> = {};
  const problems: ProblemDetail[] = [];
  for (const [key, item] of Object.entries(value)) {
    if (typeof item === 'string') args[key] = item;
    else
      problems.push({
        path: `build_config.build_args.${key}`,
        message: `must be a string, got ${JSON.stringify(item)}`,
      });
  }
  if (problems.length > 0) {
    throw new BuildError(
      `build_config.build_args: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`,
      problems,
    );
  }
  return args;
}

import { readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { BuildError } from '../core/errors.ts';
import { listContextDirectory, packContext, type ContextEntry } from '../docker/build-context.ts';
import type { BuildContext, ImageClient } from '../docker/container-engine.ts';
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
const builderVersion = 'docker-generic/2';
// Never part of the build context: dependencies are installed by the Dockerfile, not copied from the host.
const skippedNames = ['node_modules', '.git', '.testground'];
/**
 * A build argument this builder fills in with the Node runtime image when the Dockerfile mentions it and
 * the composition does not set it, so a plan can write `ARG TESTGROUND_NODE_RUNTIME` / `FROM ${…}` and
 * build on hosts that cannot pull `node` images.
 */
export const runtimeBuildArg = 'TESTGROUND_NODE_RUNTIME';
/** The build argument the original Testground set to `build_config.path`; Dockerfiles written for it use it. */
export const planPathBuildArg = 'PLAN_PATH';
/** Where the plan sits in the build context when `path` names a directory, as in the original. */
const originalPlanDir = 'plan';

/**
 * How the build context is laid out. `plan-root`: the plan directory is the context (ours). `original`:
 * the plan sits under `plan/` of the context, as the original Testground's docker:generic laid it out, so
 * Dockerfiles written for it (`COPY ./plan/${PLAN_PATH}/Cargo.toml …`) build unchanged.
 */
type ContextLayout = 'plan-root' | 'original';

interface ResolvedDockerfile {
  /** On the host, for reading it. */
  absolute: string;
  /** Inside the build context, `/`-separated. */
  inContext: string;
  layout: ContextLayout;
}

export interface DockerGenericBuilderOptions {
  engine: ImageClient;
  /** Fills in {@link runtimeBuildArg}; without it the Dockerfile's own default applies. */
  runtimeImages?: RuntimeImageProvider;
  /** Written to the `testground.daemon` label of the images it builds. */
  daemonId: string;
}

/**
 * `docker:generic`: the plan's own Dockerfile with `build_config.build_args`. Images are tagged
 * `testground-plan/<plan>:<content hash>`; an unchanged plan and config reuse the image.
 *
 * `build_config.path` means what it meant in the original when it names a directory (`"./rust/"`): the
 * Dockerfile is `<path>/Dockerfile`, the context holds the plan under `plan/`, and the build argument
 * `PLAN_PATH` is the path as written (unless build_args sets it). Naming a file, or left out (then
 * `Dockerfile`), it is that Dockerfile, with the plan directory itself as the context.
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
      .describe(
        'a Dockerfile relative to the plan directory, which is then the build context (default Dockerfile); or, as in the original Testground, a directory holding a Dockerfile, built with the plan under plan/ of the context and PLAN_PATH set to this path',
      ),
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
    if (dockerfile.layout === 'original' && config.path !== undefined) {
      buildArgs[planPathBuildArg] ??= config.path;
      input.log.info(
        `${this.id}: build_config.path ${JSON.stringify(config.path)} is a directory: building ${dockerfile.inContext} with the plan under ${originalPlanDir}/ of the context and ${planPathBuildArg}=${buildArgs[planPathBuildArg]}, as the original Testground did`,
      );
    }
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
        input.log.info(`runtime image: ${runtime.summary}`);
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
    return this.builds.run(tag, () => this.buildImage(tag, dockerfile, buildArgs, input));
  }

  private async buildImage(
    tag: string,
    dockerfile: ResolvedDockerfile,
    buildArgs: Record<string, string>,
    input: BuildInput,
  ): Promise<Artifact> {
    input.log.info(`${this.id}: building image ${tag} from ${dockerfile.inContext}`);
    const context: BuildContext =
      dockerfile.layout === 'plan-root'
        ? { dir: input.planDir, skip: skippedNames }
        : {
            tar: packContext(
              (await listContextDirectory(input.planDir, new Set(skippedNames))).map(
                (entry): ContextEntry => ({ ...entry, name: `${originalPlanDir}/${entry.name}` }),
              ),
            ),
          };
    const imageId = await dockerStep(this.id, `docker build of ${dockerfile.inContext} failed`, () =>
      this.options.engine.buildImage(
        {
          context,
          dockerfile: dockerfile.inContext,
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

/**
 * The Dockerfile `build_config.path` names (see {@link DockerGenericBuilder}), which must be a file inside
 * the plan directory, and the context layout that goes with it.
 */
async function resolveDockerfile(
  planDir: string,
  configured: string | undefined,
): Promise<ResolvedDockerfile> {
  const problem = (message: string): BuildError =>
    new BuildError(`build_config.path ${message}`, [{ path: 'build_config.path', message }]);
  const name = configured ?? 'Dockerfile';
  const root = await realpath(planDir);
  const inside = (candidate: string): boolean => candidate === root || candidate.startsWith(root + path.sep);
  const named = path.resolve(root, name);
  if (path.isAbsolute(name) || !inside(named)) {
    throw problem(
      `${JSON.stringify(name)} is outside the plan directory; name a file or directory inside it`,
    );
  }
  const namedReal = await realpath(named).catch(() => undefined);
  const isDirectory = namedReal !== undefined && (await stat(namedReal)).isDirectory();
  const absolute = isDirectory ? path.join(named, 'Dockerfile') : named;
  const real = await realpath(absolute).catch(() => undefined);
  if (real === undefined || !(await stat(real)).isFile()) {
    throw problem(
      isDirectory
        ? `${JSON.stringify(name)} is a directory without a Dockerfile; put one there, or name the Dockerfile itself`
        : `${JSON.stringify(name)}: no such file or directory in the plan directory`,
    );
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
  return isDirectory
    ? { absolute: real, inContext: `${originalPlanDir}/${relative}`, layout: 'original' }
    : { absolute: real, inContext: relative, layout: 'plan-root' };
}

/**
 * Brings images built on the daemon's engine to every node of a swarm: pushed to the registry the nodes
 * pull from, tagged by the image's content hash (its id), and referenced by manifest digest, so that an
 * image is pushed once whatever the number of runs, and each node pulls it once (swarm skips the pull of a
 * digest it has). Local runners never need it: the runner that leaves the machine distributes.
 */
import { SingleFlight } from '../../core/single-flight.ts';
import { RunnerError } from '../../core/errors.ts';
import type { ImageClient } from '../../docker/container-engine.ts';

/** What the distribution asks of a registry (docker/registry-client.ts). */
export interface RegistryPort {
  /** `host:port`, as image references name it. */
  readonly address: string;
  /** The digest of `repo:tag`'s manifest, or `undefined` when the registry has none. */
  manifestDigest(repo: string, tag: string): Promise<string | undefined>;
}

export interface ImageDistributionOptions {
  engine: Pick<ImageClient, 'inspectImage' | 'tagImage' | 'pushImage' | 'removeImage'>;
  registry: RegistryPort;
}

export class ImageDistribution {
  private readonly options: ImageDistributionOptions;
  // Two runs asking for the same image at once share one push. Nothing is remembered after: the registry
  // is asked each time (one HEAD), so a registry wiped meanwhile gets the image again.
  private readonly pushes = new SingleFlight<string>();

  constructor(options: ImageDistributionOptions) {
    this.options = options;
  }

  /**
   * The reference every node pulls `image` (an id or tag on the daemon's engine) by:
   * `<registry>/testground/<name>@sha256:…`, pushed first when the registry lacks it.
   */
  async distribute(image: string, name: string, log: (line: string) => void): Promise<string> {
    const { engine, registry } = this.options;
    const local = await engine.inspectImage(image);
    if (local === undefined) {
      throw new RunnerError(
        `image ${image} is not on the daemon's engine; it cannot be pushed to ${registry.address}`,
      );
    }
    const repo = `testground/${repositoryName(name)}`;
    const tag = local.id.replace(/^sha256:/, '');
    return this.pushes.run(`${registry.address}/${repo}:${tag}`, async () => {
      const remote = `${registry.address}/${repo}`;
      const present = await registry.manifestDigest(repo, tag);
      if (present !== undefined) return `${remote}@${present}`;
      log(`pushing ${name} (${tag.slice(0, 12)}) to ${registry.address}`);
      await engine.tagImage(local.id, remote, tag);
      try {
        const { digest } = await engine.pushImage(`${remote}:${tag}`);
        log(`pushed ${remote}@${digest}`);
        return `${remote}@${digest}`;
      } finally {
        // Only the tag goes: the image stays under its own name, for the builders' cache.
        await engine.removeImage(`${remote}:${tag}`).catch(() => undefined);
      }
    });
  }
}

/** A registry repository name from a plan or role name: lowercase letters, digits and separators. */
function repositoryName(name: string): string {
  const cleaned = name
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  return cleaned || 'image';
}

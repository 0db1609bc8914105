import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { Artifact, ArtifactKind } from '../core/artifact.ts';
import type { ImageClient } from '../docker/container-engine.ts';

/** An artifact a build produced, addressable by its id (`run.artifact`, `--use-build`). Timestamps are ISO 8601. */
export interface ArtifactRecord {
  /** `sha256:…` for an image (the engine's image id), `bundle:<hash>` for a bundle. */
  id: string;
  builder: string;
  kind: ArtifactKind;
  /** The bundle's file on the daemon's host. */
  path?: string;
  imageId?: string;
  /** The plan it was built from (manifest name with `/` replaced by `-`). */
  plan: string;
  created: string;
  /** The task whose build first produced it. */
  task: string;
}

/**
 * An artifact's id: the image id for an image; for a bundle, `bundle:` and the name of the directory the
 * builder caches it in, which is the hash of everything that went into it.
 */
export function artifactId(artifact: Artifact): string {
  return artifact.kind === 'image'
    ? artifact.imageId
    : `bundle:${path.basename(path.dirname(artifact.path))}`;
}

/** The artifact a runner starts from, as the builder would have returned it. */
export function artifactOf(record: ArtifactRecord): Artifact {
  return record.kind === 'image'
    ? { kind: 'image', imageId: record.imageId ?? record.id, cached: true }
    : { kind: 'bundle', path: record.path ?? '', cached: true };
}

/**
 * Every artifact this daemon's builds produced, as Redis keys `<prefix>:artifact:<id>` (JSON), so a later
 * task on any daemon sharing the Redis can start from one instead of building. A record says an artifact
 * was built, not that it is still there: `exists` asks the disk or the engine.
 */
export class ArtifactStore {
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly images: Pick<ImageClient, 'imageExists'>;
  private readonly now: () => Date;

  constructor(deps: {
    redis: Redis;
    prefix: string;
    /** Where image artifacts live; asked only when an image artifact is about to be used. */
    images: Pick<ImageClient, 'imageExists'>;
    now?: () => Date;
  }) {
    this.redis = deps.redis;
    this.prefix = deps.prefix;
    this.images = deps.images;
    this.now = deps.now ?? (() => new Date());
  }

  private key(id: string): string {
    return `${this.prefix}:artifact:${id}`;
  }

  /**
   * Records what a build produced and returns the record. An artifact built again (a cached build) keeps
   * its first record: when and by which task it was first made.
   */
  async record(
    artifact: Artifact,
    origin: { builder: string; plan: string; task: string },
  ): Promise<ArtifactRecord> {
    const id = artifactId(artifact);
    const record: ArtifactRecord = {
      id,
      builder: origin.builder,
      kind: artifact.kind,
      ...(artifact.kind === 'image' ? { imageId: artifact.imageId } : { path: artifact.path }),
      plan: origin.plan,
      created: this.now().toISOString(),
      task: origin.task,
    };
    await this.redis.set(this.key(id), JSON.stringify(record), 'NX');
    return (await this.get(id)) ?? record;
  }

  async get(id: string): Promise<ArtifactRecord | undefined> {
    const text = await this.redis.get(this.key(id));
    return text === null ? undefined : (JSON.parse(text) as ArtifactRecord);
  }

  /** Drops the record of an artifact that was removed (by retention), so a composition naming it is a 400. */
  async forget(id: string): Promise<void> {
    await this.redis.del(this.key(id));
  }

  /** Whether the artifact is still there: the bundle's file on this host, the image in the engine. */
  async exists(record: ArtifactRecord): Promise<boolean> {
    if (record.kind === 'image') return this.images.imageExists(record.imageId ?? record.id);
    const found = await stat(record.path ?? '').catch(() => undefined);
    return found?.isFile() ?? false;
  }
}

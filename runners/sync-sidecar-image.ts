import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { packContext } from '../docker/build-context.ts';
import type { DockerEngine } from '../docker/docker-engine.ts';
import { roleLabel } from '../docker/labels.ts';
import type { RuntimeImage } from '../builders/runtime-image.ts';
import type { SyncServiceBundle } from './sync-service-bundle.ts';

const repository = 'testground-sync-service';
export const syncServicePort = 5050;

/**
 * The sync service as an image on top of the Node runtime image, built once per daemon and reused while
 * neither the service's code nor the runtime changes (the tag is a hash of both).
 */
export class SyncSidecarImage {
  private readonly engine: DockerEngine;
  private readonly bundle: SyncServiceBundle;
  private readonly inFlight = new Map<string, Promise<string>>();

  constructor(engine: DockerEngine, bundle: SyncServiceBundle) {
    this.engine = engine;
    this.bundle = bundle;
  }

  ensure(runtime: RuntimeImage, log: (line: string) => void): Promise<string> {
    let pending = this.inFlight.get(runtime.imageId);
    if (!pending) {
      pending = this.build(runtime, log);
      // A failed build is retried by the next run; a good one is remembered.
      pending.catch(() => this.inFlight.delete(runtime.imageId));
      this.inFlight.set(runtime.imageId, pending);
    }
    return pending;
  }

  private async build(runtime: RuntimeImage, log: (line: string) => void): Promise<string> {
    const code = await readFile(await this.bundle.path());
    const tag = `${repository}:${createHash('sha256').update(code).update(runtime.imageId).digest('hex').slice(0, 16)}`;
    if (await this.engine.imageExists(tag)) return tag;
    log(`local:docker: building the sync service image ${tag}`);
    const dockerfile = `FROM ${runtime.ref}\nCOPY sync-service.mjs /app/sync-service.mjs\nEXPOSE ${syncServicePort}\nENTRYPOINT ["node", "/app/sync-service.mjs"]\n`;
    await this.engine.buildImage(
      {
        context: {
          tar: packContext([
            { type: 'content', name: 'Dockerfile', content: dockerfile },
            { type: 'content', name: 'sync-service.mjs', content: Buffer.from(code) },
          ]),
        },
        tags: [tag],
        labels: { [roleLabel]: 'sidecar' },
      },
      (line) => log(`sync service image: ${line}`),
    );
    return tag;
  }
}

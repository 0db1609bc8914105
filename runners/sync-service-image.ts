import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { SingleFlight } from '../core/single-flight.ts';
import { defaultSyncServicePort } from '../core/contract/instance-env.ts';
import { packContext } from '../docker/build-context.ts';
import type { ImageClient } from '../docker/container-engine.ts';
import { createLabels } from '../docker/labels.ts';
import type { RuntimeImage } from '../builders/runtime-image.ts';
import type { SyncServiceBundle } from './sync-service-bundle.ts';

const repository = 'testground-sync-service';

/**
 * The sync service as an image on top of the Node runtime image, built once per daemon and reused while
 * neither the service's code nor the runtime changes (the tag is a hash of both).
 */
export class SyncServiceImage {
  private readonly engine: ImageClient;
  private readonly bundle: Pick<SyncServiceBundle, 'path'>;
  private readonly daemonId: string;
  // A failed build is retried by the next run; a good one is remembered, by runtime image.
  private readonly images = new SingleFlight<string>({ retainSuccess: true });

  constructor(engine: ImageClient, bundle: Pick<SyncServiceBundle, 'path'>, daemonId: string) {
    this.engine = engine;
    this.bundle = bundle;
    this.daemonId = daemonId;
  }

  /** The image's tag, built on `runtime` when the engine does not have it yet. */
  ensure(runtime: RuntimeImage, log: (line: string) => void): Promise<string> {
    return this.images.run(runtime.imageId, () => this.build(runtime, log));
  }

  private async build(runtime: RuntimeImage, log: (line: string) => void): Promise<string> {
    const code = await readFile(await this.bundle.path());
    const tag = `${repository}:${createHash('sha256').update(code).update(runtime.imageId).digest('hex').slice(0, 16)}`;
    if (await this.engine.imageExists(tag)) return tag;
    log(`building the sync service image ${tag}`);
    const dockerfile = `FROM ${runtime.ref}\nCOPY sync-service.mjs /app/sync-service.mjs\nEXPOSE ${defaultSyncServicePort}\nENTRYPOINT ["node", "/app/sync-service.mjs"]\n`;
    await this.engine.buildImage(
      {
        context: {
          tar: packContext([
            { type: 'content', name: 'Dockerfile', content: dockerfile },
            { type: 'content', name: 'sync-service.mjs', content: Buffer.from(code) },
          ]),
        },
        tags: [tag],
        labels: createLabels({ daemonId: this.daemonId, role: 'sync-service' }),
      },
      (line) => log(`sync service image: ${line}`),
    );
    return tag;
  }
}

import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { build as esbuild } from 'esbuild';
import { SingleFlight } from '../core/single-flight.ts';
import { nodeBundleOptions } from '../builders/node-bundle.ts';

/**
 * The sync service as one self-contained ES module file (`sync/service-entry.ts` bundled), which plain
 * `node` starts in about 100 ms: local:exec runs it as a process, local:docker copies it into the sync
 * service image. Built once per daemon, cached under `cacheDir` by the hash of its code.
 */
export class SyncServiceBundle {
  private readonly cacheDir: string;
  // Built once per daemon; a failed build is tried again by the next caller.
  private readonly built = new SingleFlight<string>({ retainSuccess: true });

  constructor(cacheDir: string) {
    this.cacheDir = cacheDir;
  }

  /** The bundle's path; the file name holds the hash of its content, so a changed service is rebuilt. */
  path(): Promise<string> {
    return this.built.run('bundle', () => this.build());
  }

  private async build(): Promise<string> {
    const bundled = await esbuild({
      ...nodeBundleOptions,
      entryPoints: [path.resolve(import.meta.dirname, '../sync/service-entry.ts')],
      write: false,
    });
    const code = bundled.outputFiles[0]!.contents;
    const file = path.join(
      this.cacheDir,
      `sync-service-${createHash('sha256').update(code).digest('hex').slice(0, 16)}.mjs`,
    );
    if (!existsSync(file)) {
      await mkdir(this.cacheDir, { recursive: true });
      const partial = `${file}.${randomBytes(4).toString('hex')}.tmp`;
      await writeFile(partial, code);
      await rename(partial, file);
    }
    return file;
  }
}

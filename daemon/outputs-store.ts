import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { pack as tarPack } from 'tar-stream';
import { NotFoundError } from '../core/errors.ts';
import { walkDir } from '../core/walk-dir.ts';
import type { MetricPoint } from '../core/metrics-summary.ts';
import { readRunMetricPoints } from './metrics-reader.ts';

/** Where runs keep their outputs: `<root>/<runner>/<plan>/<run_id>/<group>/<instance>/`. */
export class OutputsStore {
  private readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  runDir(runner: string, plan: string, runId: string): string {
    return path.join(this.root, runner, plan, runId);
  }

  /**
   * The runs' outputs as one `.tgz` stream whose entries are `<run_id>/<group>/<instance>/<file>`, built
   * while it is sent: runs of many instances never sit in memory. A run whose directory is gone is a
   * NotFoundError, not an empty archive that looks like a run which wrote nothing.
   */
  async archive(runs: readonly { runId: string; dir: string }[]): Promise<Readable> {
    for (const { runId, dir } of runs) await assertOutputsExist(runId, dir);
    const packer = tarPack();
    const gzip = createGzip();
    packer.pipe(gzip);
    (async () => {
      for (const { runId, dir } of runs) await addDirectory(packer, dir, runId);
      packer.finalize();
    })().catch((error: Error) => gzip.destroy(error));
    return gzip;
  }

  /** The metric points of the run's instances (daemon/metrics-reader.ts). */
  async metricPoints(runId: string, dir: string): Promise<MetricPoint[]> {
    await assertOutputsExist(runId, dir);
    return (await readRunMetricPoints(dir)).points;
  }
}

async function assertOutputsExist(runId: string, dir: string): Promise<void> {
  const found = await stat(dir).catch(() => undefined);
  if (!found?.isDirectory()) {
    throw new NotFoundError(
      `run ${runId} has no outputs directory on this daemon any more (removed by hand or by cleanup); nothing to collect`,
      [{ path: 'id', message: `the outputs of run ${runId} no longer exist` }],
    );
  }
}

/** Every regular file under the run's directory, in a fixed order; links and special files are left out. */
async function addDirectory(packer: ReturnType<typeof tarPack>, dir: string, name: string): Promise<void> {
  for (const entry of await walkDir(dir)) {
    if (entry.kind !== 'file') continue;
    const info = await stat(entry.absolute);
    const sink = packer.entry({
      name: `${name}/${entry.name}`,
      size: info.size,
      mode: 0o644,
      mtime: info.mtime,
    });
    // Read exactly the size in the header: a file still growing must not overrun its tar entry.
    await pipeline(createReadStream(entry.absolute, { start: 0, end: Math.max(info.size - 1, 0) }), sink);
  }
}

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ArtifactStore, artifactId, artifactOf } from '../../daemon/artifact-store.ts';
import { scratchDir } from '../helpers/processes.ts';
import { startTestRedis } from '../helpers/redis-server.ts';

describe('ArtifactStore (real Redis)', () => {
  let redis: Awaited<ReturnType<typeof startTestRedis>>;
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  before(async () => {
    redis = await startTestRedis();
    scratch = await scratchDir('artifact-store');
  });
  after(async () => {
    await redis.close();
    await scratch.remove();
  });

  const imageId = `sha256:${'ef'.repeat(32)}`;
  const setup = () => {
    let now = Date.parse('2026-02-01T00:00:00Z');
    const images = new Set([imageId]);
    const store = new ArtifactStore({
      redis: redis.client,
      prefix: `as${randomBytes(4).toString('hex')}`,
      images: { imageExists: async (ref) => images.has(ref) },
      now: () => new Date(now),
    });
    return { store, images, tick: (ms: number) => (now += ms) };
  };

  it('names an image by its image id and a bundle by its cache directory', () => {
    assert.equal(artifactId({ kind: 'image', imageId, cached: false }), imageId);
    assert.equal(
      artifactId({
        kind: 'bundle',
        path: '/home/.testground/cache/exec-node/0123abcd/bundle.mjs',
        cached: true,
      }),
      'bundle:0123abcd',
    );
  });

  it('records an artifact once: building it again keeps when and by which task it was first made', async () => {
    const { store, tick } = setup();
    const file = path.join(scratch.dir, 'cache', 'feedface', 'bundle.mjs');
    const first = await store.record(
      { kind: 'bundle', path: file, cached: false },
      { builder: 'exec:node', plan: 'example', task: 'task1' },
    );
    assert.deepEqual(first, {
      id: 'bundle:feedface',
      builder: 'exec:node',
      kind: 'bundle',
      path: file,
      plan: 'example',
      created: '2026-02-01T00:00:00.000Z',
      task: 'task1',
    });
    tick(60_000);
    const again = await store.record(
      { kind: 'bundle', path: file, cached: true },
      { builder: 'exec:node', plan: 'example', task: 'task2' },
    );
    assert.deepEqual(again, first);
    assert.deepEqual(await store.get('bundle:feedface'), first);
    assert.equal(await store.get('bundle:unknown'), undefined);
    assert.deepEqual(artifactOf(first), { kind: 'bundle', path: file, cached: true });
  });

  it('says whether the artifact is still there: the bundle on disk, the image in the engine', async () => {
    const { store, images } = setup();
    const file = path.join(scratch.dir, 'cache', 'c0ffee', 'bundle.mjs');
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, '// a bundle\n');
    const bundle = await store.record(
      { kind: 'bundle', path: file, cached: false },
      { builder: 'exec:node', plan: 'example', task: 't' },
    );
    const image = await store.record(
      { kind: 'image', imageId, cached: false },
      { builder: 'docker:node', plan: 'example', task: 't' },
    );
    assert.equal(await store.exists(bundle), true);
    assert.equal(await store.exists(image), true);
    await rm(file);
    images.clear();
    assert.equal(await store.exists(bundle), false, 'the bundle file is gone');
    assert.equal(await store.exists(image), false, 'the engine has no such image');
    assert.deepEqual(artifactOf(image), { kind: 'image', imageId, cached: true });
  });
});

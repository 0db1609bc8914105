import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ResolvedGroup } from '../../../core/run.ts';
import { clampToHost, formatBytes } from '../../../runners/local-docker/host-resource-clamp.ts';
import { MemoryTaskLog } from '../../helpers/memory-task-log.ts';

const group = (id: string, resources: ResolvedGroup['resources']): ResolvedGroup => ({
  id,
  instances: 1,
  builder: 'docker:node',
  buildConfig: {},
  resources,
  testParams: {},
  dependencies: [],
});

describe('clampToHost', () => {
  it('keeps what the host can give, clamps the rest to the host with one warning each', () => {
    const log = new MemoryTaskLog();
    const host = { cpus: 2, memoryBytes: 8 * 1024 ** 3 };
    const clamped = clampToHost(
      [
        group('fits', { cpus: 1.5, memoryBytes: 512 * 1024 ** 2 }),
        group('cpu', { cpus: 4 }),
        group('memory', { memoryBytes: 64 * 1024 ** 3 }),
        group('none', {}),
      ],
      host,
      log,
      'local:docker',
    );
    assert.deepEqual(Object.fromEntries(clamped), {
      fits: { cpus: 1.5, memoryBytes: 512 * 1024 ** 2 },
      cpu: { cpus: 2 },
      memory: { memoryBytes: 8 * 1024 ** 3 },
      none: {},
    });
    assert.deepEqual(log.lines, [
      'WARN local:docker: group cpu asks for 4 CPUs (resources.cpu) but the host has 2; using 2',
      'WARN local:docker: group memory asks for 64 GiB of memory (resources.memory) but the host has 8 GiB; using 8 GiB',
    ]);
  });

  it('leaves resources alone when the engine reports no capacity', () => {
    const log = new MemoryTaskLog();
    const clamped = clampToHost([group('g', { cpus: 64 })], { cpus: 0, memoryBytes: 0 }, log, 'local:docker');
    assert.deepEqual(clamped.get('g'), { cpus: 64 });
    assert.deepEqual(log.lines, []);
  });
});

describe('formatBytes', () => {
  it('writes whole units plainly and adds the exact count to fractions', () => {
    assert.equal(formatBytes(512), '512 bytes');
    assert.equal(formatBytes(512 * 1024 ** 2), '512 MiB');
    assert.equal(formatBytes(25_276_510_208), '23.5 GiB (25276510208 bytes)');
  });
});

import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { entryTarget } from '../../../runners/cluster-swarm/outputs-collector.ts';

describe("entryTarget: where an entry of an instance's outputs archive may go", () => {
  const root = '/outputs-root/g/0';
  it('drops the archived directory itself and keeps the rest under the instance directory', () => {
    assert.equal(entryTarget(root, 'outputs/'), undefined);
    assert.equal(entryTarget(root, 'outputs/result.json'), path.join(root, 'result.json'));
    assert.equal(entryTarget(root, 'outputs/sub/dir/file.txt'), path.join(root, 'sub/dir/file.txt'));
  });
  it('refuses any entry that would leave the instance directory', () => {
    assert.equal(entryTarget(root, 'outputs/../../escape'), undefined);
    assert.equal(entryTarget(root, '../etc/passwd'), undefined);
    assert.equal(entryTarget(root, 'outputs/a/../../b'), undefined);
  });
});

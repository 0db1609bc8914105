import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLabels, labelFilter } from '../../docker/labels.ts';

describe('createLabels', () => {
  it('labels an instance container with its run, daemon, plan, role, group and index', () => {
    assert.deepEqual(
      createLabels({
        runId: 'r1',
        daemonId: 'd1',
        role: 'instance',
        plan: 'example',
        group: 'single',
        instance: 0,
      }),
      {
        'testground.run_id': 'r1',
        'testground.daemon': 'd1',
        'testground.role': 'instance',
        'testground.plan': 'example',
        'testground.group': 'single',
        'testground.instance': '0',
      },
    );
  });

  it('leaves out what an object outside any run does not have, never the daemon', () => {
    assert.deepEqual(createLabels({ daemonId: 'd1', role: 'runtime-check' }), {
      'testground.daemon': 'd1',
      'testground.role': 'runtime-check',
    });
  });
});

describe('labelFilter', () => {
  it('matches a key with any value, or a key with one value', () => {
    assert.deepEqual(labelFilter({ 'testground.daemon': 'd1', 'testground.run_id': true }), [
      'testground.daemon=d1',
      'testground.run_id',
    ]);
  });

  it('refuses a key the engine could never match', () => {
    assert.throws(() => labelFilter({ 'a=b': 'c' }), /label key "a=b" cannot be used in a filter/);
  });
});

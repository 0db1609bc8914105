import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { ExecNodeBuilder } from '../../builders/exec-node.ts';
import { singleRunComposition } from '../../cli/single-composition.ts';
import { ValidationError } from '../../core/errors.ts';
import { parseComposition } from '../../plan/composition.ts';
import { parseManifest } from '../../plan/manifest.ts';
import { resolveComposition } from '../../plan/resolve-composition.ts';

/** The one run a composition without several [[runs]] resolves to. */
const resolveFirstRun = (...args: Parameters<typeof resolveComposition>) =>
  resolveComposition(...args).task.runs[0]!;

const manifest = parseManifest(`
name = "example"
[defaults]
builder = "exec:node"
runner = "local:exec"
[builders."exec:node"]
enabled = true
[runners."local:exec"]
enabled = true
[[testcases]]
name = "sync"
instances = { min = 2, max = 20, default = 2 }
  [testcases.params]
  n = { type = "int", default = 3 }
`);
const builder = new ExecNodeBuilder({ cacheDir: '/nonexistent', sdkEntry: '/nonexistent' });
const known = {
  builders: { 'exec:node': builder },
  runners: { 'local:exec': { configSchema: z.looseObject({}), accepts: 'bundle' as const } },
};

// The CLI sends this document as JSON; the daemon's own parser and resolver are the judges of it.
const submit = (options: Parameters<typeof singleRunComposition>[0]) =>
  parseComposition(JSON.stringify(singleRunComposition(options)));

describe('singleRunComposition (testground run single)', () => {
  it('makes one group named single that resolves like a hand-written composition', () => {
    const composition = submit({
      plan: 'example',
      testCase: 'sync',
      instances: 3,
      testParams: { n: '7' },
      runConfig: { timeout: '2m' },
      buildConfig: { entry: 'index.ts' },
    });
    const run = resolveFirstRun(composition, manifest, known);
    assert.equal(run.totalInstances, 3);
    assert.equal(run.timeoutMs, 120_000);
    assert.deepEqual(
      run.groups.map((g) => [g.id, g.instances, g.builder, g.testParams.n, g.buildConfig.entry]),
      [['single', 3, 'exec:node', '7', 'index.ts']],
    );
  });

  it('leaves out empty tables, so the daemon sees only what the user set', () => {
    const document = singleRunComposition({
      plan: 'example',
      testCase: 'sync',
      instances: 2,
      testParams: {},
      buildConfig: {},
      runConfig: {},
    });
    assert.deepEqual(document, {
      global: { plan: 'example', case: 'sync', total_instances: 2 },
      groups: [{ id: 'single', instances: { count: 2 } }],
    });
  });

  it('is refused by the daemon, naming both fields, when the instance count is 0', () => {
    assert.throws(
      () => submit({ plan: 'example', testCase: 'sync', instances: 0 }),
      (error: unknown) => {
        assert.ok(error instanceof ValidationError);
        const paths = error.details.map((detail) => detail.path);
        assert.ok(paths.includes('global.total_instances'), paths.join(', '));
        assert.ok(paths.includes('groups[0].instances.count'), paths.join(', '));
        return true;
      },
    );
  });
});

/**
 * docs/writing-plans.md cannot rot: the files its tutorial has the reader write are plans/ping-pong's, byte
 * for byte (writing-plans-tutorial.test.ts runs them); every composition it shows resolves against that
 * plan's manifest with the real builders' and runners' config keys, without a problem or a warning; and the
 * results it states (the refused mistake, the params precedence) are what the resolver does.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { baseImageSchema } from '../../builders/docker-node.ts';
import { nodeBuildConfigShape } from '../../builders/exec-node.ts';
import { ValidationError } from '../../core/errors.ts';
import type { Components } from '../../plan/check-config.ts';
import { parseComposition } from '../../plan/composition.ts';
import { parseManifest } from '../../plan/manifest.ts';
import { strictTable } from '../../plan/problems.ts';
import { resolveComposition } from '../../plan/resolve-composition.ts';
import { localDockerConfigSchema } from '../../runners/local-docker/local-docker-runner.ts';
import { localExecConfigSchema } from '../../runners/local-exec/local-exec-runner.ts';
import { compositionsOf, filesOf, readTutorial, tutorialPlanDir } from './tutorial-files.ts';

const tutorial = readTutorial();
const manifest = parseManifest(readFileSync(path.join(tutorialPlanDir, 'manifest.toml'), 'utf8'));
const known: Components = {
  builders: {
    'exec:node': { configSchema: strictTable(nodeBuildConfigShape), produces: 'bundle' },
    'docker:node': {
      configSchema: strictTable({ ...nodeBuildConfigShape, base_image: baseImageSchema }),
      produces: 'image',
    },
  },
  runners: {
    'local:exec': { configSchema: localExecConfigSchema, accepts: 'bundle' },
    'local:docker': { configSchema: localDockerConfigSchema, accepts: 'image' },
  },
};
const resolve = (text: string) => resolveComposition(parseComposition(text), manifest, known);

describe('docs/writing-plans.md', () => {
  const tutorialComposition = filesOf(tutorial).get('composition.toml') ?? '';

  it('has the reader write exactly the files of plans/ping-pong', () => {
    const written = filesOf(tutorial);
    assert.deepEqual([...written.keys()].sort(), readdirSync(tutorialPlanDir).sort());
    for (const [name, body] of written) {
      assert.equal(body, readFileSync(path.join(tutorialPlanDir, name), 'utf8'), `${name} in the tutorial`);
    }
  });

  it('shows compositions that resolve without a problem or a warning', () => {
    const shown = [tutorialComposition, ...compositionsOf(tutorial)];
    assert.ok(shown.length >= 4, `the reference shows compositions (${shown.length})`);
    for (const text of shown) {
      const { task, warnings } = resolve(text);
      assert.deepEqual(warnings, [], text);
      assert.equal(task.plan, 'ping-pong');
    }
  });

  it("gives the tutorial composition's instances and params as the tutorial says", () => {
    const [run] = resolve(tutorialComposition).task.runs;
    assert.deepEqual(
      run?.groups.map((group) => [group.id, group.instances, group.testParams]),
      [
        ['ping', 2, { role: 'ping', rounds: '5', hold: '10ms' }],
        ['pong', 2, { role: 'pong', rounds: '5', hold: '20ms' }],
      ],
    );
  });

  it('refuses the mistake it suggests with the message it quotes', () => {
    const mistake = tutorialComposition.replaceAll('percentage = 0.5', 'percentage = 0.75');
    const quoted = /`(global\.total_instances: the groups' instances add up to 6[^`]*)`/.exec(tutorial)?.[1];
    assert.ok(quoted, 'the tutorial quotes the refusal');
    assert.throws(
      () => resolve(mistake),
      (error: unknown) =>
        error instanceof ValidationError &&
        error.details.some((detail) => `${detail.path}: ${detail.message}` === quoted),
    );
  });

  it('resolves the [[runs]] example to the params the precedence section states', () => {
    const example = compositionsOf(tutorial).find((text) => text.includes('[[runs]]'));
    assert.ok(example, 'the reference shows a [[runs]] composition');
    const runs = resolve(example).task.runs;
    const paramsOf = (runId: string, groupId: string) =>
      runs.find((run) => run.id === runId)?.groups.find((group) => group.id === groupId)?.testParams;
    assert.deepEqual(paramsOf('large', 'far-pong'), { role: 'pong', rounds: '50', hold: '100ms' });
    assert.deepEqual(paramsOf('small', 'ping'), { role: 'ping', rounds: '5', hold: '10ms' });
    assert.deepEqual(
      runs.map((run) => [run.id, run.totalInstances, run.groups.map((group) => group.instances)]),
      [
        ['small', 2, [1, 1]],
        ['large', 20, [10, 10]],
      ],
    );
  });
});

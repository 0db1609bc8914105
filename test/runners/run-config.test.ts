/**
 * The runners' `run_config` schemas: what each runner understands, refused typos and values, and the
 * descriptions a person sees next to the accepted keys.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { z } from 'zod';
import { DockerEngine } from '../../docker/docker-engine.ts';
import {
  LocalDockerRunner,
  localDockerConfigSchema,
} from '../../runners/local-docker/local-docker-runner.ts';
import { LocalExecRunner, localExecConfigSchema } from '../../runners/local-exec/local-exec-runner.ts';
import type { RuntimeImageProvider } from '../../builders/runtime-image.ts';
import { problemsFromZod } from '../../plan/problems.ts';

const logger = pino({ level: 'silent' });
const syncService = { path: () => Promise.reject(new Error('not used')) };

// Worded as submission words them (plan/problems.ts), which is what a user reads.
function issues(schema: z.ZodType, value: unknown): string[] {
  const result = schema.safeParse(value, { reportInput: true });
  return result.success
    ? []
    : problemsFromZod(result.error, 'run_config').map((problem) => `${problem.path}: ${problem.message}`);
}

describe('runner config schemas', () => {
  it('each runner exposes its own', () => {
    assert.equal(new LocalExecRunner({ logger, syncService }).configSchema, localExecConfigSchema);
    const runtime = {} as Pick<RuntimeImageProvider, 'ensure' | 'hostRuntimeTag'>;
    const docker = new LocalDockerRunner({
      engine: new DockerEngine(),
      runtime,
      syncService,
      daemonId: 'd',
      logger,
    });
    assert.equal(docker.configSchema, localDockerConfigSchema);
  });

  it('local:exec understands timeout and network, and refuses anything else by name', () => {
    assert.deepEqual(issues(localExecConfigSchema, {}), []);
    assert.deepEqual(issues(localExecConfigSchema, { timeout: '1h30m', network: 'netns' }), []);
    assert.deepEqual(issues(localExecConfigSchema, { network: 'host' }), []);
    assert.deepEqual(
      issues(localExecConfigSchema, { timeout: '90', keep_containers: true, network: 'bridge' }),
      [
        'run_config.timeout: "90" is not a duration; use a number with a unit, like "90s" or "10m" (units: ns, us, ms, s, m, h; combine them as in "1h30m")',
        'run_config.network: "bridge" is not a network mode of local:exec; use "host" or "netns"',
        'run_config.keep_containers: unknown key "keep_containers"; accepted keys here: timeout, network',
      ],
    );
  });

  it('local:docker understands timeout and keep_containers (a boolean, or the text of one)', () => {
    for (const keep of [true, false, 'true', 'false']) {
      assert.deepEqual(issues(localDockerConfigSchema, { timeout: '90s', keep_containers: keep }), []);
    }
    assert.deepEqual(issues(localDockerConfigSchema, { keep_containers: 'yes', keep_container: true }), [
      'run_config.keep_containers: "yes" is not a yes/no value; use true or false',
      'run_config.keep_container: unknown key "keep_container"; accepted keys here: timeout, keep_containers',
    ]);
  });

  it('describes every key it accepts', () => {
    for (const schema of [localExecConfigSchema, localDockerConfigSchema]) {
      const json = z.toJSONSchema(schema) as { properties: Record<string, { description?: string }> };
      for (const [key, property] of Object.entries(json.properties)) {
        assert.ok(property.description && property.description.length > 20, `${key} has a description`);
      }
    }
    const docker = z.toJSONSchema(localDockerConfigSchema) as { properties: Record<string, unknown> };
    assert.deepEqual(Object.keys(docker.properties), ['timeout', 'keep_containers']);
  });
});

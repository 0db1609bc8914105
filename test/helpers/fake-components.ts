/**
 * A builder and a runner behind the real interfaces, for in-process tests of the orchestration core (task
 * runner, task service, API). They do no real work but behave as the contract says: builds can be held,
 * failed or counted, runs can be held and are stopped by their AbortSignal, and every instance ends with
 * the outcome the test scripted.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { Artifact } from '../../core/artifact.ts';
import { stableStringify } from '../../core/stable-stringify.ts';
import type { Components } from '../../plan/check-config.ts';
import { strictTable } from '../../plan/problems.ts';
import type { InstanceOutcome, InstanceResult } from '../../core/run.ts';
import type { BuildInput, Builder } from '../../builders/builder.ts';
import type { HealthcheckCheck, NotRemoved, RunInput, RunOutput, Runner } from '../../runners/runner.ts';

/** A promise the test resolves when it wants the held work to go on. */
export class Gate {
  readonly opened: Promise<void>;
  open: () => void = () => undefined;

  constructor() {
    this.opened = new Promise((resolve) => (this.open = resolve));
  }
}

export class FakeBuilder implements Builder {
  readonly id: string;
  readonly produces = 'bundle';
  readonly configSchema = strictTable({ entry: z.string().optional() });
  readonly builds: BuildInput[] = [];
  /** When set, every build waits for it (or for its AbortSignal). */
  gate: Gate | undefined;
  /** When set, builds fail with it. */
  failure: Error | undefined;
  private started: ((input: BuildInput) => void)[] = [];
  private readonly bundleRoot: string | undefined;

  /**
   * @param options.bundleRoot where to write each bundle, as `<root>/<hash of its inputs>/bundle.mjs` the
   *   way exec:node caches them, so its artifacts exist on disk; without it, bundles are paths under `/fake`.
   */
  constructor(id = 'exec:node', options: { bundleRoot?: string } = {}) {
    this.id = id;
    this.bundleRoot = options.bundleRoot;
  }

  /** Resolves with the next build's input once it has started. */
  nextBuild(): Promise<BuildInput> {
    return new Promise((resolve) => this.started.push(resolve));
  }

  async build(input: BuildInput): Promise<Artifact> {
    this.builds.push(input);
    for (const notify of this.started.splice(0)) notify(input);
    input.log.info(`${this.id}: fake build of ${input.planName}`);
    if (this.gate) await untilOpenedOrAborted(this.gate, input.signal);
    if (this.failure) throw this.failure;
    const hash = createHash('sha256')
      .update(stableStringify([this.id, input.planName, input.buildConfig, input.dependencies ?? []]))
      .digest('hex')
      .slice(0, 32);
    const bundle = path.join(this.bundleRoot ?? `/fake/${input.planName}`, hash, 'bundle.mjs');
    if (this.bundleRoot !== undefined) {
      await mkdir(path.dirname(bundle), { recursive: true });
      await writeFile(bundle, `// a fake bundle of ${input.planName}\n`);
    }
    return { kind: 'bundle', path: bundle, cached: false };
  }
}

export class FakeRunner implements Runner {
  readonly id: string;
  readonly accepts = 'bundle';
  /** Understands `timeout`, as every runner does. */
  readonly configSchema = strictTable({ timeout: z.string().optional() });
  readonly runs: RunInput[] = [];
  readonly interrupted: { runId: string; tempDir: string }[] = [];
  /** The active run ids each `removeLeftovers` call was told to keep. */
  readonly leftoverSweeps: ReadonlySet<string>[] = [];
  /** When set, every run waits for it (or for its AbortSignal) before its instances end. */
  gate: Gate | undefined;
  /** When set, runs throw it (an infrastructure failure). */
  failure: Error | undefined;
  /** Runs throw these instead, by the run's name in its composition (`default`, or a [[runs]] id). */
  failures = new Map<string, Error>();
  /** When set, each instance writes `run.out` (`<run id> <group> <index>`) where a real one would. */
  writesOutputs = false;
  /** The outcome of each instance, by `group/index` (or `<run name>/group/index`); `success` when not listed. */
  outcomes = new Map<string, InstanceOutcome>();
  /** Resolves each time a run starts, with its input. */
  private started: ((input: RunInput) => void)[] = [];

  constructor(id = 'local:exec') {
    this.id = id;
  }

  /** Resolves with the next run's input once it has started. */
  nextRun(): Promise<RunInput> {
    return new Promise((resolve) => this.started.push(resolve));
  }

  async run(input: RunInput): Promise<RunOutput> {
    this.runs.push(input);
    for (const notify of this.started.splice(0)) notify(input);
    if (this.gate) await untilOpenedOrAborted(this.gate, input.signal);
    const failure = this.failures.get(input.run.id) ?? this.failure;
    if (failure) throw failure;
    const instances: InstanceResult[] = [];
    for (const group of input.run.groups) {
      for (let index = 0; index < group.instances; index += 1) {
        const outcome: InstanceOutcome = input.signal.aborted
          ? 'canceled'
          : (this.outcomes.get(`${input.run.id}/${group.id}/${index}`) ??
            this.outcomes.get(`${group.id}/${index}`) ??
            'success');
        const reason = outcome === 'success' ? 'scripted success' : `scripted ${outcome}`;
        if (this.writesOutputs) {
          const dir = path.join(input.outputsDir, group.id, String(index));
          await mkdir(dir, { recursive: true });
          await writeFile(path.join(dir, 'run.out'), `${input.runId} ${group.id} ${index}\n`);
        }
        input.log.instanceEnd(group.id, index, outcome, reason);
        instances.push({ group: group.id, index, outcome, reason, exitCode: 0, signal: null });
      }
    }
    return { instances };
  }

  async cleanupInterrupted(runId: string, tempDir: string): Promise<void> {
    this.interrupted.push({ runId, tempDir });
  }

  async healthcheck(): Promise<HealthcheckCheck[]> {
    return [{ name: 'fake', ok: true, message: 'a fake runner is always healthy' }];
  }

  async removeLeftovers(
    activeRunIds: ReadonlySet<string>,
    _onNotRemoved?: (item: NotRemoved) => void,
  ): Promise<Record<string, number>> {
    this.leftoverSweeps.push(new Set(activeRunIds));
    return {};
  }
}

async function untilOpenedOrAborted(gate: Gate, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return;
  await Promise.race([
    gate.opened,
    new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true })),
  ]);
}

/** This daemon's components as submission sees them: each id with the config keys it understands. */
export function componentsOf(builders: readonly FakeBuilder[], runners: readonly FakeRunner[]): Components {
  return {
    builders: Object.fromEntries(builders.map((builder) => [builder.id, builder])),
    runners: Object.fromEntries(runners.map((runner) => [runner.id, runner])),
  };
}

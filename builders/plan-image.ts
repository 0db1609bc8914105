/** What the docker builders share about the images they make: tag, labels, and how engine failures read. */
import { BuildError, DependencyError } from '../core/errors.ts';
import { createLabels, type Labels } from '../docker/labels.ts';

/** `testground-plan/<plan>:<hash>`, the plan name folded into what image references allow. */
export function planImageTag(planName: string, contentHash: string): string {
  const repository =
    planName
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, '-')
      .replace(/^[._-]+|[._-]+$/g, '') || 'plan';
  return `testground-plan/${repository}:${contentHash.slice(0, 24)}`;
}

export function planImageLabels(planName: string, daemonId: string): Labels {
  return createLabels({ daemonId, role: 'plan-image', plan: planName });
}

/**
 * Runs one engine step of a build. An unreachable engine and a cancel pass through unchanged (they are
 * not the plan's fault); anything else becomes a {@link BuildError} carrying the engine's message.
 */
export async function dockerStep<T>(builderId: string, what: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (error instanceof DependencyError || error instanceof BuildError) throw error;
    if ((error as Error).name === 'AbortError') throw error;
    throw new BuildError(`${builderId}: ${what}: ${(error as Error).message}`);
  }
}

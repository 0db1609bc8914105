import type { Logger } from 'pino';

/** One step of taking the daemon down, named for the log. */
export interface ShutdownStep {
  name: string;
  run: () => unknown;
}

/**
 * Runs every step in order, each in its own try/catch (as BullMQ's `Worker.close` does), so one that
 * fails or throws never skips the rest; each failure is logged once, here. Never rejects; returns the
 * names of the steps that failed.
 */
export async function runShutdownSteps(steps: readonly ShutdownStep[], logger: Logger): Promise<string[]> {
  const failed: string[] = [];
  for (const step of steps) {
    try {
      await step.run();
    } catch (error) {
      failed.push(step.name);
      logger.error({ err: error, step: step.name }, `shutdown: could not ${step.name}; going on`);
    }
  }
  return failed;
}

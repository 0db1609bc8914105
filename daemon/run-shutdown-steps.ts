import type { Logger } from 'pino';

/** One step of taking the daemon down, named for the log. */
export interface ShutdownStep {
  name: string;
  run: () => unknown;
  /** How long the step may take before the shutdown goes on without it; default {@link defaultStepTimeoutMs}. */
  timeoutMs?: number;
}

/** A client stuck on a Redis that restarted empty, or a socket that never drains, must not hold the exit. */
export const defaultStepTimeoutMs = 15_000;

/**
 * Runs every step in order, each in its own try/catch (as BullMQ's `Worker.close` does), so one that
 * fails, throws or does not finish in its time never skips the rest; each failure is logged once, here.
 * Never rejects; returns the names of the steps that failed or timed out.
 */
export async function runShutdownSteps(steps: readonly ShutdownStep[], logger: Logger): Promise<string[]> {
  const failed: string[] = [];
  for (const step of steps) {
    const timeoutMs = step.timeoutMs ?? defaultStepTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    try {
      const result = await Promise.race([Promise.resolve().then(() => step.run()), timedOut]);
      if (result === 'timeout') {
        failed.push(step.name);
        logger.error(
          { step: step.name, timeoutMs },
          `shutdown: ${step.name} did not finish within ${timeoutMs} ms; going on without it`,
        );
      }
    } catch (error) {
      failed.push(step.name);
      logger.error({ err: error, step: step.name }, `shutdown: could not ${step.name}; going on`);
    } finally {
      clearTimeout(timer);
    }
  }
  return failed;
}

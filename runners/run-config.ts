/**
 * Pieces of the runners' `run_config` schemas that more than one runner understands, with the words a
 * person reading the accepted keys needs.
 */
import { z } from 'zod';
import { durationHint, durationToMs } from '../core/contract/units.ts';

/** `timeout`: how long instances may run; the composition resolver turns it into `ResolvedRun.timeoutMs`. */
export const runTimeoutSchema = z
  .string()
  .refine((value) => durationToMs(value) !== undefined, {
    error: (issue) => `${JSON.stringify(issue.input)} is not a duration; ${durationHint}`,
  })
  .describe(
    'How long the instances may run before they are stopped and end as timeout, like "90s" or "10m"; default "10m"',
  );

/** A yes/no setting: a TOML or JSON boolean, or the text `--run-config key=true` sends. */
export const booleanFlagSchema = z.union([z.boolean(), z.enum(['true', 'false'])], {
  error: (issue) => `${JSON.stringify(issue.input)} is not a yes/no value; use true or false`,
});

/** Reads a {@link booleanFlagSchema} value; anything else (absent included) is `false`. */
export function isFlagSet(value: unknown): boolean {
  return value === true || value === 'true';
}

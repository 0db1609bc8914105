import { ValidationError } from './errors.ts';

/** Milliseconds per unit, for the units Go's `time.ParseDuration` accepts (compositions come from Go users). */
const UNIT_MS: Readonly<Record<string, number>> = Object.freeze({
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3, // U+00B5 micro sign
  μs: 1e-3, // U+03BC greek mu: Go accepts both spellings
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
});

const HINT =
  'use a number with a unit, like "90s" or "10m" (units: ns, us, ms, s, m, h; combine them as in "1h30m")';

/**
 * Parses a Go-style duration (`500ms`, `30s`, `10m`, `1h30m`, `1.5s`) into milliseconds.
 *
 * Bare numbers (`10`, `"10"`) are rejected on purpose: seconds or milliseconds would be a guess, and a
 * wrong guess turns a 10-minute timeout into a 10-millisecond one. Negative durations are rejected too.
 * The result may be fractional for sub-millisecond units.
 *
 * @param path names the field in the error, e.g. `run_config.timeout`.
 * @throws ValidationError naming `path` and the value, listing what is accepted.
 */
export function parseDuration(value: string | number, path: string): number {
  const ms = typeof value === 'string' ? durationToMs(value) : undefined;
  if (ms === undefined) {
    const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
    const message = `${shown} is not a duration; ${HINT}`;
    throw new ValidationError(`${path}: ${message}`, [{ path, message }]);
  }
  return ms;
}

function durationToMs(text: string): number | undefined {
  // Longer units come first in the alternation so "ms" is not read as "m" followed by garbage.
  const units = 'ns|us|µs|μs|ms|s|m|h';
  const number = String.raw`(?:\d+(?:\.\d*)?|\.\d+)`;
  if (!new RegExp(`^(?:${number}(?:${units}))+$`, 'u').test(text)) return undefined;
  let total = 0;
  for (const match of text.matchAll(new RegExp(`(${number})(${units})`, 'gu'))) {
    const [, amount, unit] = match;
    const perUnit = unit === undefined ? undefined : UNIT_MS[unit];
    if (amount === undefined || perUnit === undefined) return undefined;
    total += Number(amount) * perUnit;
  }
  if (!Number.isFinite(total)) return undefined;
  // Binary floating point turns 1.1s into 1100.0000000000002 ms; nanoseconds are the finest unit, so
  // rounding to them loses nothing the user wrote.
  return Math.round(total * 1e6) / 1e6;
}

/**
 * Durations and byte sizes as the original Testground writes them (Go's `time.ParseDuration`,
 * go-humanize's `ParseBytes`): parsed the same way by the daemon (compositions, manifests) and by the SDK
 * (`durationParam`, `sizeParam`). Dependency-free, because plans bundle it.
 */

/** Milliseconds per unit, for the units Go's `time.ParseDuration` accepts (compositions come from Go users). */
const unitMs: Readonly<Record<string, number>> = Object.freeze({
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3, // U+00B5 micro sign
  μs: 1e-3, // U+03BC greek mu: Go accepts both spellings
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
});

/** What a duration looks like, for messages. */
export const durationHint =
  'use a number with a unit, like "90s" or "10m" (units: ns, us, ms, s, m, h; combine them as in "1h30m")';

/**
 * A Go-style duration (`500ms`, `30s`, `10m`, `1h30m`, `1.5s`) in milliseconds, or undefined.
 *
 * Bare numbers (`10`) are not durations on purpose: seconds or milliseconds would be a guess, and a wrong
 * guess turns a 10-minute timeout into a 10-millisecond one. Negative durations are not either. The result
 * may be fractional for sub-millisecond units.
 */
export function durationToMs(text: string): number | undefined {
  // Longer units come first in the alternation so "ms" is not read as "m" followed by garbage.
  const units = 'ns|us|µs|μs|ms|s|m|h';
  const number = String.raw`(?:\d+(?:\.\d*)?|\.\d+)`;
  if (!new RegExp(`^(?:${number}(?:${units}))+$`, 'u').test(text)) return undefined;
  let total = 0;
  for (const match of text.matchAll(new RegExp(`(${number})(${units})`, 'gu'))) {
    const [, amount, unit] = match;
    const perUnit = unit === undefined ? undefined : unitMs[unit];
    if (amount === undefined || perUnit === undefined) return undefined;
    total += Number(amount) * perUnit;
  }
  if (!Number.isFinite(total)) return undefined;
  // Binary floating point turns 1.1s into 1100.0000000000002 ms; nanoseconds are the finest unit, so
  // rounding to them loses nothing the user wrote.
  return Math.round(total * 1e6) / 1e6;
}

/**
 * Bytes per unit, lower-cased. The semantics follow go-humanize's `ParseBytes`, which the original
 * Testground and its Go SDK use: bare letters and `kB`/`MB`/… are decimal (powers of 1000), `Ki`/`KiB`/…
 * are binary (powers of 1024). So `100k` is 100 000 bytes and `512MiB` is 536 870 912 bytes.
 */
const unitBytes: Readonly<Record<string, number>> = Object.freeze({
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  ki: 2 ** 10,
  kib: 2 ** 10,
  m: 1e6,
  mb: 1e6,
  mi: 2 ** 20,
  mib: 2 ** 20,
  g: 1e9,
  gb: 1e9,
  gi: 2 ** 30,
  gib: 2 ** 30,
  t: 1e12,
  tb: 1e12,
  ti: 2 ** 40,
  tib: 2 ** 40,
  p: 1e15,
  pb: 1e15,
  pi: 2 ** 50,
  pib: 2 ** 50,
});

/** What a byte size looks like, for messages. */
export const byteSizeHint =
  'use a whole number of bytes or a number with a unit, like "512MiB", "1GiB", "64MB" or "100k" ' +
  '(k/KB/MB/GB are powers of 1000, KiB/MiB/GiB powers of 1024)';

/**
 * A byte size (`512MiB`, `1GiB`, `64MB`, `100k`, `1.5GiB`; a plain number is bytes) in whole bytes, rounded
 * down, or undefined. Unit letters are case-insensitive; a space before the unit is allowed.
 */
export function byteSizeToBytes(value: string | number): number | undefined {
  return typeof value === 'number' ? numberToBytes(value) : textToBytes(value);
}

function numberToBytes(value: number): number | undefined {
  return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

function textToBytes(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([A-Za-z]*)\s*$/.exec(text);
  if (!match) return undefined;
  const [, amount, unit] = match;
  if (amount === undefined || unit === undefined) return undefined;
  const lower = unit.toLowerCase();
  if (!Object.hasOwn(unitBytes, lower)) return undefined;
  const perUnit = unitBytes[lower];
  if (perUnit === undefined) return undefined;
  // A fraction of a byte is meaningless; a fraction of a larger unit is fine ("1.5GiB").
  if (perUnit === 1 && amount.includes('.')) return undefined;
  const bytes = Math.floor(Number(amount) * perUnit);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/**
 * Bits per second per unit, lower-cased. `bit` units are the ones tc writes (`kbit`, `mbit`, `gbit`, powers
 * of 1000; `kibit`, `mibit`, `gibit`, powers of 1024); `bps` units are bits per second as network people
 * write them (`10Mbps` is 10 000 000 bits/s), which is NOT tc's meaning (tc's `mbps` is megabytes).
 */
const unitBitsPerSecond: Readonly<Record<string, number>> = Object.freeze({
  bit: 1,
  kbit: 1e3,
  mbit: 1e6,
  gbit: 1e9,
  tbit: 1e12,
  kibit: 2 ** 10,
  mibit: 2 ** 20,
  gibit: 2 ** 30,
  tibit: 2 ** 40,
  bps: 1,
  kbps: 1e3,
  mbps: 1e6,
  gbps: 1e9,
  tbps: 1e12,
});

/** What a bandwidth looks like, for messages. */
export const bandwidthHint =
  'use whole bits per second (0 for unlimited) or a number with a unit, like "10Mbit", "512kbit", "1.5Gbit" ' +
  'or "100Mbps" (bit units: kbit, Mbit, Gbit, Tbit are powers of 1000, Kibit, Mibit, Gibit powers of 1024; ' +
  'bps units are bits per second too)';

/**
 * A bandwidth (`10Mbit`, `512kbit`, `1.5Gbit`, `100Mbps`, `10Mbit/s`; a plain number is bits per second) in
 * whole bits per second, rounded down, or undefined. Unit letters are case-insensitive; a space before the
 * unit is allowed. Byte units (`MB/s`, `MiB`) are refused rather than guessed.
 */
export function bandwidthToBitsPerSecond(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  const match = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([A-Za-z]*)(\/s)?\s*$/.exec(value);
  if (!match) return undefined;
  const [, amount, unit, perSecond] = match;
  if (amount === undefined || unit === undefined) return undefined;
  const lower = unit.toLowerCase();
  if (lower === '') {
    // A bare number is bits per second; "/s" alone says nothing about bits or bytes.
    if (perSecond !== undefined || amount.includes('.')) return undefined;
    return bandwidthToBitsPerSecond(Number(amount));
  }
  // "10Mbps/s" says per second twice.
  if (perSecond !== undefined && lower.endsWith('ps')) return undefined;
  if (!Object.hasOwn(unitBitsPerSecond, lower)) return undefined;
  const perUnit = unitBitsPerSecond[lower];
  if (perUnit === undefined) return undefined;
  // A fraction of a bit is meaningless; a fraction of a larger unit is fine ("1.5Gbit").
  if (perUnit === 1 && amount.includes('.')) return undefined;
  const bits = Math.floor(Number(amount) * perUnit);
  return Number.isSafeInteger(bits) ? bits : undefined;
}

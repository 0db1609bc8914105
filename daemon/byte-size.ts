import { ValidationError } from './errors.ts';

/**
 * Bytes per unit, lower-cased. The semantics follow go-humanize's `ParseBytes`, which the original
 * Testground and its Go SDK use: bare letters and `kB`/`MB`/… are decimal (powers of 1000), `Ki`/`KiB`/…
 * are binary (powers of 1024). So `100k` is 100 000 bytes and `512MiB` is 536 870 912 bytes.
 */
const UNIT_BYTES: Readonly<Record<string, number>> = Object.freeze({
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

const HINT =
  'use a whole number of bytes or a number with a unit, like "512MiB", "1GiB", "64MB" or "100k" ' +
  '(k/KB/MB/GB are powers of 1000, KiB/MiB/GiB powers of 1024)';

/**
 * Parses a byte size (`512MiB`, `1GiB`, `64MB`, `100k`, `1.5GiB`; a plain number is bytes) into bytes,
 * rounded down to a whole byte. Unit letters are case-insensitive; a space before the unit is allowed.
 *
 * @param path names the field in the error, e.g. `groups[0].resources.memory`.
 * @throws ValidationError naming `path` and the value, listing what is accepted.
 */
export function parseByteSize(value: string | number, path: string): number {
  const bytes = typeof value === 'number' ? numberToBytes(value) : textToBytes(value);
  if (bytes === undefined) {
    const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
    const message = `${shown} is not a byte size; ${HINT}`;
    throw new ValidationError(`${path}: ${message}`, [{ path, message }]);
  }
  return bytes;
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
  if (!Object.hasOwn(UNIT_BYTES, lower)) return undefined;
  const perUnit = UNIT_BYTES[lower];
  if (perUnit === undefined) return undefined;
  // A fraction of a byte is meaningless; a fraction of a larger unit is fine ("1.5GiB").
  if (perUnit === 1 && amount.includes('.')) return undefined;
  const bytes = Math.floor(Number(amount) * perUnit);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

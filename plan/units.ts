/**
 * Durations and byte sizes in what users submit: the contract's parsers, with errors that name the field,
 * the value and what would be accepted.
 */
import { byteSizeHint, byteSizeToBytes, durationHint, durationToMs } from '../core/contract/units.ts';
import { ValidationError } from '../core/errors.ts';

/**
 * Parses a Go-style duration (`500ms`, `30s`, `10m`, `1h30m`) into milliseconds.
 *
 * @param path names the field in the error, e.g. `run_config.timeout`.
 * @throws ValidationError naming `path` and the value, listing what is accepted.
 */
export function parseDuration(value: string | number, path: string): number {
  const ms = typeof value === 'string' ? durationToMs(value) : undefined;
  if (ms === undefined) throw invalid(value, path, 'a duration', durationHint);
  return ms;
}

/**
 * Parses a byte size (`512MiB`, `1GiB`, `64MB`, `100k`; a plain number is bytes) into bytes.
 *
 * @param path names the field in the error, e.g. `groups[0].resources.memory`.
 * @throws ValidationError naming `path` and the value, listing what is accepted.
 */
export function parseByteSize(value: string | number, path: string): number {
  const bytes = byteSizeToBytes(value);
  if (bytes === undefined) throw invalid(value, path, 'a byte size', byteSizeHint);
  return bytes;
}

function invalid(value: string | number, path: string, what: string, hint: string): ValidationError {
  const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
  const message = `${shown} is not ${what}; ${hint}`;
  return new ValidationError(`${path}: ${message}`, [{ path, message }]);
}

/**
 * A number of CPUs as compositions write it: a number (`0.5`, `2`), the same as text (`"0.5"`), or
 * Kubernetes millicores (`"1500m"` is 1.5 CPUs), which compositions written for the original's
 * cluster:k8s runner use. Undefined unless it is positive.
 */
export function parseCpus(value: number | string): number | undefined {
  let cpus = Number.NaN;
  if (typeof value === 'number') cpus = value;
  else {
    const text = value.trim();
    const millicores = /^(\d+)m$/.exec(text);
    if (millicores?.[1] !== undefined) cpus = Number(millicores[1]) / 1000;
    else if (/^\d*\.?\d+$/.test(text)) cpus = Number(text);
  }
  return Number.isFinite(cpus) && cpus > 0 ? cpus : undefined;
}

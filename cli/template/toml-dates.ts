/**
 * TOML dates and times as the original saw them: BurntSushi/toml decodes each to a Go `time.Time`, which
 * prints with Go's `String()` and encodes back as RFC 3339 (local kinds without a zone).
 */
import type { TomlDate } from './values.ts';

/** `1979-05-27T07:32:00.500+01:00` → date, time, fraction digits (no trailing zeros) and offset. */
function split(date: TomlDate): { day?: string; time?: string; fraction: string; offset?: string } {
  const text = date.toISOString();
  const match = /^(?:(\d{4}-\d{2}-\d{2}))?T?(?:(\d{2}:\d{2}:\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?$/.exec(
    text,
  );
  if (!match) return { day: text, fraction: '' };
  const [, day, time, fraction = '', offset] = match;
  return {
    ...(day ? { day } : {}),
    ...(time ? { time } : {}),
    fraction: fraction.replace(/0+$/, ''),
    ...(offset ? { offset } : {}),
  };
}

/** The TOML text of a date, as BurntSushi/toml's encoder writes it. */
export function tomlDateText(date: TomlDate): string {
  const { day, time, fraction, offset } = split(date);
  const clock = time ? `${time}${fraction ? `.${fraction}` : ''}` : '';
  if (day && clock) return `${day}T${clock}${offset ?? ''}`;
  return day ?? clock;
}

/** Go's `time.Time.String()` of a decoded TOML date: `1979-05-27 07:32:00 +0000 UTC`. */
export function goTimeString(date: TomlDate): string {
  const { day, time, fraction, offset } = split(date);
  const clock = `${time ?? '00:00:00'}${fraction ? `.${fraction}` : ''}`;
  const zone =
    offset === undefined
      ? `+0000 ${day && time ? 'datetime' : day ? 'date' : 'time'}-local`
      : offset === 'Z'
        ? '+0000 UTC'
        : `${offset.replace(':', '')} ${offset.replace(':', '')}`;
  return `${day ?? '0000-01-01'} ${clock} ${zone}`;
}

/** How long from `from` to `to` (or now), as people read it: 850 ms, 12.3 s, 4 min 05 s, 2 h 10 min. */
export function duration(from: string, to: string | null | undefined, now = Date.now()): string {
  return formatMs((to ? Date.parse(to) : now) - Date.parse(from));
}

export function formatMs(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 60) return `${minutes} min ${String(Math.floor((ms % 60_000) / 1000)).padStart(2, '0')} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
}

// One formatter for every timestamp: Date.toLocaleString builds a new one per call, which alone made the
// first drawing of 1,000 rows take a second.
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'short', timeStyle: 'medium' });

/** A timestamp in the reader's local time, to the second. */
export function when(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dateTime.format(date);
}

/** A measurement with few enough digits to compare at a glance. */
export function number(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return value.toLocaleString();
  return Math.abs(value) >= 100 ? value.toFixed(1) : value.toPrecision(4);
}

/** `b` against `a` in percent, signed; "–" when `a` is 0 (no base to compare with). */
export function percentChange(a: number, b: number): string {
  if (a === 0) return b === 0 ? '0%' : '–';
  const change = ((b - a) / Math.abs(a)) * 100;
  return `${change > 0 ? '+' : ''}${change.toFixed(1)}%`;
}

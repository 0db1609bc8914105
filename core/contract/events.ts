/**
 * The events instances print (CONTRACT §4), one JSON object per line. Our SDK writes the seed's shape
 * `{"event":{"type":…}}` ({@link encodeEventLine}); the daemon reads it and the keyed
 * `{"event":{"success_event":{…}}}` of the newer official SDKs ({@link parseEventLine}). Dependency-free,
 * because plans bundle it.
 */

/** The run environment as the `start` event reports it. */
export interface RunEnvSummary {
  plan: string;
  case: string;
  run: string;
  params: Record<string, string>;
  instances: number;
  outputs_path: string;
  network: string;
  group: string;
  group_instances: number;
}

/** How an instance ended, as its `finish` event says. */
export type FinishOutcome = 'ok' | 'failure' | 'crash';

/** One event in the seed's shape, as it appears under the `event` key of a line. */
export type SdkEvent =
  | { type: 'start'; runenv: RunEnvSummary }
  | { type: 'message'; message: string }
  | { type: 'finish'; outcome: 'ok' }
  | { type: 'finish'; outcome: 'failure'; error: string }
  | { type: 'finish'; outcome: 'crash'; error: string; stacktrace: string }
  | { type: 'stage_start'; name: string; group: string }
  | { type: 'stage_end'; name: string; group: string };

/** Who wrote an event line, and when. */
export interface EventLineSource {
  runId: string;
  groupId: string;
  /** Unix time in nanoseconds. */
  ts: bigint;
}

/**
 * One event line, without its newline:
 * `{"ts":<ns>,"msg":"","group_id":"<group>","run_id":"<run>","event":{…}}`.
 */
export function encodeEventLine(source: EventLineSource, event: SdkEvent): string {
  // Built by hand so that `ts` keeps every nanosecond digit: a JS number cannot hold them.
  return `{"ts":${source.ts},"msg":"","group_id":${JSON.stringify(source.groupId)},"run_id":${JSON.stringify(source.runId)},"event":${JSON.stringify(event)}}`;
}

/** One event an instance recorded; `ts` is its Unix time in nanoseconds when the line carried one. */
export type InstanceEvent = (
  | { kind: 'start' }
  | { kind: 'message'; message: string }
  | { kind: 'success' }
  | { kind: 'failure'; error: string }
  | { kind: 'crash'; error: string; stacktrace?: string }
  | { kind: 'stage_start'; name: string }
  | { kind: 'stage_end'; name: string }
  | { kind: 'other'; type: string }
) & { ts?: number };

type Body = Record<string, unknown>;

/**
 * Parses one stdout line into an event; undefined for anything else (plain output, JSON logs without
 * an `event` object). Never throws.
 */
export function parseEventLine(line: string): InstanceEvent | undefined {
  // Runs on every line of every instance: reject plain output before paying for JSON.parse.
  if (!line.includes('"event"')) return undefined;
  const start = line.trimStart();
  if (start.charCodeAt(0) !== 123 /* { */) return undefined;
  let envelope: unknown;
  try {
    envelope = JSON.parse(start);
  } catch {
    return undefined;
  }
  if (!isObject(envelope) || !isObject(envelope.event)) return undefined;
  const event = envelope.event;
  const parsed = typeof event.type === 'string' ? fromSeedShape(event.type, event) : fromKeyedShape(event);
  if (parsed === undefined) return undefined;
  if (typeof envelope.ts === 'number') parsed.ts = envelope.ts;
  return parsed;
}

function fromSeedShape(type: string, event: Body): InstanceEvent {
  switch (type) {
    case 'start':
      return { kind: 'start' };
    case 'message':
      return { kind: 'message', message: text(event.message) };
    case 'finish':
      switch (event.outcome) {
        case 'ok':
        case 'success':
          return { kind: 'success' };
        case 'failure':
          return { kind: 'failure', error: text(event.error) };
        case 'crash':
          return crash(event);
        default:
          return { kind: 'other', type: `finish:${text(event.outcome)}` };
      }
    case 'stage_start':
    case 'stage_end':
      return { kind: type, name: text(event.name ?? event.stage) };
    default:
      return { kind: 'other', type };
  }
}

function fromKeyedShape(event: Body): InstanceEvent | undefined {
  for (const key in event) {
    if (!key.endsWith('_event')) continue;
    const raw = event[key];
    const body: Body = isObject(raw) ? raw : {};
    switch (key) {
      case 'start_event':
        return { kind: 'start' };
      case 'message_event':
        return { kind: 'message', message: text(body.message) };
      case 'success_event':
        return { kind: 'success' };
      case 'failure_event':
        return { kind: 'failure', error: text(body.error) };
      case 'crash_event':
        return crash(body);
      case 'stage_start_event':
        return { kind: 'stage_start', name: text(body.name) };
      case 'stage_end_event':
        return { kind: 'stage_end', name: text(body.name) };
      default:
        return { kind: 'other', type: key.slice(0, -'_event'.length) };
    }
  }
  return undefined;
}

function crash(body: Body): InstanceEvent {
  const stacktrace = body.stacktrace;
  return typeof stacktrace === 'string' && stacktrace !== ''
    ? { kind: 'crash', error: text(body.error), stacktrace }
    : { kind: 'crash', error: text(body.error) };
}

// Messages and errors are strings in every known SDK; anything else is shown rather than dropped.
function text(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined || value === null) return '';
  return JSON.stringify(value) ?? String(value);
}

function isObject(value: unknown): value is Body {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An event as a person reads it in a log (`started`, `finished: failure: …`, a message's text). */
export function describeEvent(event: InstanceEvent): string | undefined {
  switch (event.kind) {
    case 'message':
      return event.message;
    case 'start':
      return 'started';
    case 'success':
      return 'finished: ok';
    case 'failure':
      return `finished: failure: ${event.error}`;
    case 'crash':
      return `finished: crash: ${event.error}`;
    case 'stage_start':
      return `stage ${event.name} started`;
    case 'stage_end':
      return `stage ${event.name} ended`;
    default:
      return undefined;
  }
}

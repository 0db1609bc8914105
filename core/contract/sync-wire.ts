/**
 * The sync service's wire format (CONTRACT §3), written once for both sides: clients encode requests and
 * decode responses with it, the service encodes its responses with it. Dependency-free, because plans
 * bundle it.
 */
import { runEventsTopic } from './well-known.ts';

/** The operations a request may carry, exactly one per request. */
export const syncOperations = ['publish', 'subscribe', 'barrier', 'signal_entry'] as const;

export type SyncOperationName = (typeof syncOperations)[number];

/** One operation, as it appears in a request next to the request's `id`. */
export type SyncOperation =
  | { publish: { topic: string; payload: unknown } }
  | { subscribe: { topic: string } }
  | { barrier: { state: string; target: number } }
  | { signal_entry: { state: string } };

/**
 * A request frame. Ids are chosen by the client, one per request on its connection; a cancel names the
 * id of the subscription or barrier to stop.
 */
export type SyncRequestFrame = ({ id: string } & SyncOperation) | { id: string; is_cancel: true };

/** The text frame of a request; throws what `JSON.stringify` throws (BigInt, cycles in the payload). */
export function encodeSyncRequest(id: string, operation: SyncOperation): string {
  return JSON.stringify({ id, ...operation });
}

/** The text frame that stops the subscription or barrier sent under `id`. */
export function encodeCancelRequest(id: string): string {
  return JSON.stringify({ id, is_cancel: true });
}

/**
 * A response as a client reads it: always these five keys, whatever the server left out. `publish` and
 * `signal_entry` are left as sent (read their seq with {@link readResponseSeq}); `subscribe` holds one
 * topic item's JSON text.
 */
export interface SyncResponse {
  id: string;
  error: string;
  publish: { seq?: unknown } | null;
  subscribe: string;
  signal_entry: { seq?: unknown } | null;
}

/**
 * Reads a response frame's text; undefined when it is not a JSON object with a string `id` (nothing
 * could be routed). Lenient otherwise, as clients of the original server were. Never throws.
 */
export function decodeSyncResponse(text: string): SyncResponse | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || typeof (value as { id?: unknown }).id !== 'string') {
    return undefined;
  }
  const raw = value as Partial<SyncResponse> & { id: string };
  return {
    id: raw.id,
    error: typeof raw.error === 'string' ? raw.error : '',
    publish: raw.publish ?? null,
    subscribe: typeof raw.subscribe === 'string' ? raw.subscribe : '',
    signal_entry: raw.signal_entry ?? null,
  };
}

/** The positive integer `seq` of a `publish` or `signal_entry` answer, or undefined when it has none. */
export function readResponseSeq(field: { seq?: unknown } | null): number | undefined {
  const seq = field?.seq;
  return typeof seq === 'number' && Number.isInteger(seq) && seq >= 1 ? seq : undefined;
}

/**
 * The form a topic item takes inside a `subscribe` response: its JSON text, itself encoded as a JSON
 * string. Computed once per published item and shared by every subscriber's frame.
 */
export function encodeTopicItem(payloadText: string): string {
  return JSON.stringify(payloadText);
}

// Every response carries all five keys; clients written for the original server read them unchecked.
// The trailing newline is what the original server sent; clients must not care.
function frame(id: string, error: string, publish: string, subscribe: string, signalEntry: string): string {
  return `{"id":${JSON.stringify(id)},"error":${error},"publish":${publish},"subscribe":${subscribe},"signal_entry":${signalEntry}}\n`;
}

export function encodeSignalEntryResponse(id: string, seq: number): string {
  return frame(id, '""', 'null', '""', `{"seq":${seq}}`);
}

export function encodePublishResponse(id: string, seq: number): string {
  return frame(id, '""', `{"seq":${seq}}`, '""', 'null');
}

/** `encodedItem` comes from {@link encodeTopicItem}. */
export function encodeSubscribeResponse(id: string, encodedItem: string): string {
  return frame(id, '""', 'null', encodedItem, 'null');
}

export function encodeBarrierResponse(id: string): string {
  return frame(id, '""', 'null', '""', 'null');
}

export function encodeErrorResponse(id: string, message: string): string {
  return frame(id, JSON.stringify(message), 'null', '""', 'null');
}

/**
 * The run, plan and test case a client's keys belong to. The service does not namespace: clients do, so
 * every SDK must build the same keys.
 */
export interface SyncScope {
  runId: string;
  plan: string;
  testCase: string;
}

/** `run:<run>:plan:<plan>:case:<case>`, the prefix of every key of one run and test case. */
export function syncKeyPrefix(scope: SyncScope): string {
  return `run:${scope.runId}:plan:${scope.plan}:case:${scope.testCase}`;
}

/** The service-side name of a state: `run:<run>:plan:<plan>:case:<case>:states:<name>`. */
export function syncStateKey(scope: SyncScope, name: string): string {
  return `${syncKeyPrefix(scope)}:states:${name}`;
}

/** The service-side name of a topic: `run:<run>:plan:<plan>:case:<case>:topics:<name>`. */
export function syncTopicKey(scope: SyncScope, name: string): string {
  return `${syncKeyPrefix(scope)}:topics:${name}`;
}

/**
 * The topic the official SDKs publish lifecycle events on: `run:<run>:plan:<plan>:case:<case>:run_events`,
 * outside `topics:`.
 */
export function runEventsKey(scope: SyncScope): string {
  return `${syncKeyPrefix(scope)}:${runEventsTopic}`;
}

/**
 * A sync request as the service handles it, and the cheap reading of a well-formed one: no schema library,
 * so the service can start without loading one (`sync-protocol.ts` holds the schema that words errors).
 */
import { rawJsonMember } from './raw-json.ts';

/** One validated request. `payloadText` is the payload's JSON source text, exactly as the client sent it. */
export type SyncRequest =
  | { kind: 'cancel'; id: string }
  | { kind: 'publish'; id: string; topic: string; payloadText: string }
  | { kind: 'subscribe'; id: string; topic: string }
  | { kind: 'barrier'; id: string; state: string; target: number }
  | { kind: 'signal_entry'; id: string; state: string };

/** Result of {@link parseSyncRequest}: a request, or the error to send back with the id when one was readable. */
export type ParsedSyncRequest = { ok: true; request: SyncRequest } | { ok: false; id: string; error: string };

/**
 * The request when `value` is one the schema accepts in its plain form (one operation, every field of the
 * right type), else undefined: the caller then asks the schema, which also words the error. Never wrong,
 * only sometimes unsure.
 */
export function readWellFormedRequest(value: unknown, text: string): SyncRequest | undefined {
  if (!isRecord(value)) return undefined;
  const { id, is_cancel: isCancel, publish, subscribe, barrier, signal_entry: signalEntry } = value;
  if (typeof id !== 'string') return undefined;
  const operations =
    (publish == null ? 0 : 1) +
    (subscribe == null ? 0 : 1) +
    (barrier == null ? 0 : 1) +
    (signalEntry == null ? 0 : 1);
  if (isCancel === true) return operations === 0 ? { kind: 'cancel', id } : undefined;
  if (operations !== 1 || (isCancel != null && isCancel !== false)) return undefined;
  if (signalEntry != null) {
    if (!isRecord(signalEntry) || !isName(signalEntry.state)) return undefined;
    return { kind: 'signal_entry', id, state: signalEntry.state };
  }
  if (barrier != null) {
    if (!isRecord(barrier) || !isName(barrier.state)) return undefined;
    const target = barrier.target;
    if (typeof target !== 'number' || !Number.isSafeInteger(target)) return undefined;
    return { kind: 'barrier', id, state: barrier.state, target };
  }
  if (subscribe != null) {
    if (!isRecord(subscribe) || !isName(subscribe.topic)) return undefined;
    return { kind: 'subscribe', id, topic: subscribe.topic };
  }
  if (!isRecord(publish) || !isName(publish.topic) || publish.payload === undefined) return undefined;
  const payloadText = rawJsonMember(text, ['publish', 'payload']);
  if (payloadText === undefined) return undefined;
  return { kind: 'publish', id, topic: publish.topic, payloadText };
}

function isName(value: unknown): value is string {
  return typeof value === 'string' && value !== '';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

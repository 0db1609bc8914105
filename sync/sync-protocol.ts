/**
 * Parses the requests of the sync service's wire format (CONTRACT §3), no I/O. The shapes and the
 * response frames are the contract's (`core/contract/sync-wire.ts`); this is the server's strict reading,
 * with the schema that words every error. The service loads this file only when a frame is not plainly
 * well-formed (`sync-request-reader.ts`): zod costs about 6 MiB of a process that may never need it.
 */
import { z } from 'zod';
import { syncOperations, type SyncOperationName } from '../core/contract/sync-wire.ts';
import { rawJsonMember } from './raw-json.ts';
import { readWellFormedRequest, type ParsedSyncRequest, type SyncRequest } from './sync-request.ts';

export type { ParsedSyncRequest, SyncRequest };

const name = (field: string) =>
  z.string({ error: `${field} must be a string` }).min(1, { error: `${field} must not be empty` });

// Keyed by the contract's operation names, so a name added there must be parsed here too.
const operationSchemas = {
  publish: z
    .object(
      { topic: name('publish.topic'), payload: z.unknown().optional() },
      { error: 'publish must be an object {topic, payload}' },
    )
    .nullish(),
  subscribe: z
    .object({ topic: name('subscribe.topic') }, { error: 'subscribe must be an object {topic}' })
    .nullish(),
  barrier: z
    .object(
      {
        state: name('barrier.state'),
        target: z
          .number({ error: 'barrier.target must be a number' })
          .int({ error: 'barrier.target must be a safe integer' }),
      },
      { error: 'barrier must be an object {state, target}' },
    )
    .nullish(),
  signal_entry: z
    .object({ state: name('signal_entry.state') }, { error: 'signal_entry must be an object {state}' })
    .nullish(),
} satisfies Record<SyncOperationName, z.ZodType>;

const requestSchema = z.object(
  {
    id: z.string({ error: 'id must be a string (clients choose one per request)' }),
    is_cancel: z.boolean({ error: 'is_cancel must be true or false' }).nullish(),
    ...operationSchemas,
  },
  { error: 'a request must be a JSON object' },
);

/**
 * Parses one text frame into a request; never throws. A well-formed request is read by hand; anything else
 * goes through the schema, whose messages say what is wrong. Both accept exactly the same frames
 * (test/sync/sync-protocol.test.ts compares them on a corpus), the hand-written reading is just cheaper.
 */
export function parseSyncRequest(text: string): ParsedSyncRequest {
  const json = parseJson(text);
  if (!json.ok) return json;
  const request = readWellFormedRequest(json.value, text);
  if (request !== undefined) return { ok: true, request };
  return parseWithSchema(json.value, text);
}

/** {@link parseSyncRequest} with the schema alone: the reference the fast path is tested against. */
export function parseSyncRequestWithSchema(text: string): ParsedSyncRequest {
  const json = parseJson(text);
  return json.ok ? parseWithSchema(json.value, text) : json;
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false; id: string; error: string } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    return {
      ok: false,
      id: '',
      error: `malformed request: not valid JSON (${(error as Error).message}); send one JSON object per text frame`,
    };
  }
}

function parseWithSchema(value: unknown, text: string): ParsedSyncRequest {
  const id = isRecord(value) && typeof value.id === 'string' ? value.id : '';
  const parsed = requestSchema.safeParse(value, { reportInput: true });
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) =>
      issue.input === undefined ? issue.message : `${issue.message}, got ${preview(issue.input)}`,
    );
    return { ok: false, id, error: `malformed request: ${problems.join('; ')}` };
  }
  const request = parsed.data;
  if (request.is_cancel === true) return { ok: true, request: { kind: 'cancel', id } };

  const present = syncOperations.filter((operation) => request[operation] != null);
  if (present.length !== 1) {
    const found = present.length === 0 ? 'none' : present.join(' and ');
    return {
      ok: false,
      id,
      error: `malformed request: expected exactly one of ${syncOperations.join(', ')} (or is_cancel: true), got ${found}`,
    };
  }
  if (request.publish != null) {
    const payloadText = rawJsonMember(text, ['publish', 'payload']);
    if (payloadText === undefined) {
      return { ok: false, id, error: 'malformed request: publish.payload is required (any JSON value)' };
    }
    return { ok: true, request: { kind: 'publish', id, topic: request.publish.topic, payloadText } };
  }
  if (request.subscribe != null) {
    return { ok: true, request: { kind: 'subscribe', id, topic: request.subscribe.topic } };
  }
  if (request.barrier != null) {
    const { state, target } = request.barrier;
    return { ok: true, request: { kind: 'barrier', id, state, target } };
  }
  // The filter above guarantees signal_entry is the one operation left.
  const state = request.signal_entry?.state ?? '';
  return { ok: true, request: { kind: 'signal_entry', id, state } };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

import { readWellFormedRequest, type ParsedSyncRequest } from './sync-request.ts';

type SchemaModule = typeof import('./sync-protocol.ts');

/**
 * Reads request frames: a well-formed one by hand, anything else with the schema of `sync-protocol.ts`,
 * which is loaded the first time it is needed (a run whose clients only send good frames never loads zod,
 * about 6 MiB of the service's memory). Until it has loaded, that one read answers with a promise.
 */
export class SyncRequestReader {
  private schema: SchemaModule | undefined;
  private loading: Promise<SchemaModule> | undefined;

  read(text: string): ParsedSyncRequest | Promise<ParsedSyncRequest> {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return this.withSchema(text);
    }
    const request = readWellFormedRequest(value, text);
    return request === undefined ? this.withSchema(text) : { ok: true, request };
  }

  private withSchema(text: string): ParsedSyncRequest | Promise<ParsedSyncRequest> {
    if (this.schema !== undefined) return this.schema.parseSyncRequest(text);
    this.loading ??= import('./sync-protocol.ts').then((schema) => (this.schema = schema));
    return this.loading.then((schema) => schema.parseSyncRequest(text));
  }
}

/**
 * The errors the sync client throws, one class per failure mode.
 */

/** The sync service answered a request with an error. */
export class SyncRequestError extends Error {
  readonly code = 'sync_request_failed';
  /** The id of the failed request on its connection. */
  readonly requestId: string;

  constructor(message: string, requestId: string) {
    super(message);
    this.name = 'SyncRequestError';
    this.requestId = requestId;
  }
}

/** The connection to the sync service could not be opened, was lost, or the client was closed. */
export class SyncConnectionError extends Error {
  readonly code = 'sync_connection_failed';

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SyncConnectionError';
  }
}

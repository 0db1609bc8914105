import {
  encodeErrorResponse,
  encodePublishResponse,
  encodeSignalEntryResponse,
  encodeTopicItem,
} from '../core/contract/sync-wire.ts';
import type { FrameSocket, FrameSocketHandler } from './frame-socket.ts';
import type { SharedFrames } from './shared-frames.ts';
import type { SyncLogger } from './sync-logger.ts';
import type { SyncRequestReader } from './sync-request-reader.ts';
import type { ParsedSyncRequest, SyncRequest } from './sync-request.ts';
import type { SyncStore, TopicSubscription } from './sync-store.ts';

/**
 * Subscription replay pauses once this much is queued or buffered but not yet written to the socket, so a
 * slow subscriber of a long topic costs a bounded buffer instead of a copy of the whole log.
 */
const pauseAtUnflushedBytes = 4 * 1024 * 1024;
const resumeAtUnflushedBytes = 1024 * 1024;

/** Serves the requests of one WebSocket against the run's store; store items are encoded topic items. */
export class SyncConnection implements FrameSocketHandler {
  private readonly socket: FrameSocket;
  private readonly store: SyncStore<string>;
  private readonly reader: SyncRequestReader;
  private readonly frames: SharedFrames;
  private readonly log: SyncLogger;
  private readonly barriers = new Map<string, () => void>();
  private readonly subscriptions = new Map<string, TopicSubscription>();
  private readonly paused = new Set<string>();

  /** Frames that arrived while an earlier one waits for the request schema to load; undefined otherwise. */
  private backlog: string[] | undefined;

  constructor(
    socket: FrameSocket,
    store: SyncStore<string>,
    reader: SyncRequestReader,
    frames: SharedFrames,
    log: SyncLogger,
  ) {
    this.socket = socket;
    this.store = store;
    this.reader = reader;
    this.frames = frames;
    // A child logger per connection would cost every handshake; the peer is added where a line is written.
    this.log = log;
  }

  onMessage(text: string): void {
    if (this.backlog !== undefined) {
      this.backlog.push(text);
      return;
    }
    const parsed = this.reader.read(text);
    if (parsed instanceof Promise) this.answerLater(parsed);
    else this.answer(parsed);
  }

  /** Replies keep request order: frames arriving meanwhile wait behind the one being read. */
  private answerLater(parsed: Promise<ParsedSyncRequest>): void {
    this.backlog = [];
    void parsed
      .then(
        (result) => this.answer(result),
        (error: Error) =>
          this.answer({
            ok: false,
            id: '',
            error: `internal error: the request schema did not load: ${error.message}`,
          }),
      )
      .finally(() => {
        const backlog = this.backlog ?? [];
        this.backlog = undefined;
        for (const [index, text] of backlog.entries()) {
          if (this.backlog !== undefined) {
            (this.backlog as string[]).push(...backlog.slice(index));
            return;
          }
          this.onMessage(text);
        }
      });
  }

  private answer(parsed: ParsedSyncRequest): void {
    if (!parsed.ok) {
      this.log.warn(
        { peer: this.socket.peer, requestId: parsed.id, error: parsed.error },
        'rejected a malformed sync request',
      );
      this.send(encodeErrorResponse(parsed.id, parsed.error));
      return;
    }
    try {
      this.handle(parsed.request);
    } catch (error) {
      // A bug here must cost one request, not the service and every other instance's connection.
      this.log.error(
        { err: error, peer: this.socket.peer, requestId: parsed.request.id },
        'sync request failed',
      );
      const message = `internal error while handling ${parsed.request.kind} request ${parsed.request.id}: ${(error as Error).message}`;
      this.send(encodeErrorResponse(parsed.request.id, message));
    }
  }

  private handle(request: SyncRequest): void {
    switch (request.kind) {
      case 'signal_entry':
        this.store.signalEntry(request.state, (seq) => this.send(encodeSignalEntryResponse(request.id, seq)));
        return;
      case 'publish': {
        const seq = this.store.publish(request.topic, encodeTopicItem(request.payloadText));
        this.send(encodePublishResponse(request.id, seq));
        return;
      }
      case 'barrier':
        if (this.rejectDuplicate(request.id)) return;
        this.barrier(request.id, request.state, request.target);
        return;
      case 'subscribe':
        if (this.rejectDuplicate(request.id)) return;
        this.subscribe(request.id, request.topic);
        return;
      case 'cancel':
        this.cancel(request.id);
        return;
    }
  }

  private barrier(id: string, state: string, target: number): void {
    let reached = false;
    const cancel = this.store.waitBarrier(state, target, () => {
      reached = true;
      this.barriers.delete(id);
      this.socket.sendFrame(this.frames.barrierFrame(id));
    });
    if (!reached) this.barriers.set(id, cancel);
  }

  private subscribe(id: string, topic: string): void {
    const subscription = this.store.subscribe(topic, (encodedItem) => {
      if (!this.socket.isOpen) return false;
      this.socket.sendFrame(this.frames.subscribeFrame(id, encodedItem));
      if (this.socket.unflushedBytes < pauseAtUnflushedBytes) return true;
      this.paused.add(id);
      return false;
    });
    this.subscriptions.set(id, subscription);
  }

  private cancel(id: string): void {
    this.barriers.get(id)?.();
    this.barriers.delete(id);
    this.subscriptions.get(id)?.cancel();
    this.subscriptions.delete(id);
    this.paused.delete(id);
  }

  /** Ids are the client's only way to route replies, so two live requests must not share one. */
  private rejectDuplicate(id: string): boolean {
    if (!this.barriers.has(id) && !this.subscriptions.has(id)) return false;
    this.send(
      encodeErrorResponse(
        id,
        `request id ${JSON.stringify(id)} is already used by a pending barrier or subscription on this connection; use a new id per request`,
      ),
    );
    return true;
  }

  /** Sends a reply; replies are one per request, so the request rate already bounds them. */
  private send(frame: string): void {
    this.socket.send(frame);
  }

  onDrain(): void {
    if (this.paused.size === 0 || this.socket.unflushedBytes > resumeAtUnflushedBytes) return;
    for (const id of [...this.paused]) {
      if (this.socket.unflushedBytes >= pauseAtUnflushedBytes) return;
      this.paused.delete(id);
      this.subscriptions.get(id)?.resume();
    }
  }

  onClose(code: number): void {
    // Barriers and subscriptions end with their connection; the counters and topic logs stay.
    for (const cancel of this.barriers.values()) cancel();
    for (const subscription of this.subscriptions.values()) subscription.cancel();
    this.barriers.clear();
    this.subscriptions.clear();
    this.paused.clear();
    if (this.log.isLevelEnabled('debug'))
      this.log.debug({ peer: this.socket.peer, code }, 'sync connection closed');
  }
}

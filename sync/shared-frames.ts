import { encodeBarrierResponse, encodeSubscribeResponse } from '../core/contract/sync-wire.ts';
import { encodeTextFrame } from '../core/contract/ws-frame-writer.ts';

/** Frames kept for the newest topic item at most; beyond it each subscriber's frame is encoded for it alone. */
const maxItemFramesBytes = 1024 * 1024;
/** Barrier replies kept; ids beyond it are encoded per reply. */
const maxBarrierFrames = 4_096;

/**
 * Frames many sockets are sent at once, encoded once per request id and written as the same buffer to
 * every socket using that id. Clients number their requests the same way, so the instances of a run mostly
 * subscribe to a topic or wait on a barrier under the same id: a publish to 1,000 subscribers, or a barrier
 * releasing 1,000 waiters, then encodes one frame instead of 1,000. Bounded either way.
 */
export class SharedFrames {
  private item: string | undefined;
  private readonly itemFrames = new Map<string, Buffer>();
  private itemFramesBytes = 0;
  private readonly barrierFrames = new Map<string, Buffer>();

  /** The `subscribe` frame carrying `encodedItem` under `id`; a new item starts a new generation. */
  subscribeFrame(id: string, encodedItem: string): Buffer {
    if (encodedItem !== this.item) {
      this.item = encodedItem;
      this.itemFrames.clear();
      this.itemFramesBytes = 0;
    }
    const cached = this.itemFrames.get(id);
    if (cached !== undefined) return cached;
    const frame = encodeTextFrame(encodeSubscribeResponse(id, encodedItem));
    if (this.itemFramesBytes + frame.length <= maxItemFramesBytes) {
      this.itemFrames.set(id, frame);
      this.itemFramesBytes += frame.length;
    }
    return frame;
  }

  /** The reply releasing the barrier sent under `id`. */
  barrierFrame(id: string): Buffer {
    const cached = this.barrierFrames.get(id);
    if (cached !== undefined) return cached;
    const frame = encodeTextFrame(encodeBarrierResponse(id));
    if (this.barrierFrames.size >= maxBarrierFrames) this.barrierFrames.clear();
    this.barrierFrames.set(id, frame);
    return frame;
  }
}

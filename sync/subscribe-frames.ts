import { encodeSubscribeResponse } from '../core/contract/sync-wire.ts';
import { encodeTextFrame } from './ws-frame-writer.ts';

/** Frames kept for the newest item at most; beyond it each subscriber's frame is encoded for it alone. */
const maxCachedBytes = 1024 * 1024;

/**
 * The `subscribe` frames of the item being fanned out, encoded once per request id and written as the same
 * buffer to every subscriber using that id. Clients number their requests the same way, so the instances of
 * a run mostly subscribe to a topic under the same id, and a publish to 1,000 subscribers encodes one frame
 * instead of 1,000. Bounded: an item of another topic, or a replay, simply starts a new generation.
 */
export class SubscribeFrames {
  private item: string | undefined;
  private readonly byId = new Map<string, Buffer>();
  private cachedBytes = 0;

  frame(id: string, encodedItem: string): Buffer {
    if (encodedItem !== this.item) {
      this.item = encodedItem;
      this.byId.clear();
      this.cachedBytes = 0;
    }
    const cached = this.byId.get(id);
    if (cached !== undefined) return cached;
    const frame = encodeTextFrame(encodeSubscribeResponse(id, encodedItem));
    if (this.cachedBytes + frame.length <= maxCachedBytes) {
      this.byId.set(id, frame);
      this.cachedBytes += frame.length;
    }
    return frame;
  }
}

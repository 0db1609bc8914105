/**
 * Gives instances' outputs back to the daemon in batches. Taking a tree back costs two processes
 * (`chown -R`, `chmod -R`: they never follow a link the plan user may have put there), and a run of
 * N instances that end together would start 2N of them, each blocking the daemon's event loop while it
 * forks; the instances that end while one batch is in flight go together in the next.
 */
export class TakeBackBatcher {
  private readonly takeBackTrees: (dirs: readonly string[]) => Promise<void>;
  private waiting: { dir: string; resolve: () => void; reject: (error: Error) => void }[] = [];
  private draining = false;

  constructor(takeBackTrees: (dirs: readonly string[]) => Promise<void>) {
    this.takeBackTrees = takeBackTrees;
  }

  /** Resolves once `dir` is the daemon's again; rejects with the error of the batch it went in. */
  takeBack(dir: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ dir, resolve, reject });
      if (!this.draining) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.draining = true;
    while (this.waiting.length > 0) {
      const batch = this.waiting;
      this.waiting = [];
      try {
        await this.takeBackTrees(batch.map((entry) => entry.dir));
        batch.forEach((entry) => entry.resolve());
      } catch (error) {
        batch.forEach((entry) => entry.reject(error as Error));
      }
    }
    this.draining = false;
  }
}

/**
 * Hands out turns to spawn, one per turn of the event loop. A spawn blocks this process until the child
 * has exec'd (~60 ms each while hundreds of instances start on 2 cores), and instances prepared together
 * would otherwise spawn back to back in one go: at 1,000 instances the daemon then read no pipe, served no
 * request and saw no Redis reply for over a minute, and its Redis command timeout (1.5 s) fired on answers
 * that were waiting to be read. Between two turns the loop polls for I/O.
 */
export class SpawnTurns {
  private last: Promise<void> = Promise.resolve();

  /** Resolves when the caller may spawn: after every earlier caller's turn, and an I/O poll since. */
  next(): Promise<void> {
    const turn = this.last.then(() => new Promise<void>((resolve) => setImmediate(resolve)));
    this.last = turn;
    return turn;
  }
}

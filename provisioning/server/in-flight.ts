// Work a part started and did not await (a batch's follow-up, a timer's pass), kept so that
// the part's stop can wait for it: the store closes after the last of it, not under it.

export class InFlight {
  private readonly running = new Set<Promise<unknown>>();

  /** Tracks p until it settles and returns it; a failure stays the caller's to handle. */
  add<T>(p: Promise<T>): Promise<T> {
    this.running.add(p);
    const forget = () => this.running.delete(p);
    p.then(forget, forget);
    return p;
  }

  /** Resolves once nothing tracked is under way, work added meanwhile included. */
  async settled(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }
}

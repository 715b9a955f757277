// 911 and 933 work under way in this process: the events being stored and their notifications
// being sent (Repo.urgent). Bulk work that can wait holds back while there is any: one server
// instance publishing a push's locations lists in the background mailed 911 seconds late, the
// lists taking its CPU and the broker's (docs/scale-bench.md, "Where a 911 notice waited").

export class UrgentWork {
  private running = 0;
  private readonly idleListeners = new Set<() => void>();

  /** True while any urgent work is under way. */
  get busy(): boolean {
    return this.running > 0;
  }

  /** Counts fn as urgent work until it settles. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    this.running++;
    try {
      return await fn();
    } finally {
      // Told on a later turn, and only if still idle then: what the listeners start (a window
      // of signed lists) must not run before the urgent caller's own next step, nor between
      // two urgent steps that follow each other.
      if (--this.running === 0) setImmediate(() => this.tellIdle());
    }
  }

  private tellIdle(): void {
    if (this.running > 0) return;
    for (const listener of this.idleListeners) listener();
  }

  /** Calls listener each time the last urgent work settles; returns its removal. */
  onIdle(listener: () => void): () => void {
    this.idleListeners.add(listener);
    return () => this.idleListeners.delete(listener);
  }
}

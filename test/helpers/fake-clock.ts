// A manual clock for unit tests of timing logic: time moves only when the test says.
export class FakeClock {
  private t: number;
  private seq = 0;
  private readonly pending = new Map<number, { at: number; fn: () => void }>();

  constructor(startMs = Date.parse('2026-11-22T07:00:00Z')) {
    this.t = startMs;
  }

  now = (): number => this.t;
  date = (): Date => new Date(this.t);

  setTimeout = (fn: () => void, ms: number): number => {
    const id = ++this.seq;
    this.pending.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  };

  clearTimeout = (handle: unknown): void => {
    this.pending.delete(handle as number);
  };

  /** Timers not yet fired. */
  get timerCount(): number {
    return this.pending.size;
  }

  /** Moves time forward, firing due timers in order (each sees its own due time). */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.pending) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.pending.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}

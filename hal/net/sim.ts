// A simulated network for laptops and CI: the snapshot is whatever the caller
// sets; 'change' fires (asynchronously, like the real watcher) when it differs.
import { EventEmitter } from 'node:events';
import { emptySnapshot, type ChangeReason, type NetworkEvents, type NetworkMonitor, type NetworkSnapshot } from './types.js';

export class SimNetwork extends EventEmitter<NetworkEvents> implements NetworkMonitor {
  private snap: NetworkSnapshot | null = null;
  private next: NetworkSnapshot;

  constructor(initial: NetworkSnapshot = emptySnapshot()) {
    super();
    this.next = structuredClone(initial);
  }

  async start(): Promise<void> {
    this.apply(['start']);
  }

  async stop(): Promise<void> {}

  current(): NetworkSnapshot | null {
    return this.snap;
  }

  refresh(): void {
    setImmediate(() => this.apply(['refresh']));
  }

  /** Replaces the simulated network; 'change' follows on the next turn if it differs. */
  set(snapshot: NetworkSnapshot, reason: ChangeReason = 'address'): void {
    this.next = structuredClone(snapshot);
    setImmediate(() => this.apply([reason]));
  }

  private apply(reasons: ChangeReason[]): void {
    if (this.snap && JSON.stringify(this.snap) === JSON.stringify(this.next)) return;
    const previous = this.snap;
    this.snap = structuredClone(this.next);
    this.emit('change', { snapshot: this.snap, previous, reasons, firstEventAt: performance.now() });
  }
}

// A simulated network for laptops and CI: the snapshot is whatever the caller
// sets; 'change' fires (asynchronously, like the real watcher) when it differs.
import { EventEmitter } from 'node:events';
import os from 'node:os';
import { emptySnapshot, type ChangeReason, type NetworkEvents, type NetworkMonitor, type NetworkSnapshot } from './types.js';
import { compareCodeUnits } from '../compare.js';

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

/**
 * A still picture of the host's interfaces from os.networkInterfaces() (no /proc,
 * no commands, no netlink): what a simulated phone starts with on a laptop or in CI,
 * so diagnostics see the machine's addresses. No gateway, no DNS.
 */
export function hostStillSnapshot(read: typeof os.networkInterfaces = os.networkInterfaces): NetworkSnapshot {
  const interfaces = Object.entries(read())
    .map(([name, addrs]) => ({ name, addrs: (addrs ?? []).filter((a) => !a.internal) }))
    .filter((i) => i.addrs.length > 0)
    .map(({ name, addrs }) => ({
      name,
      mac: addrs[0]!.mac && addrs[0]!.mac !== '00:00:00:00:00:00' ? addrs[0]!.mac.toLowerCase() : null,
      up: true,
      addresses: addrs
        .map((a) => ({ family: a.family, address: a.address.toLowerCase(), prefix: Number(a.cidr?.split('/')[1] ?? 0) }))
        .sort((a, b) => (a.family === b.family ? compareCodeUnits(a.address, b.address) : a.family < b.family ? -1 : 1)),
    }))
    .sort((a, b) => compareCodeUnits(a.name, b.name));
  return { interfaces, gateway4: null, gateway6: null, dns: [] };
}

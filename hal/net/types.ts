// What the agent knows about the phone's network attachment, and the interface
// every network backend (netlink-driven, simulated) offers the location code.
import type { EventEmitter } from 'node:events';

export interface InterfaceAddress {
  family: 'IPv4' | 'IPv6';
  address: string;
  prefix: number;
}

export interface InterfaceInfo {
  name: string;
  /** Lower-case colon MAC, null when the link has none. */
  mac: string | null;
  /** operstate is up (or unknown with carrier, as veth and some drivers report). */
  up: boolean;
  addresses: InterfaceAddress[];
}

export interface Gateway {
  address: string;
  iface: string;
  /** From /proc/net/arp (IPv4) or the neighbour table (IPv6); null until resolved. */
  mac: string | null;
}

export interface NetworkSnapshot {
  /** Watched interfaces only, sorted by name; addresses sorted. */
  interfaces: InterfaceInfo[];
  gateway4: Gateway | null;
  gateway6: Gateway | null;
  dns: string[];
}

/** Why a snapshot was taken: the netlink message kinds seen, or a manual refresh. */
export type ChangeReason = 'link' | 'address' | 'route' | 'refresh' | 'start' | 'gateway-mac';

export interface NetworkChange {
  snapshot: NetworkSnapshot;
  previous: NetworkSnapshot | null;
  reasons: ChangeReason[];
  /** performance.now() when the first netlink line of this burst arrived (or the refresh was asked). */
  firstEventAt: number;
}

export interface NetworkEvents {
  change: [NetworkChange];
}

/** A source of network snapshots that says when they change. */
export interface NetworkMonitor extends EventEmitter<NetworkEvents> {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The latest snapshot (no I/O); null before the first one. */
  current(): NetworkSnapshot | null;
  /** Takes a fresh snapshot soon (debounced); 'change' fires only if it differs. */
  refresh(): void;
}

export function emptySnapshot(): NetworkSnapshot {
  return { interfaces: [], gateway4: null, gateway6: null, dns: [] };
}

/** Every address of the snapshot, for IP-group matching. */
export function snapshotAddresses(s: NetworkSnapshot): InterfaceAddress[] {
  return s.interfaces.flatMap((i) => (i.up ? i.addresses : []));
}

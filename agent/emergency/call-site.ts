// Where the phone is when a call is placed: the address on its call interface and
// the switch port there (LLDP), read from the network service's current snapshot
// and neighbour table (memory only, no I/O), and its extension. Read just before
// the INVITE leaves, so the row committed before it names the site too; the server
// maps the address to a floor or zone (provisioning/protocol/call-site.ts).
import type { LldpNeighbor } from '../../hal/net/lldp-json.js';
import type { NetworkSnapshot } from '../../hal/net/types.js';
import type { CallSite } from '../../provisioning/protocol/call-site.js';

export type NetworkSite = Omit<CallSite, 'extension'>;

/**
 * The call interface is the one carrying the SIP bind address, else the IPv4 default
 * route's, else the first up interface with an address. Its IPv4 address is preferred;
 * the switch is the LLDP neighbour on that interface, else the only neighbour seen.
 */
export function networkSite(snap: NetworkSnapshot | null, neighbors: readonly LldpNeighbor[], bindAddress?: string): NetworkSite {
  const ifaces = (snap?.interfaces ?? []).filter((i) => i.up && i.addresses.length > 0);
  const bound =
    bindAddress && !['0.0.0.0', '::'].includes(bindAddress)
      ? ifaces.find((i) => i.addresses.some((a) => a.address === bindAddress))
      : undefined;
  const iface = bound ?? ifaces.find((i) => i.name === snap?.gateway4?.iface) ?? ifaces[0];
  const addr = !iface
    ? undefined
    : bound
      ? iface.addresses.find((a) => a.address === bindAddress)
      : (iface.addresses.find((a) => a.family === 'IPv4') ?? iface.addresses[0]);
  const n = neighbors.find((x) => x.iface === iface?.name) ?? (neighbors.length === 1 ? neighbors[0] : undefined);
  return {
    ip: addr?.address ?? null,
    interface: iface?.name ?? null,
    switch: n ? { chassisId: n.chassisId, portId: n.portId, portDescr: n.portDescr, sysName: n.sysName } : null,
  };
}

/** The user part of a SIP address of record (sip:2101@pbx.example -> 2101), or null. */
export function extensionOf(aor: string | undefined): string | null {
  const m = aor ? /^sips?:([^@;?]+)@/i.exec(aor) : null;
  return m ? decodeURIComponent(m[1]!) : null;
}

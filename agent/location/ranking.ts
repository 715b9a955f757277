// Every location the phone knows, and the one order that picks the best.
//
// The order (first wins), documented in docs/network.md:
//   1. user         the user's pick or confirmation on this phone, for the network
//                   attachment it was made on (until the server's push reflects it)
//   2. provisioned  the server's signed address, unless the network contradicts it
//   3. lldp-med     civic address from the switch port
//   4. dhcp         civic option 99 (the client's own location before the network
//                   element's before the DHCP server's, RFC 4776 'what')
//   5. held         civic address from the LIS
//   6. provisioned  when the network contradicts it (a location-mismatch is pending)
//   7. any civic address missing an element a dispatchable address needs
//                   (country, A1, A3, RD, HNO, PC), whatever its source
//   8. geodetic     lldp-med coordinates, dhcp option 123, held point or circle
// Tie-break inside one rank: the newest observation first, then the interface
// name, so the order never depends on arrival order.
import { REQUIRED_CIVIC, type CivicAddress } from '../../provisioning/protocol/address.js';
import { compareCodeUnits } from '../../hal/compare.js';

export type LocationSource = 'user' | 'provisioned' | 'lldp-med' | 'dhcp' | 'held';

export interface Geodetic {
  latitude: number;
  longitude: number;
  altitude: number | null;
  /** Uncertainty radius in meters when known. */
  radius: number | null;
  datum: string;
}

export interface Location {
  source: LocationSource;
  /** PIDF-LO method token (IANA registry): Manual, LLDP-MED, DHCP, or the LIS's. */
  method: string;
  civic: CivicAddress | null;
  geo: Geodetic | null;
  /** When this value was first observed in this form (epoch ms). */
  observedAt: number;
  /** Where it came from: interface, switch chassis/port, LIS URL, location id. */
  origin: Record<string, string>;
  /** Only for dhcp: RFC 4776 'what' (2 client, 1 network element, 0 server). */
  what?: number;
  /** The server's location id and code, when the location is one of the account's. */
  locationId?: string;
  locationCode?: string;
}

export interface RankedLocation extends Location {
  kind: 'civic' | 'geodetic';
  /** 1..8, lower is better (see the order above; 7 is a non-dispatchable civic). */
  rank: number;
  ageMs: number;
  dispatchable: boolean;
}

export function isDispatchable(c: CivicAddress | null): boolean {
  return c !== null && REQUIRED_CIVIC.every((k) => (c[k] ?? '').trim() !== '');
}

const CIVIC_RANK: Record<LocationSource, number> = { user: 1, provisioned: 2, 'lldp-med': 3, dhcp: 4, held: 5 };
const GEO_RANK_OFFSET: Partial<Record<LocationSource, number>> = { 'lldp-med': 0, dhcp: 1, held: 2 };

/**
 * Splits each location into its civic and geodetic candidates and sorts them.
 * contradicted: the provisioned address does not fit the network (rank 6).
 */
export function rank(locations: readonly Location[], nowMs: number, contradicted: boolean): RankedLocation[] {
  const out: (RankedLocation & { sub: number })[] = [];
  for (const l of locations) {
    const ageMs = Math.max(0, nowMs - l.observedAt);
    if (l.civic && Object.keys(l.civic).length > 0) {
      const dispatchable = isDispatchable(l.civic);
      let r = l.source === 'provisioned' && contradicted ? 6 : CIVIC_RANK[l.source];
      if (!dispatchable) r = 7;
      out.push({ ...l, geo: null, kind: 'civic', rank: r, ageMs, dispatchable, sub: l.source === 'dhcp' ? 2 - (l.what ?? 0) : 0 });
    }
    if (l.geo && GEO_RANK_OFFSET[l.source] !== undefined) {
      out.push({ ...l, civic: null, kind: 'geodetic', rank: 8, ageMs, dispatchable: false, sub: GEO_RANK_OFFSET[l.source]! });
    }
  }
  out.sort(
    (a, b) =>
      a.rank - b.rank ||
      a.sub - b.sub ||
      a.ageMs - b.ageMs ||
      compareCodeUnits(a.origin.iface ?? '', b.origin.iface ?? '') ||
      compareCodeUnits(a.source, b.source),
  );
  return out.map(({ sub: _sub, ...r }) => r);
}

// A locations push as big as the contract allows: the account's 5000 locations
// (the schema's maximum), padded to just under the 2 MiB bound. For the
// big-push integration test and the emergency benchmark.
import { sampleAddress } from './address.js';
import { MAX_LOCATIONS_PAYLOAD_BYTES } from '../../provisioning/protocol/messages.js';
import type { LocationsDocument, RecommendedLocation } from '../../provisioning/protocol/locations.js';

export function bigLocations(
  version: number,
  sign: (d: LocationsDocument) => string,
  deviceId = 'phone-1',
): { doc: LocationsDocument; payload: string } {
  const civic = sampleAddress().civic;
  const locations: RecommendedLocation[] = Array.from({ length: 5000 }, (_, i) => ({
    id: `loc-${i}`,
    code: `SITE-${i}`,
    name: `Site ${i}`,
    civic: { ...civic, ROOM: String(i) },
    cidrs: [`10.${(i >> 8) & 255}.${i & 255}.0/24`, `2001:db8:${i.toString(16)}::/48`],
    switchPorts: [
      {
        chassisId: `00:11:22:33:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
        portId: `ge-0/0/${i % 48}`,
      },
    ],
  }));
  const doc: LocationsDocument = {
    v: 1,
    deviceId,
    version,
    issuedAt: new Date().toISOString(),
    recommendations: true,
    assignedLocationId: 'loc-0',
    locations,
  };
  const size = () => Buffer.byteLength(JSON.stringify({ v: 1, doc, sig: 'x'.repeat(86) }));
  // Longer names until the next step would pass the bound.
  const room = MAX_LOCATIONS_PAYLOAD_BYTES - size() - 1024;
  const pad = Math.min(117, Math.floor(room / locations.length) - 1);
  for (const l of locations) l.name = `${l.name} ${'n'.repeat(pad)}`;
  return { doc, payload: JSON.stringify({ v: 1, doc, sig: sign(doc) }) };
}

// A locations document in the form the agent keeps it (LocationsBook.view()): parts
// as text and the compact matcher index. One location per part, so every lookup
// crosses part boundaries; memoised per document so a test's document stays one view.
import { CompactLocationsBuilder, type CompactLocations } from '../../agent/location/locations-view.js';
import type { LocationsDocument } from '../../provisioning/protocol/locations.js';

const views = new WeakMap<LocationsDocument, CompactLocations>();

export function compactView(doc: LocationsDocument): CompactLocations {
  let v = views.get(doc);
  if (!v) {
    const { locations, ...head } = doc;
    const b = new CompactLocationsBuilder();
    for (const l of locations) b.addPart(JSON.stringify([l]));
    if (locations.length === 0) b.addPart('[]');
    v = b.finish(head);
    views.set(doc, v);
  }
  return v;
}

/** The two forms the LocationService is given: a plain document (tests), the book's view (the agent). */
export const LOCATIONS_FORMS = [
  { form: 'a plain document', of: (d: LocationsDocument | null) => d },
  { form: "the book's compact view", of: (d: LocationsDocument | null) => (d ? compactView(d) : null) },
] as const;

// Does the phone's network fit its assigned location? The server's locations
// push lists the account's locations with their IP groups (CIDR, v4 and v6) and
// switch/port matches; we match them against where the phone is now.
import type { LocationsDocument, RecommendedLocation } from '../../provisioning/protocol/locations.js';
import type { LocationsView } from './locations-view.js';
import { hasRules, matchesParsed, parseFacts, type NetworkFacts } from './match.js';

export * from './match.js';

export type RecommendationStatus = 'off' | 'match' | 'mismatch' | 'unknown' | 'confirmed';

export interface Assessment {
  status: RecommendationStatus;
  assigned: RecommendedLocation | null;
  /** Locations whose rules match the network now. */
  matches: RecommendedLocation[];
  /**
   * What to offer the user: the matches, or every location when none match. Every location
   * is read from the document when offered, never kept here: 5000 live objects cost the
   * main thread long scavenges.
   */
  choices: 'matches' | 'all' | 'none';
  /** How many locations the user is offered (0 for 'none'). */
  choiceCount: number;
  reason: string;
}

/** An address as four 32-bit words (IPv4: one word, in [3]). */
/** A plain document as a LocationsView (unit tests, a document held whole). */
export function documentView(doc: LocationsDocument): LocationsView {
  const { locations, ...head } = doc;
  return {
    head,
    count: locations.length,
    matching: (facts) => {
      const out: number[] = [];
      locations.forEach((l, i) => {
        if (matchesParsed(l, facts)) out.push(i);
      });
      return out;
    },
    findFirst: (_text, pred) => locations.find(pred) ?? null,
    at: (indexes) => indexes.map((i) => locations[i]!),
    all: () => locations,
  };
}

/** A LocationsView as it is, a plain document wrapped. */
export function asView(source: LocationsDocument | LocationsView | null): LocationsView | null {
  if (!source) return null;
  return 'locations' in source ? documentView(source) : source;
}

/**
 * The assigned location is the push's assignedLocationId, else the one whose code
 * is the provisioned address's locationCode.
 */
export function assess(
  source: LocationsDocument | LocationsView | null,
  facts: NetworkFacts,
  addressLocationCode: string | null,
): Assessment {
  const none = { assigned: null, matches: [], choices: 'none' as const, choiceCount: 0 };
  const view = asView(source);
  if (!view) return { status: 'off', ...none, reason: 'no locations pushed' };
  const head = view.head;
  if (!head.recommendations) return { status: 'off', ...none, reason: 'recommendations are off for this user' };
  const id = head.assignedLocationId;
  const assigned =
    (typeof id === 'string' ? view.findFirst(id, (l) => l.id === id) : null) ??
    (addressLocationCode ? view.findFirst(addressLocationCode, (l) => l.code === addressLocationCode) : null) ??
    null;
  const parsed = parseFacts(facts);
  const matches = view.at(view.matching(parsed));
  const all = { choices: 'all' as const, choiceCount: view.count };
  const offerMatches = { choices: 'matches' as const, choiceCount: matches.length };
  if (assigned && matches.some((m) => m.id === assigned.id)) {
    return { status: 'match', assigned, matches, ...offerMatches, reason: 'the network matches the assigned location' };
  }
  if (matches.length > 0) {
    return { status: 'mismatch', assigned, matches, ...offerMatches, reason: 'the network matches other locations' };
  }
  if (!assigned) {
    if (view.count === 0)
      return { status: 'unknown', assigned, matches, choices: 'none', choiceCount: 0, reason: 'the account has no locations' };
    return { status: 'mismatch', assigned, matches, ...all, reason: 'no location is assigned' };
  }
  if (hasRules(assigned)) {
    return { status: 'mismatch', assigned, matches, ...all, reason: 'the network does not match the assigned location' };
  }
  return { status: 'unknown', assigned, matches, ...all, reason: 'the assigned location has no IP groups or switches to compare' };
}

// LocationService: gathers every location source (the provisioned address, the
// user's pick, LLDP-MED, DHCP options, HELD), ranks them (ranking.ts), compares
// the network with the assigned location (recommend.ts) on a schedule and on
// every network change, and reports: the retained `location` report and a
// location-changed event only when something changed, persisted only then.
//
// best() is what the emergency path calls: synchronous, no I/O, a few
// microseconds (the ranking is kept current as inputs change).
// Over 400 lines: one service ranks every source and reports; its matching, ranking,
// disagreement and view live beside it (match.ts, ranking.ts, disagreement.ts, locations-view.ts).
import type { Logger } from '../../provisioning/common/log.js';
import type { Alerts } from '../../hal/handset.js';
import type { NetworkMonitor, NetworkSnapshot } from '../../hal/net/types.js';
import { snapshotAddresses } from '../../hal/net/types.js';
import type { LldpNeighbor } from '../../hal/net/lldp-json.js';
import type { EventPayload, EventType, LocationPayload } from '../../provisioning/protocol/messages.js';
import type { LocationReportData } from '../../provisioning/protocol/location-report.js';
import type { LocationsDocument, RecommendedLocation } from '../../provisioning/protocol/locations.js';
import type { StoredAddress } from '../store/store.js';
import { formatAddressLines } from '../../provisioning/protocol/address.js';
import { civicFromLldpd } from './catypes.js';
import type { DhcpLocation } from './dhcp.js';
import type { HeldAnswer } from './held-poller.js';
import { asView, assess, type Assessment, type NetworkFacts } from './recommend.js';
import type { LocationsView } from './locations-view.js';
import { rank, type Location, type LocationSource, type RankedLocation } from './ranking.js';
import { DEFAULT_LOCATION_POLICY, disagreeingFields, type LocationPolicy, type ResponderField } from './disagreement.js';
import type { FunctionKey } from '../../hal/handset.js';
import { LocationMenu } from './location-menu.js';

export const MISMATCH_ALERT_ID = 'location-mismatch';
export const DISAGREEMENT_ALERT_ID = 'location-disagreement';

/** The network's civic address names another place than the provisioned one. */
export interface Disagreement {
  /** Stable while the two addresses stay the same: binds the user's pick. */
  key: string;
  policy: LocationPolicy;
  fields: ResponderField[];
  network: Location & { source: 'lldp-med' | 'dhcp' };
  provisioned: Location;
  /** ask-user: what the user picked for these two addresses, if anything yet. */
  pick: 'network' | 'provisioned' | null;
  /** Which one a 911 call sends first now (after ranking), or null when it sends neither. */
  chosen: 'network' | 'provisioned' | null;
  since: number;
}

/** What an emergency call carries: the first location, the disagreeing other one, the ELIN. */
export interface CallLocations {
  first: RankedLocation | null;
  second: RankedLocation | null;
  elin: string | null;
}

/** What the service needs from the store: one row per kind, written only when its fingerprint changes. */
export interface LocationStore {
  getObservation(source: string): { fingerprint: string; data: string } | undefined;
  /** Upserts the row and queues the event in one transaction, only if the fingerprint differs. */
  recordObservation(source: string, fingerprint: string, data: unknown, event?: EventPayload): boolean;
}

export interface EventSource<T> {
  on(event: 'update', fn: (v: T) => void): unknown;
  off(event: 'update', fn: (v: T) => void): unknown;
}

export interface LldpSource {
  neighbors(): LldpNeighbor[];
  on(event: 'neighbors', fn: (n: LldpNeighbor[]) => void): unknown;
  off(event: 'neighbors', fn: (n: LldpNeighbor[]) => void): unknown;
}

export interface LocationServiceDeps {
  log: Logger;
  store: LocationStore;
  network: NetworkMonitor;
  lldp: LldpSource | null;
  dhcp: (EventSource<DhcpLocation[]> & { locations(): DhcpLocation[] }) | null;
  held: (EventSource<HeldAnswer | null> & { current(): HeldAnswer | null; refresh(): void }) | null;
  address: () => StoredAddress | null;
  /** The pushed locations: the book's compact view (the agent), or a plain document (tests). */
  locations: () => LocationsDocument | LocationsView | null;
  alerts: Alerts;
  newEvent: (type: EventType, data: Record<string, unknown>) => EventPayload;
  /** Tells the outbox drainer an event was queued. */
  wake: () => void;
  publishReport: (p: LocationPayload) => void;
  /** 10 minutes after start, then every 5 minutes (config network.recommendations). */
  firstCheckMs: number;
  checkEveryMs: number;
  now?: () => number;
}

/** The user's pick, bound to the network attachment it was made on. */
interface Choice {
  attachment: string;
  locationId: string;
  locationCode: string;
  name: string;
  civic: Record<string, string>;
  confirmed: boolean;
  at: number;
}

export interface LocationChoiceView {
  id: string;
  code: string;
  name: string;
  lines: string[];
  matches: boolean;
  assigned: boolean;
}

export interface LocationListView {
  status: Assessment['status'] | 'pending' | 'selected';
  reason: string;
  assigned: { id: string; code: string; name: string } | null;
  best: ReturnType<typeof summary> | null;
  choices: LocationChoiceView[];
  selected: { locationId: string; confirmed: boolean; at: string } | null;
  lastCheckAt: string | null;
  /** Every candidate in rank order, with its age. */
  candidates: (ReturnType<typeof summary> & { rank: number; ageMs: number })[];
  elin: string | null;
  policy: LocationPolicy;
  disagreement: DisagreementView | null;
}

export interface DisagreementView {
  fields: ResponderField[];
  policy: LocationPolicy;
  chosen: 'network' | 'provisioned' | null;
  pick: 'network' | 'provisioned' | null;
  network: { source: string; method: string; civic: Record<string, string>; origin: Record<string, string> };
  provisioned: { civic: Record<string, string>; locationCode: string | null };
  since: string;
}

function summary(l: RankedLocation) {
  return {
    source: l.source,
    method: l.method,
    kind: l.kind,
    ...(l.civic ? { civic: l.civic } : {}),
    ...(l.geo ? { geo: l.geo } : {}),
    dispatchable: l.dispatchable,
    origin: l.origin,
    ...(l.locationCode ? { locationCode: l.locationCode } : {}),
  };
}

export class LocationService {
  private readonly now: () => number;
  private ranked: RankedLocation[] = [];
  private elinValue: string | null = null;
  private assessment: Assessment | null = null;
  private lastCheckAt: number | null = null;
  private choice: Choice | null;
  private mismatchKey: string | null = null;
  private alertRaised = false;
  private firstTimer: NodeJS.Timeout | null = null;
  private everyTimer: NodeJS.Timeout | null = null;
  private started = false;
  /** Values per source with the time each was first seen in its current form. */
  private readonly seen = new Map<string, { text: string; at: number }>();
  private readonly unsubscribe: (() => void)[] = [];
  private lastReport: { fingerprint: string; ts: number } | null = null;
  private bestKey = 'null';
  private readonly bestListeners: ((best: RankedLocation | null) => void)[] = [];
  private disagreementNow: Disagreement | null = null;
  /** The open disagreement the server was told about (key with chosen), or null. */
  private disagreementReported: string | null = null;
  /** Disagreement keys whose alert the user dismissed (OK) this run. */
  private readonly dismissed = new Set<string>();
  private disagreementAlert = false;
  /** ask-user: the user's last pick and the disagreement (key) it answered. */
  private userPick: { key: string; pick: 'network' | 'provisioned' } | null;
  /** For status and benchmarks. */
  readonly counters = { recomputes: 0, reports: 0, checks: 0, mismatches: 0, disagreements: 0 };
  /** The mismatch prompt and the location menu on the display. */
  private readonly menu: LocationMenu;

  constructor(private readonly deps: LocationServiceDeps) {
    this.now = deps.now ?? Date.now;
    this.menu = new LocationMenu({
      alerts: deps.alerts,
      alertId: MISMATCH_ALERT_ID,
      log: deps.log,
      locations: () => asView(deps.locations()),
      select: (id) => this.select(id),
    });
    const raw = deps.store.getObservation('choice')?.data;
    this.choice = raw ? (JSON.parse(raw) as Choice | null) : null;
    this.disagreementReported = deps.store.getObservation('disagreement')?.fingerprint ?? null;
    if (this.disagreementReported === 'none') this.disagreementReported = null;
    const picked = deps.store.getObservation('disagreement-pick')?.data;
    this.userPick = picked ? (JSON.parse(picked) as { key: string; pick: 'network' | 'provisioned' }) : null;
  }

  // ---- the emergency path's API: synchronous, no I/O ----

  /** The best location now, with its source, method and age; null when the phone knows none. */
  best(): RankedLocation | null {
    const b = this.ranked[0];
    return b ? { ...b, ageMs: Math.max(0, this.now() - b.observedAt) } : null;
  }

  /** Every candidate in rank order. */
  all(): RankedLocation[] {
    const now = this.now();
    return this.ranked.map((l) => ({ ...l, ageMs: Math.max(0, now - l.observedAt) }));
  }

  /**
   * Called (synchronously, after the re-ranking) whenever the best location changes
   * in content: source, method, civic or geodetic value. For parts that prepare
   * work ahead of time, like the emergency path's PIDF-LO. Returns an unsubscribe.
   */
  onBestChange(fn: (best: RankedLocation | null) => void): () => void {
    this.bestListeners.push(fn);
    return () => {
      const i = this.bestListeners.indexOf(fn);
      if (i >= 0) this.bestListeners.splice(i, 1);
    };
  }

  /** An ELIN from the switch (LLDP-MED), for a PSAP that looks locations up by number. */
  elin(): string | null {
    return this.elinValue;
  }

  /** The open disagreement between the network's and the provisioned address, if any. */
  disagreement(): Disagreement | null {
    return this.disagreementNow;
  }

  /**
   * What a 911 call sends: the best location, and when the network and the
   * provisioned address disagree, the other of the two as a second location.
   */
  callLocations(): CallLocations {
    const first = this.best();
    const d = this.disagreementNow;
    let second: RankedLocation | null = null;
    if (d && first && (d.chosen === 'network' || d.chosen === 'provisioned')) {
      const other = d.chosen === 'network' ? 'provisioned' : d.network.source;
      const found = this.ranked.find(
        (l) => l.kind === 'civic' && l.source === other && (other === 'provisioned' || l.origin.iface === d.network.origin.iface),
      );
      second = found ? { ...found, ageMs: Math.max(0, this.now() - found.observedAt) } : null;
    }
    return { first, second, elin: this.elinValue };
  }

  /** ask-user: the user's pick for the open disagreement (handset soft keys, e911ctl location use). */
  pick(which: 'network' | 'provisioned'): Disagreement {
    const d = this.disagreementNow;
    if (!d) throw Object.assign(new Error('the network and the provisioned address agree: nothing to pick'), { code: 'no-disagreement' });
    if (d.policy !== 'ask-user')
      throw Object.assign(new Error(`the account's policy is ${d.policy}: the phone does not ask`), { code: 'policy' });
    this.userPick = { key: d.key, pick: which };
    this.deps.store.recordObservation('disagreement-pick', `${d.key}|${which}`, { ...this.userPick, at: this.now() });
    this.deps.log.info({ pick: which, policy: d.policy }, 'the user picked which address a 911 call sends');
    this.recompute('pick');
    return this.disagreementNow ?? d;
  }

  // ---- lifecycle ----

  start(): void {
    const { network, lldp, dhcp, held } = this.deps;
    const onNet = (c: { reasons: string[] }) => this.onNetworkChange(c.reasons.includes('start') ? 'start' : 'network');
    network.on('change', onNet);
    this.unsubscribe.push(() => network.off('change', onNet));
    if (lldp) {
      const onLldp = () => this.onNetworkChange('lldp');
      lldp.on('neighbors', onLldp);
      this.unsubscribe.push(() => lldp.off('neighbors', onLldp));
    }
    if (dhcp) {
      const onDhcp = () => this.recompute('dhcp');
      dhcp.on('update', onDhcp);
      this.unsubscribe.push(() => dhcp.off('update', onDhcp));
    }
    if (held) {
      const onHeld = () => this.recompute('held');
      held.on('update', onHeld);
      this.unsubscribe.push(() => held.off('update', onHeld));
    }
    this.started = true;
    this.firstTimer = setTimeout(() => {
      this.firstTimer = null;
      this.check('timer');
      this.everyTimer = setInterval(() => this.check('timer'), this.deps.checkEveryMs);
    }, this.deps.firstCheckMs);
    this.recompute('start');
  }

  stop(): void {
    this.started = false;
    for (const u of this.unsubscribe.splice(0)) u();
    if (this.firstTimer) clearTimeout(this.firstTimer);
    if (this.everyTimer) clearInterval(this.everyTimer);
    this.firstTimer = this.everyTimer = null;
  }

  /** The provisioned address changed (an address push was applied). */
  addressChanged(): void {
    // Before start (it follows the agent's ready): start() reads the address then; a report
    // now would go out without the network's snapshot.
    if (!this.started) return;
    this.recompute('address');
    if (this.lastCheckAt !== null) this.check('address');
  }

  /** A new locations push was applied. */
  locationsChanged(): void {
    if (!this.started) return; // start() reads the locations then
    if (this.lastCheckAt !== null) this.check('locations');
    else this.recompute('locations');
  }

  // ---- the user ----

  /** list()'s status alone: without reading the locations. */
  listStatus(): LocationListView['status'] {
    const current = this.currentChoice();
    const a = this.assessment;
    return current && !current.confirmed ? 'selected' : a ? a.status : 'pending';
  }

  list(): LocationListView {
    const a = this.assessment;
    const b = this.best();
    const matchIds = new Set(a?.matches.map((m) => m.id) ?? []);
    // Every location is read from the document only now, for this answer.
    const offer = a?.choices === 'matches' ? a.matches : (asView(this.deps.locations())?.all() ?? []);
    const current = this.currentChoice();
    return {
      status: this.listStatus(),
      reason: a?.reason ?? 'the first check runs 10 minutes after start or at the first network change',
      assigned: a?.assigned ? { id: a.assigned.id, code: a.assigned.code, name: a.assigned.name } : null,
      best: b ? summary(b) : null,
      choices: offer.map((l) => this.choiceView(l, matchIds, a?.assigned?.id ?? null)),
      selected: current ? { locationId: current.locationId, confirmed: current.confirmed, at: new Date(current.at).toISOString() } : null,
      lastCheckAt: this.lastCheckAt === null ? null : new Date(this.lastCheckAt).toISOString(),
      candidates: this.all().map((l) => ({ ...summary(l), rank: l.rank, ageMs: l.ageMs })),
      elin: this.elinValue,
      policy: this.policy(),
      disagreement: this.disagreementNow ? disagreementView(this.disagreementNow) : null,
    };
  }

  /**
   * The user picks a location ('current' confirms the assigned one). The choice is
   * reported as a location-selected event; the server makes it the user's address.
   */
  select(idOrCurrent: string): { locationId: string; confirmed: boolean } {
    const doc = asView(this.deps.locations());
    if (!doc) throw Object.assign(new Error('no locations have been pushed to this phone'), { code: 'no-locations' });
    const a = this.assessment ?? this.assessNow();
    const confirmed = idOrCurrent === 'current';
    const loc = confirmed ? a.assigned : doc.findFirst(idOrCurrent, (l) => l.id === idOrCurrent || l.code === idOrCurrent);
    if (!loc) {
      throw Object.assign(new Error(confirmed ? 'no location is assigned to confirm' : `unknown location ${idOrCurrent}`), {
        code: 'unknown-location',
      });
    }
    const choice: Choice = {
      attachment: this.attachmentKey(),
      locationId: loc.id,
      locationCode: loc.code,
      name: loc.name,
      civic: loc.civic as Record<string, string>,
      confirmed,
      at: this.now(),
    };
    this.choice = choice;
    this.deps.store.recordObservation(
      'choice',
      `${choice.attachment}|${choice.locationId}|${confirmed}|${choice.at}`,
      choice,
      this.deps.newEvent('location-selected', {
        locationId: loc.id,
        locationCode: loc.code,
        confirmed,
        network: this.facts(),
        previousLocationId: a.assigned?.id ?? null,
      }),
    );
    this.deps.wake();
    this.deps.log.info({ locationId: loc.id, confirmed }, 'location chosen by the user');
    this.clearAlert();
    if (this.mismatchKey !== null) this.deps.store.recordObservation('mismatch', 'none', null);
    this.mismatchKey = null;
    this.recompute('choice');
    return { locationId: loc.id, confirmed };
  }

  // ---- internals ----

  private onNetworkChange(kind: 'start' | 'network' | 'lldp'): void {
    this.deps.held?.refresh();
    // The comparison runs at once on every network change (not for the first
    // snapshot); it re-ranks too, so one change makes one report.
    if (kind !== 'start' && this.started) this.check('network');
    else this.recompute(kind);
  }

  private facts(): NetworkFacts {
    const snap = this.deps.network.current();
    return {
      addresses: snap ? snapshotAddresses(snap).map((a) => a.address) : [],
      switches: (this.deps.lldp?.neighbors() ?? []).map((n) => ({ chassisId: n.chassisId, portId: n.portId })),
    };
  }

  /** Where the phone is attached: gateways, switch ports, IPv4 networks. A user's pick holds while this holds. */
  private attachmentKey(): string {
    const snap = this.deps.network.current();
    return JSON.stringify({
      gw4: snap?.gateway4 ? `${snap.gateway4.address}/${snap.gateway4.mac ?? ''}` : null,
      gw6: snap?.gateway6?.address ?? null,
      sw: (this.deps.lldp?.neighbors() ?? []).map((n) => `${n.chassisId}/${n.portId}`).sort(),
      v4: snap
        ? snapshotAddresses(snap)
            .filter((a) => a.family === 'IPv4')
            .map((a) => `${a.address}/${a.prefix}`)
            .sort()
        : [],
    });
  }

  private currentChoice(): Choice | null {
    return this.choice && this.choice.attachment === this.attachmentKey() ? this.choice : null;
  }

  private assessNow(): Assessment {
    return assess(this.deps.locations(), this.facts(), this.deps.address()?.doc.locationCode ?? null);
  }

  /** The comparison with the assigned location; raises or clears the alert. */
  private check(trigger: string): void {
    this.counters.checks++;
    this.lastCheckAt = this.now();
    let a = this.assessNow();
    const choice = this.currentChoice();
    if (choice && a.status === 'mismatch') {
      // The user has answered for this attachment: confirmed the assigned location,
      // or picked one the server has not pushed back yet. Do not ask again.
      if (choice.confirmed ? choice.locationId === a.assigned?.id : choice.locationId !== a.assigned?.id) {
        a = {
          ...a,
          status: 'confirmed',
          reason: choice.confirmed ? 'the user confirmed the assigned location here' : 'the user picked a location here',
        };
      }
    }
    if (choice && !choice.confirmed && a.assigned?.id === choice.locationId) {
      // The server made the pick the assigned location: the provisioned address now says it.
      this.choice = null;
      this.deps.store.recordObservation('choice', 'none', null);
    }
    this.assessment = a;
    if (a.status === 'mismatch') this.onMismatch(a, trigger);
    else {
      // Written once when a mismatch ends, so the same mismatch coming back is reported again.
      if (this.mismatchKey !== null) this.deps.store.recordObservation('mismatch', 'none', null);
      this.mismatchKey = null;
      this.clearAlert();
    }
    this.recompute(trigger);
  }

  private onMismatch(a: Assessment, trigger: string): void {
    const key = JSON.stringify([this.attachmentKey(), a.assigned?.id ?? null, a.matches.map((m) => m.id)]);
    this.menu.show(a);
    this.alertRaised = true;
    if (key === this.mismatchKey) return; // the same mismatch is reported once
    this.mismatchKey = key;
    this.counters.mismatches++;
    this.deps.store.recordObservation(
      'mismatch',
      key,
      { at: this.now() },
      this.deps.newEvent('location-mismatch', {
        trigger,
        reason: a.reason,
        assignedLocationId: a.assigned?.id ?? null,
        matchingLocationIds: a.matches.map((m) => m.id),
        network: this.facts(),
      }),
    );
    this.deps.wake();
    this.deps.log.warn({ assigned: a.assigned?.id ?? null, matches: a.matches.map((m) => m.id), reason: a.reason }, 'location mismatch');
  }

  private clearAlert(): void {
    if (!this.alertRaised) return;
    this.alertRaised = false;
    this.menu.close();
  }

  private choiceView(l: RecommendedLocation, matchIds: Set<string>, assignedId: string | null): LocationChoiceView {
    return {
      id: l.id,
      code: l.code,
      name: l.name,
      lines: formatAddressLines(l.civic),
      matches: matchIds.has(l.id),
      assigned: l.id === assignedId,
    };
  }

  /** Keeps a stable observedAt per value: the time it was first seen in this form. */
  private observed(key: string, value: unknown): number {
    const text = JSON.stringify(value);
    const prev = this.seen.get(key);
    if (prev && prev.text === text) return prev.at;
    const at = this.now();
    this.seen.set(key, { text, at });
    return at;
  }

  private gather(): Location[] {
    const out: Location[] = [];
    const choice = this.currentChoice();
    if (choice && !choice.confirmed) {
      out.push({
        source: 'user',
        method: 'Manual',
        civic: choice.civic,
        geo: null,
        observedAt: choice.at,
        origin: { locationId: choice.locationId },
        locationId: choice.locationId,
        locationCode: choice.locationCode,
      });
    }
    const addr = this.deps.address();
    if (addr) {
      out.push({
        source: 'provisioned',
        method: 'Manual',
        civic: addr.doc.civic,
        geo: null,
        observedAt: Date.parse(addr.appliedAt) || this.now(),
        origin: { version: String(addr.version) },
        ...(addr.doc.locationCode ? { locationCode: addr.doc.locationCode } : {}),
      });
    }
    this.elinValue = null;
    for (const n of this.deps.lldp?.neighbors() ?? []) {
      if (!n.med) continue;
      const civic = n.med.civic ? civicFromLldpd(n.med.civic).civic : null;
      const c = n.med.coordinates;
      const geo = c
        ? {
            latitude: c.latitude,
            longitude: c.longitude,
            altitude: c.altitudeUnit === 'm' ? c.altitude : null,
            radius: null,
            datum: c.datum ?? 'WGS84',
          }
        : null;
      if (n.med.elin && !this.elinValue) this.elinValue = n.med.elin;
      if (!civic && !geo) continue;
      const origin = { iface: n.iface, chassisId: n.chassisId, portId: n.portId };
      out.push({
        source: 'lldp-med',
        method: 'LLDP-MED',
        civic,
        geo,
        observedAt: this.observed(`lldp:${n.iface}#${n.rid}`, [origin, civic, geo]),
        origin,
      });
    }
    for (const d of this.deps.dhcp?.locations() ?? []) {
      const g = d.geo;
      const geo = g
        ? {
            latitude: g.latitude,
            longitude: g.longitude,
            altitude: g.altitudeType === 'm' ? g.altitude : null,
            radius: null,
            datum: g.datum,
          }
        : null;
      const civic = d.civic?.civic ?? null;
      out.push({
        source: 'dhcp',
        method: 'DHCP',
        civic,
        geo,
        observedAt: this.observed(`dhcp:${d.iface}`, [civic, geo]),
        origin: { iface: d.iface },
        ...(d.civic ? { what: d.civic.what } : {}),
      });
    }
    const h = this.deps.held?.current();
    if (h) {
      const geo = h.geo ? { ...h.geo, datum: 'WGS84' } : null;
      out.push({
        source: 'held',
        method: h.method ?? 'Wiremap',
        civic: h.civic,
        geo,
        observedAt: this.observed('held', [h.civic, h.geo]),
        origin: { url: h.url },
      });
    }
    return out;
  }

  private policy(): LocationPolicy {
    return this.deps.address()?.doc.locationPolicy ?? DEFAULT_LOCATION_POLICY;
  }

  /** Compares the preferred network civic address (LLDP-MED, then DHCP) with the provisioned one. */
  private detect(gathered: Location[]): Disagreement | null {
    const provisioned = gathered.find((l) => l.source === 'provisioned' && l.civic);
    if (!provisioned) return null;
    const network = rank(
      gathered.filter((l) => (l.source === 'lldp-med' || l.source === 'dhcp') && l.civic),
      this.now(),
      false,
    ).find((l) => l.kind === 'civic');
    if (!network) return null;
    const fields = disagreeingFields(network.civic!, provisioned.civic!);
    if (fields.length === 0) return null;
    const netLoc = gathered.find(
      (l) => l.source === network.source && l.origin.iface === network.origin.iface && l.civic,
    ) as Disagreement['network'];
    const key = JSON.stringify([netLoc.source, netLoc.civic, provisioned.civic]);
    const p = this.userPick;
    const policy = this.policy();
    return {
      key,
      policy,
      fields,
      network: netLoc,
      provisioned,
      pick: policy === 'ask-user' && p?.key === key ? p.pick : null,
      chosen: null,
      since: Math.max(netLoc.observedAt, provisioned.observedAt),
    };
  }

  /** Alert on the display, event to the server (once per state), log line. */
  private announceDisagreement(trigger: string): void {
    const d = this.disagreementNow;
    if (!d) {
      if (this.disagreementReported !== null) {
        this.disagreementReported = null;
        this.deps.store.recordObservation(
          'disagreement',
          'none',
          null,
          this.deps.newEvent('location-disagreement', {
            state: 'resolved',
            policy: this.policy(),
            chosen: null,
            fields: [],
            provisioned: null,
            network: null,
            elin: this.elinValue,
            trigger,
          }),
        );
        this.deps.wake();
        this.deps.log.info('the network and the provisioned address agree again');
      }
      this.clearDisagreementAlert();
      return;
    }
    const reported = JSON.stringify([d.key, d.policy, d.chosen]);
    if (reported !== this.disagreementReported) {
      this.disagreementReported = reported;
      this.counters.disagreements++;
      const addr = this.deps.address();
      this.deps.store.recordObservation(
        'disagreement',
        reported,
        { at: this.now() },
        this.deps.newEvent('location-disagreement', {
          state: 'open',
          policy: d.policy,
          chosen: d.chosen,
          fields: d.fields,
          provisioned: {
            civic: d.provisioned.civic,
            ...(d.provisioned.locationCode ? { locationCode: d.provisioned.locationCode } : {}),
            ...(addr ? { version: addr.version } : {}),
          },
          network: { source: d.network.source, method: d.network.method, civic: d.network.civic, origin: d.network.origin },
          elin: this.elinValue,
          trigger,
        }),
      );
      this.deps.wake();
      this.deps.log.warn(
        { fields: d.fields, policy: d.policy, chosen: d.chosen, network: d.network.civic, provisioned: d.provisioned.civic },
        'location disagreement: the network says the phone is somewhere else',
      );
    }
    const answered = d.policy === 'ask-user' ? d.pick !== null : this.dismissed.has(reported);
    if (answered) {
      this.clearDisagreementAlert();
      return;
    }
    this.disagreementAlert = true;
    const net = d.network.source === 'lldp-med' ? 'Switch' : 'Network';
    const short = (c: Record<string, string>) =>
      formatAddressLines(c)
        .filter((l) => l !== c.NAM && l !== c.country)
        .slice(0, 2);
    const sends = d.chosen === 'network' ? net.toLowerCase() : d.chosen === 'provisioned' ? 'set address' : 'neither';
    this.deps.alerts.raise({
      id: DISAGREEMENT_ALERT_ID,
      lines: [
        'LOCATION DIFFERS',
        `${net}: ${short(d.network.civic as Record<string, string>).join(', ')}`,
        `Set: ${short(d.provisioned.civic as Record<string, string>).join(', ')}`,
        `911 sends: ${sends}`,
        ...(d.policy === 'ask-user' ? [`Soft1: use ${net.toLowerCase()}`, 'Soft2: use set address'] : ['OK: dismiss']),
      ],
      led: 'blink-slow',
      onKey: (k: FunctionKey) => {
        if (d.policy === 'ask-user' && (k === 'soft1' || k === 'soft2')) {
          this.pick(k === 'soft1' ? 'network' : 'provisioned');
          return true;
        }
        if (d.policy !== 'ask-user' && k === 'ok') {
          this.dismissed.add(reported);
          this.clearDisagreementAlert();
          return true;
        }
        return false;
      },
    });
  }

  private clearDisagreementAlert(): void {
    if (!this.disagreementAlert) return;
    this.disagreementAlert = false;
    this.deps.alerts.clear(DISAGREEMENT_ALERT_ID);
  }

  /** Re-ranks and reports if anything a report carries changed. No timers, no network: a few reads of memory. */
  private recompute(reason: string): void {
    this.counters.recomputes++;
    const previous = this.ranked[0] ?? null;
    const gathered = this.gather();
    const d = this.detect(gathered);
    // The network's address goes first when the policy (or the user's pick) says so:
    // the provisioned one drops below the network's, as when the network contradicts it.
    const networkFirst = d !== null && (d.policy === 'network-first' || (d.policy === 'ask-user' && d.pick !== 'provisioned'));
    this.ranked = rank(gathered, this.now(), this.assessment?.status === 'mismatch' || networkFirst);
    if (d) {
      const top = this.ranked[0];
      d.chosen =
        top?.kind !== 'civic' ? null : top.source === 'provisioned' ? 'provisioned' : top.source === d.network.source ? 'network' : null;
    }
    this.disagreementNow = d;
    this.announceDisagreement(reason);
    this.report(reason, previous);
    const best = this.ranked[0] ?? null;
    const second = this.callLocations().second;
    const key = best
      ? JSON.stringify([
          best.source,
          best.method,
          best.kind,
          best.civic,
          best.geo,
          best.locationCode ?? null,
          second?.civic ?? null,
          second?.method ?? null,
          this.elinValue,
        ])
      : 'null';
    if (key !== this.bestKey) {
      this.bestKey = key;
      for (const fn of [...this.bestListeners]) {
        try {
          fn(this.best());
        } catch (err) {
          this.deps.log.error({ err }, 'best-location listener failed');
        }
      }
    }
  }

  private report(reason: string, previous: RankedLocation | null): void {
    const snap = this.deps.network.current();
    const best = this.ranked[0] ?? null;
    const data: LocationReportData = {
      best: best ? summary(best) : null,
      candidates: this.ranked.map(summary),
      elin: this.elinValue,
      network: snap ? networkReport(snap) : null,
      lldp: (this.deps.lldp?.neighbors() ?? []).map(lldpReport),
      // 'off' reports like no check at all: the first check finding recommendations off is not news.
      recommendation:
        this.assessment && this.assessment.status !== 'off'
          ? {
              status: this.assessment.status,
              assignedLocationId: this.assessment.assigned?.id ?? null,
              matchingLocationIds: this.assessment.matches.map((m) => m.id),
            }
          : null,
      disagreement: this.disagreementNow
        ? {
            fields: this.disagreementNow.fields,
            policy: this.disagreementNow.policy,
            chosen: this.disagreementNow.chosen,
            network: this.disagreementNow.network.source,
          }
        : null,
    };
    const fingerprint = JSON.stringify(data);
    if (this.lastReport?.fingerprint === fingerprint) return; // nothing changed: no write, no publish
    // After a restart the same report is not news: the row says the server already had it.
    if (this.deps.store.getObservation('report')?.fingerprint !== fingerprint) {
      const event = this.deps.newEvent('location-changed', {
        reason,
        best: data.best,
        previousBest: previous ? { source: previous.source, kind: previous.kind } : null,
        network: snap
          ? { addresses: snapshotAddresses(snap).map((a) => `${a.address}/${a.prefix}`), gateway4: snap.gateway4, gateway6: snap.gateway6 }
          : null,
        switch: data.lldp[0] ? { chassisId: data.lldp[0].chassisId, portId: data.lldp[0].portId } : null,
      });
      this.deps.store.recordObservation('report', fingerprint, data, event);
      this.deps.wake();
      this.counters.reports++;
    }
    this.lastReport = { fingerprint, ts: this.now() };
    this.deps.publishReport({ v: 1, ts: new Date(this.lastReport.ts).toISOString(), source: best?.source ?? 'none', data });
  }
}

function disagreementView(d: Disagreement): DisagreementView {
  return {
    fields: d.fields,
    policy: d.policy,
    chosen: d.chosen,
    pick: d.pick,
    network: {
      source: d.network.source,
      method: d.network.method,
      civic: d.network.civic as Record<string, string>,
      origin: d.network.origin,
    },
    provisioned: { civic: d.provisioned.civic as Record<string, string>, locationCode: d.provisioned.locationCode ?? null },
    since: new Date(d.since).toISOString(),
  };
}

function networkReport(s: NetworkSnapshot) {
  return {
    interfaces: s.interfaces.map((i) => ({
      name: i.name,
      mac: i.mac,
      up: i.up,
      addresses: i.addresses.map((a) => `${a.address}/${a.prefix}`),
    })),
    gateway4: s.gateway4,
    gateway6: s.gateway6,
    dns: s.dns,
  };
}

function lldpReport(n: LldpNeighbor) {
  const voice = n.med?.policies.find((p) => p.app === 'Voice');
  return {
    iface: n.iface,
    chassisId: n.chassisId,
    portId: n.portId,
    portDescr: n.portDescr,
    sysName: n.sysName,
    ...(n.med?.elin ? { elin: n.med.elin } : {}),
    ...(voice ? { voiceVlan: { vlan: voice.vlan, pcp: voice.pcp, dscp: voice.dscp } } : {}),
  };
}

export type { LocationSource };

// Decides what each phone should hold and pushes it: the signed address built
// from its user and location, and the signed locations list for
// recommendations. Versions are monotonic per phone and persisted; nothing is
// re-issued when the content did not change. Requests coalesce in a queue and
// go out with a bounded number of publishes in flight.
// Over 400 lines: the queue, its versions and its publishes share one state; split, each
// half would need the other's internals.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { DEFAULT_ACCOUNT, type Repo, type Location } from './db/repo.js';
import { isTransientConflict } from './db/sql.js';
import type { DesiredAddressStore, ProvisioningServer } from './server.js';
import { DEFAULT_LANGUAGE, DEFAULT_LOCATION_POLICY, type AddressDocument, type LocationPolicy } from '../protocol/address.js';
import type { AddressStatePayload, SignedAddress } from '../protocol/messages.js';
import type { LocationsDocument, RecommendedLocation } from '../protocol/locations.js';
import { canonicalJson } from '../protocol/canonical.js';
import { documentHash } from '../protocol/signing.js';
import { effectiveAddress, effectiveCallback, placeCivic } from './defaults.js';
import { InFlight } from './in-flight.js';
import type { UrgentWork } from './urgent-work.js';

export interface PushSummary {
  addresses: number;
  locations: number;
  unchanged: number;
  /** Phones that cannot get an address yet (no user; no address or callback of its own or the company's), or E911 is off. */
  skipped: number;
  failed: number;
}

export interface PusherDeps {
  repo: Repo;
  link: ProvisioningServer;
  log: Logger;
  now?: () => Date;
  /** Publishes in flight at once (brokers drop bursts beyond their queue). */
  window?: number;
  /** Called when a phone's documents were issued, for live views. */
  onIssued?: (deviceId: string, version: number) => void;
}

const sha = (text: string) => createHash('sha256').update(text).digest('hex');

/** The persistent desired-address store ProvisioningServer re-pushes from. */
export function repoDesiredStore(repo: Repo): DesiredAddressStore {
  // By device id, from the MQTT link: each in its phone's account.
  const inPhoneAccount = <T>(deviceId: string, fn: () => Promise<T>): Promise<T> =>
    repo.accountOfDevice(deviceId).then((account) => repo.inAccount(account ?? DEFAULT_ACCOUNT, fn));
  return {
    get: (deviceId) =>
      inPhoneAccount(deviceId, async () => {
        const s = (await repo.issuedAddress(deviceId))?.signed;
        return s ? (JSON.parse(s) as SignedAddress) : undefined;
      }),
    set: (signed) =>
      inPhoneAccount(signed.doc.deviceId, async () => {
        await repo.ensureDevice(signed.doc.deviceId);
        await repo.recordIssuedAddress(
          signed.doc.deviceId,
          signed.doc.version,
          contentHash(signed.doc),
          JSON.stringify(signed),
          signed.doc.issuedAt,
        );
      }),
    // By device id across accounts, as the reports' own batch reads them (ids are unique).
    versions: async (deviceIds) =>
      new Map(
        [...(await repo.issuedVersions(deviceIds))].flatMap(([id, v]) =>
          v.address > 0 ? [[id, { desired: v.address, applied: v.applied }]] : [],
        ),
      ),
  };
}

/** What an address says, without its version and time: equal content is not re-issued. */
export function contentHash(
  doc: Pick<
    AddressDocument,
    'deviceId' | 'civic' | 'callback' | 'displayName' | 'locationCode' | 'locationPolicy' | 'elinCallback' | 'language'
  >,
): string {
  return contentHashOf(canonicalJson(doc.civic), doc);
}

type HashedFields = Pick<
  AddressDocument,
  'deviceId' | 'callback' | 'displayName' | 'locationCode' | 'locationPolicy' | 'elinCallback' | 'language'
>;

/** contentHash with the civic part already in canonical form (shared by a location's phones). */
function contentHashOf(civicCanonical: string, doc: HashedFields): string {
  // The account settings only when not default, so documents from before them hash as they did.
  const settings = `${doc.locationPolicy ? `\npolicy=${doc.locationPolicy}` : ''}${doc.elinCallback ? '\nelin-callback' : ''}${doc.language ? `\nlang=${doc.language}` : ''}`;
  return sha(`${doc.deviceId}\n${civicCanonical}\n${doc.callback}\n${doc.displayName}\n${doc.locationCode ?? ''}${settings}`);
}

/** The account's settings that travel in each address document (left out when default). */
export function accountAddressSettings(a: {
  locationPolicy: LocationPolicy;
  elinCallback: boolean;
}): Pick<AddressDocument, 'locationPolicy' | 'elinCallback'> {
  return {
    ...(a.locationPolicy !== DEFAULT_LOCATION_POLICY ? { locationPolicy: a.locationPolicy } : {}),
    ...(a.elinCallback ? { elinCallback: true } : {}),
  };
}

export function recommendedLocation(l: Location): RecommendedLocation {
  return {
    id: String(l.id),
    code: l.code,
    name: l.name,
    civic: l.civic,
    cidrs: l.ipGroups.flatMap((g) => g.cidrs),
    ...(l.switchPorts.length ? { switchPorts: l.switchPorts } : {}),
  };
}

export class Pusher {
  private readonly pending = new Set<string>();
  private readonly forceLocations = new Set<string>();
  private readonly forceAddress = new Set<string>();
  /** Version and document hash of the last address this process issued to each phone. */
  private readonly issued = new Map<string, { version: number; hash: string }>();
  private running: Promise<void> = Promise.resolve();
  private draining = false;
  private readonly waiters: (() => void)[] = [];
  private readonly window: number;
  private readonly now: () => Date;
  /** Reports being checked and the read of scheduleAll(): stop() waits for them. */
  private readonly inFlight = new InFlight();
  /** Set by stop(): nothing new is queued. */
  private stopped = false;
  /** Phones whose push or report check came after stop(), told in one log line. */
  private notTaken = 0;
  readonly totals: PushSummary = { addresses: 0, locations: 0, unchanged: 0, skipped: 0, failed: 0 };
  private readonly publishFailed = (err: Error) => {
    this.totals.failed++;
    this.deps.log.warn({ err: err.message }, 'publish failed; the phone gets it when it reconnects');
  };
  /**
   * The locations lists of every push, sent apart from the addresses and not waited for by the
   * next push: a broker may store each retained list before it reads the next (NATS), and
   * addresses queued behind a push's lists (a location change after the first provisioning of
   * 45,000 phones) waited 36 s for them (scale bench).
   */
  private readonly locationsSender: WindowedSender;

  constructor(private readonly deps: PusherDeps) {
    this.window = deps.window ?? 256;
    this.now = deps.now ?? (() => new Date());
    // The lists give way to 911 work (Repo.urgent): one at a time while an event is stored or
    // notified. Held back entirely, a long call notification could keep them for minutes.
    this.locationsSender = new WindowedSender(this.window, this.publishFailed, deps.repo.urgentWork);
  }

  /**
   * Queues phones for a check-and-push; resolves when the queue has drained (the addresses
   * published; the locations lists may still be going out: idle() waits for them). force*: publish
   * again even when unchanged (same version; the phone reports it unchanged). After stop()
   * nothing is queued: it resolves at once (the next instance or start pushes).
   */
  schedule(deviceIds: Iterable<string>, opts: { forceLocations?: boolean; forceAddress?: boolean } = {}): Promise<void> {
    if (this.stopped) {
      this.notTaken += [...deviceIds].length;
      return Promise.resolve();
    }
    for (const id of deviceIds) {
      this.pending.add(id);
      if (opts.forceLocations) this.forceLocations.add(id);
      if (opts.forceAddress) this.forceAddress.add(id);
    }
    const done = new Promise<void>((resolve) => this.waiters.push(resolve));
    if (!this.draining) {
      this.draining = true;
      // Outside the caller's transaction, if any: the drain outlives it.
      this.running = this.deps.repo.detached(() => this.drain());
    }
    return done;
  }

  /** Every account's assigned phones. */
  async scheduleAll(): Promise<void> {
    if (this.stopped) return;
    const devices = await this.inFlight.add(this.deps.repo.allAssignedDevices());
    return this.schedule(devices.map((d) => d.deviceId));
  }

  /** Resolves once nothing is queued or in flight, the locations lists included. */
  async idle(): Promise<void> {
    while (this.draining) await this.running;
    await this.locationsSender.drained();
  }

  /**
   * Finishes what was taken (reports being checked, then every push queued: a change an admin
   * saved must not wait for the next start to reach its phones) and takes nothing more. Call once
   * nothing feeds it (the link's reports, the intake's batches, the jobs): the store closes after.
   */
  async stop(): Promise<void> {
    // The checks under way may still queue re-issues; one begun while they settled may not.
    await this.inFlight.settled();
    this.stopped = true;
    await this.inFlight.settled();
    await this.idle();
    if (this.notTaken > 0)
      this.deps.log.info({ phones: this.notTaken }, 'pushes and report checks that came while stopping were left to the next instance');
    this.notTaken = 0;
  }

  /**
   * A phone reported what it holds. If it holds a version this server never
   * issued (the server's database was restored or reset), issue above it so the
   * phone does not refuse the next push as a replay.
   */
  async onAddressState(deviceId: string, state: AddressStatePayload): Promise<void> {
    if (this.stopped) return void this.notTaken++;
    await this.inFlight.add(this.checkAddressState(deviceId, state));
  }

  private async checkAddressState(deviceId: string, state: AddressStatePayload): Promise<void> {
    // The phone refuses anything below its floors, even with nothing stored (its store was reset).
    const floor = state.floor ?? { address: 0, locations: 0 };
    // One transaction: the read of what was issued and the raise above it are one step.
    const reissue = await this.deps.repo.transaction(async () => {
      // Kept for a phone this server does not know yet (its database lost it): its first issue goes above them.
      if (floor.address > 0 || floor.locations > 0) await this.deps.repo.ensureDevice(deviceId);
      const reissueLocations = await this.raiseLocationsTo(deviceId, floor.locations);
      const reissueAddress = await this.raiseAddressTo(deviceId, state, floor.address);
      return reissueAddress || reissueLocations;
    });
    if (reissue) void this.schedule([deviceId]);
  }

  /**
   * A batch of phones' address-state reports (PhoneIntake's, after it wrote them): one read of
   * what was issued to them all, and onAddressState's transaction only for a phone whose report
   * may call for a re-issue. A transaction for every report (four round trips each on
   * PostgreSQL) kept the pool busy long after a push (scale bench).
   */
  async onAddressStates(reports: readonly { deviceId: string; account: string; state: AddressStatePayload }[]): Promise<void> {
    if (this.stopped) {
      this.notTaken += reports.length;
      return;
    }
    await this.inFlight.add(this.checkAddressStates(reports));
  }

  private async checkAddressStates(reports: readonly { deviceId: string; account: string; state: AddressStatePayload }[]): Promise<void> {
    const issued = await this.deps.repo.issuedVersions(reports.map((r) => r.deviceId));
    await this.learnIssued(
      reports.filter(
        (r) => r.state.version === issued.get(r.deviceId)?.address && (this.issued.get(r.deviceId)?.version ?? 0) < r.state.version,
      ),
    );
    for (const r of reports) {
      const i = issued.get(r.deviceId);
      if (i && this.nothingToRaise(r.deviceId, r.state, i)) continue;
      try {
        await this.deps.repo.inAccount(r.account, () => this.checkAddressState(r.deviceId, r.state));
      } catch (err) {
        this.deps.log.error({ err, deviceId: r.deviceId }, 'address state not handled');
      }
    }
  }

  /**
   * Phones that report the version issued last, by another instance sharing the database (or an
   * earlier run), newer than what this process remembers: that document's hash, read for them
   * all at once, so their reports are decided without a transaction each. Without it every such
   * report took onAddressState's transaction and its reads, and a second instance made 17 times
   * the commits of one (scale bench).
   */
  private async learnIssued(reports: readonly { deviceId: string; state: AddressStatePayload }[]): Promise<void> {
    if (reports.length === 0) return;
    const signed = await this.deps.repo.issuedSignedAddresses(reports.map((r) => r.deviceId));
    for (const [deviceId, text] of signed) {
      let doc: SignedAddress['doc'];
      try {
        doc = (JSON.parse(text) as SignedAddress).doc;
        if (typeof doc?.version !== 'number') continue;
      } catch {
        continue; // an unreadable row is left to the full check, which reports it
      }
      // What this process issued meanwhile is newer, and stays.
      if ((this.issued.get(deviceId)?.version ?? 0) < doc.version)
        this.issued.set(deviceId, { version: doc.version, hash: documentHash(doc) });
    }
  }

  /**
   * Whether onAddressState would leave this report alone, decided without a transaction: the
   * phone's floors at or below what was issued, and its version below the last issued or, as
   * this process issued it, the same one with the same hash. Anything else takes the full check.
   */
  private nothingToRaise(deviceId: string, state: AddressStatePayload, issued: { address: number; locations: number }): boolean {
    const floor = state.floor ?? { address: 0, locations: 0 };
    if (floor.locations > issued.locations) return false;
    const ours = this.issued.get(deviceId);
    if (ours)
      return (
        state.version <= ours.version && floor.address <= ours.version && !(state.version === ours.version && ours.hash !== state.hash)
      );
    return state.version < issued.address && floor.address <= issued.address;
  }

  /** Whether the next address must be issued above what the phone holds or refuses. */
  private async raiseAddressTo(deviceId: string, state: AddressStatePayload, floor: number, fromDatabase = false): Promise<boolean> {
    let ours = fromDatabase ? undefined : this.issued.get(deviceId);
    const stored = ours ? null : await this.deps.repo.issuedAddress(deviceId);
    if (!ours && stored?.signed) {
      // Not issued by this process: what the database says was issued last.
      const doc = (JSON.parse(stored.signed) as SignedAddress).doc;
      ours = { version: stored.version, hash: documentHash(doc) };
      this.issued.set(deviceId, ours);
    }
    const issuedVersion = ours?.version ?? stored?.version ?? 0;
    const behind = state.version > issuedVersion || floor > issuedVersion;
    const conflict = ours !== undefined && state.version === ours.version && ours.hash !== state.hash;
    if (!behind && !conflict) return false;
    // What this process remembers may be older than what another instance sharing the database
    // issued since: only the database's last issue can say the phone is ahead. (Trusting the
    // memory, two instances re-issued above each other's versions on every report.)
    if (!fromDatabase && this.issued.has(deviceId)) {
      this.issued.delete(deviceId);
      return this.raiseAddressTo(deviceId, state, floor, true);
    }
    const above = Math.max(state.version, floor, issuedVersion);
    this.deps.log.warn(
      { deviceId, phoneVersion: state.version, phoneFloor: floor, issuedVersion },
      'phone holds or refuses an address this server did not issue last: re-issuing above it',
    );
    const current = await this.deps.repo.issuedAddress(deviceId);
    await this.deps.repo.recordIssuedAddress(deviceId, above, 'stale', current?.signed ?? '', new Date(0).toISOString());
    this.issued.delete(deviceId);
    return true;
  }

  /** Whether the next locations document must be issued above the phone's floor. */
  private async raiseLocationsTo(deviceId: string, floor: number): Promise<boolean> {
    const issued = (await this.deps.repo.issuedLocations(deviceId))?.version ?? 0;
    if (floor <= issued) return false;
    this.deps.log.warn(
      { deviceId, phoneFloor: floor, issuedVersion: issued },
      'phone refuses locations below a version this server did not issue: re-issuing above it',
    );
    await this.deps.repo.recordIssuedLocations(deviceId, floor, 'stale');
    return true;
  }

  private async drain(): Promise<void> {
    try {
      // Start on a later turn: the caller (an API request, say) returns first.
      await new Promise((r) => setImmediate(r));
      await this.drainLoop();
    } finally {
      // Synchronously after the loop: a schedule() from now on starts a new drain.
      this.draining = false;
      for (const resolve of this.waiters.splice(0)) resolve();
    }
  }

  private async drainLoop(): Promise<void> {
    while (this.pending.size > 0) {
      const batch = [...this.pending];
      this.pending.clear();
      const take = (set: Set<string>) => {
        const taken = new Set(batch.filter((id) => set.has(id)));
        for (const id of taken) set.delete(id);
        return taken;
      };
      const force = { locations: take(this.forceLocations), address: take(this.forceAddress) };
      // Each account's phones with that account's settings and locations, in its scope.
      const { repo } = this.deps;
      const byAccount = new Map<string, string[]>();
      try {
        const accounts = await repo.accountsOfDevices(batch);
        for (const id of batch) {
          const account = accounts.get(id);
          if (account === undefined) {
            this.totals.skipped++;
            continue;
          }
          // Appended in place: a copy per phone made this loop quadratic (100,000 phones in one
          // account: minutes of one core before the first push, scale bench).
          const ids = byAccount.get(account);
          if (ids) ids.push(id);
          else byAccount.set(account, [id]);
        }
      } catch (err) {
        this.deps.log.error({ err, count: batch.length }, 'push batch failed');
        this.totals.failed += batch.length;
      }
      for (const [account, ids] of byAccount) {
        try {
          await repo.inAccount(account, () => this.pushBatch(ids, force));
        } catch (err) {
          this.deps.log.error({ err, count: ids.length, account }, 'push batch failed');
          this.totals.failed += ids.length;
        }
      }
    }
  }

  private async pushBatch(deviceIds: string[], force: { locations: Set<string>; address: Set<string> }): Promise<void> {
    const { repo, link, log } = this.deps;
    const account = await repo.account();
    if (!account.e911Enabled) {
      this.totals.skipped += deviceIds.length;
      log.debug({ count: deviceIds.length }, 'E911 is not enabled for the account: nothing pushed');
      return;
    }
    const issuedAt = this.now().toISOString();
    const settings = accountAddressSettings(account);
    const locations = await repo.locations();
    const byId = new Map(locations.map((l) => [l.id, l]));
    const allRecommended = locations.map(recommendedLocation);
    const listHash = sha(canonicalJson(allRecommended));
    const civicText = new Map(locations.map((l) => [l.id, canonicalJson(l.civic)]));
    const companyCivic = account.defaultAddress ? canonicalJson(placeCivic(account.defaultAddress, account.name || undefined)) : null;
    const addressSender = new WindowedSender(this.window, this.publishFailed);
    const { locationsSender } = this;
    let addressCount = 0;
    let locationCount = 0;

    // In chunks: each is signed and recorded in one transaction, then published
    // while the next is signed, and the event loop breathes between chunks so the
    // API keeps answering. A crash between record and publish leaves a phone
    // stale, and its next reconnect re-pushes it.
    for (let i = 0; i < deviceIds.length; i += PUSH_CHUNK) {
      const chunk = deviceIds.slice(i, i + PUSH_CHUNK);
      let contexts = await repo.pushContexts(chunk);
      let addresses: SignedAddress[] = [];
      let locationDocs: LocationsDocument[] = [];
      // Recorded together at the chunk's end: one statement each, not one per phone.
      let issuedAddresses: Parameters<Repo['recordIssuedMany']>[0][number][] = [];
      let issuedLocations: Parameters<Repo['recordIssuedMany']>[1][number][] = [];
      // Counted and remembered once the chunk is committed: a rolled-back attempt counts nothing.
      let unchanged = 0;
      let skipped = 0;
      let issuedHere: [string, { version: number; hash: string }][] = [];
      let recorded = { addresses: new Set<string>(), locations: new Set<string>() };
      const signAndRecord = () =>
        repo.transaction(async () => {
          for (const deviceId of chunk) {
            const c = contexts.get(deviceId);
            if (!c || c.userId === null) {
              skipped++;
              continue;
            }
            const location = c.locationId !== null ? byId.get(c.locationId) : undefined;
            // The user's own, else the company's: each default only where the user has none.
            const place = effectiveAddress(
              { locationId: c.locationId, ownAddress: c.ownAddress, displayName: c.displayName ?? '' },
              location,
              account,
            );
            const caller = effectiveCallback({ callback: c.callback, displayName: c.displayName ?? '' }, account);
            if (place && caller?.displayName) {
              const content = {
                deviceId,
                civic: place.civic,
                callback: caller.callback,
                displayName: caller.displayName,
                ...(place.locationCode ? { locationCode: place.locationCode } : {}),
                ...settings,
                // Left out for English (the default), so those documents and their hashes are unchanged.
                ...(c.language && c.language !== DEFAULT_LANGUAGE ? { language: c.language } : {}),
              };
              const civicCanonical =
                place.source === 'location'
                  ? civicText.get(location!.id)!
                  : place.source === 'company'
                    ? companyCivic!
                    : canonicalJson(place.civic);
              const hash = contentHashOf(civicCanonical, content);
              if (c.contentHash === hash) {
                const stored = force.address.has(deviceId) ? (await repo.issuedAddress(deviceId))?.signed : null;
                if (stored) addresses.push(JSON.parse(stored) as SignedAddress);
                else unchanged++;
              } else {
                const version = Math.max(c.issuedVersion, c.appliedVersion ?? 0) + 1;
                const { signed, hash: docHash } = link.signAddressWithHash({ v: 1, version, issuedAt, ...content });
                issuedAddresses.push({ deviceId, version, contentHash: hash, signed: JSON.stringify(signed), issuedAt });
                issuedHere.push([deviceId, { version, hash: docHash }]);
                addresses.push(signed);
              }
            } else skipped++;

            const recommendations = account.recommendations || c.recommendations;
            const assignedLocationId = location ? String(location.id) : null;
            const locHash = sha(`${recommendations}\n${assignedLocationId}\n${recommendations ? listHash : ''}`);
            if (c.locationsHash !== locHash || force.locations.has(deviceId)) {
              const version = c.locationsVersion + 1;
              issuedLocations.push({ deviceId, version, contentHash: locHash });
              locationDocs.push({
                v: 1,
                deviceId,
                version,
                issuedAt,
                recommendations,
                assignedLocationId,
                locations: recommendations ? allRecommended : [],
              });
            }
          }
          recorded = await repo.recordIssuedMany(issuedAddresses, issuedLocations);
        });
      // Two instances' writes to the same phones' rows (this push, the other's report batch) can
      // deadlock on PostgreSQL: the loser is rolled back whole and is signed and recorded again.
      // Dropped, its phones kept their old address until they reconnected (scale bench, 2 instances).
      for (let attempt = 1; ; attempt++) {
        addresses = [];
        locationDocs = [];
        issuedAddresses = [];
        issuedLocations = [];
        unchanged = 0;
        skipped = 0;
        issuedHere = [];
        recorded = { addresses: new Set<string>(), locations: new Set<string>() };
        try {
          // Read again: the conflict was with a write to these rows.
          if (attempt > 1) contexts = await repo.pushContexts(chunk);
          await signAndRecord();
          break;
        } catch (err) {
          if (!isTransientConflict(err) || attempt > CONFLICT_RETRIES) throw err;
          log.warn({ err: (err as Error).message, phones: chunk.length, attempt }, 'push chunk lost a lock conflict: recording it again');
        }
      }
      // A phone another instance issued to after this chunk read it was not recorded: its
      // document is not sent (two documents under one version made the phone's report look
      // like a conflict, and it was issued one version higher), and it is looked at again.
      const signedHere = new Set(issuedAddresses.map((a) => a.deviceId));
      const moved = new Set([
        ...[...signedHere].filter((id) => !recorded.addresses.has(id)),
        ...issuedLocations.filter((l) => !recorded.locations.has(l.deviceId)).map((l) => l.deviceId),
      ]);
      addresses = addresses.filter((a) => !signedHere.has(a.doc.deviceId) || recorded.addresses.has(a.doc.deviceId));
      locationDocs = locationDocs.filter((l) => recorded.locations.has(l.deviceId));
      if (moved.size > 0) {
        log.info({ phones: moved.size }, 'issued to by another instance meanwhile: looked at again');
        void this.schedule(moved);
      }
      this.totals.unchanged += unchanged;
      this.totals.skipped += skipped;
      for (const [deviceId, issued] of issuedHere) if (recorded.addresses.has(deviceId)) this.issued.set(deviceId, issued);
      for (const s of addresses) {
        addressSender.add(async () => {
          await link.publishSigned(s);
          this.totals.addresses++;
          this.deps.onIssued?.(s.doc.deviceId, s.doc.version);
        });
      }
      for (const d of locationDocs) {
        locationsSender.add(async () => {
          await link.pushLocations(d);
          this.totals.locations++;
        });
      }
      addressCount += addresses.length;
      locationCount += locationDocs.length;
      await new Promise((r) => setImmediate(r));
    }
    // The lists go on in the background: the next push's addresses do not wait for them.
    await addressSender.drained();
    if (addressCount || locationCount) log.info({ addresses: addressCount, locations: locationCount }, 'pushed');
  }
}

const PUSH_CHUNK = 500;
/** Attempts of a push chunk that lost a lock conflict, as for the phones' report batches. */
const CONFLICT_RETRIES = 5;

/**
 * Runs async tasks with at most `window` in flight, or one while `yieldTo` is busy; add() never
 * waits.
 */
class WindowedSender {
  private readonly queue: (() => Promise<void>)[] = [];
  private inflight = 0;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly window: number,
    private readonly onError: (err: Error) => void,
    private readonly yieldTo?: UrgentWork,
  ) {
    // Not removed: a sender lives as long as its Pusher, and a Pusher as long as its repo.
    yieldTo?.onIdle(() => this.pump());
  }

  add(task: () => Promise<void>): void {
    this.queue.push(task);
    this.pump();
  }

  drained(): Promise<void> {
    if (this.inflight === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private pump(): void {
    const limit = this.yieldTo?.busy ? 1 : this.window;
    while (this.inflight < limit && this.queue.length > 0) {
      const task = this.queue.shift()!;
      this.inflight++;
      task()
        .catch((err: Error) => this.onError(err))
        .finally(() => {
          this.inflight--;
          this.pump();
          if (this.inflight === 0 && this.queue.length === 0) for (const w of this.waiters.splice(0)) w();
        });
    }
  }
}

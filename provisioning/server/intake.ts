// What the phones tell the server, recorded: status, applied address, location
// reports, and events. Each event is stored once by its id (a redelivery, even
// after a restart or through another server instance, changes nothing); an
// emergency or test call is audited and notified; a user's location choice
// becomes their assigned location.
import type { Logger } from 'pino';
import { z } from 'zod';
import { DEFAULT_ACCOUNT, type PhoneReport, type Repo, type StoredEvent } from './db/repo.js';
import { isTransientConflict } from './db/sql.js';
import type { ProvisioningServer } from './server.js';
import type { Pusher } from './pusher.js';
import type { Notifier } from './notify/notifier.js';
import { NOTIFIED_EVENT_TYPES } from './notify/notifier.js';
import type { Bus } from './bus.js';
import { emergencyFacts } from './notify/message.js';
import { zoneLookup } from './notify/zone.js';
import { noticeFallbacks } from './defaults.js';
import { phoneClockOf, type AddressStatePayload, type EventPayload, type SignedAddress } from '../protocol/messages.js';
import { locationDisagreementDataSchema, locationSelectedDataSchema } from '../protocol/locations.js';
import { InFlight } from './in-flight.js';

/** The agent's NoticeState as its notice-acknowledged event carries it (agent/handset/notice.ts). */
const noticeAckDataSchema = z.object({
  addressVersion: z.number().int().nullable(),
  addressHash: z.string().nullable(),
  shownAt: z.string().nullable().optional(),
  acknowledgedAt: z.string(),
  acknowledgedVia: z.string().nullable().optional(),
});

const AUDITED_EVENT_TYPES: ReadonlySet<string> = new Set([
  'emergency-call',
  'test-call',
  'address-rejected',
  'location-mismatch',
  'location-disagreement',
]);

export interface PhoneIntakeDeps {
  repo: Repo;
  link: ProvisioningServer;
  pusher: Pusher;
  notifier: Notifier;
  bus: Bus;
  log: Logger;
  /**
   * Re-publish each phone's (retained) locations once per server run when it
   * comes online: an embedded broker loses retained messages when it restarts.
   */
  refreshLocationsOnConnect?: boolean;
}

/** A batch lost to a lock conflict with another instance is written again, this many times at most. */
const CONFLICT_RETRIES = 5;

/** What a queued report shows watchers once written ('phone' on the bus), if anything. */
const CHANGE_OF: Readonly<Record<PhoneReport['kind'], 'status' | 'applied' | 'location' | null>> = {
  status: 'status',
  applied: 'applied',
  location: 'location',
  touch: null,
};

export class PhoneIntake {
  private readonly refreshed = new Set<string>();
  private writes: { report: PhoneReport; state?: AddressStatePayload }[] = [];
  /** The flush under way (settled: writeQueued never rejects). */
  private flushing: Promise<void> = Promise.resolve();
  /** Written batches' address states being checked by the pusher: stop() waits for them. */
  private readonly followUps = new InFlight();
  private stopped = false;
  /** Reports dropped after stop(), told in one log line. */
  private notTaken = 0;

  constructor(private readonly deps: PhoneIntakeDeps) {}

  /**
   * Phones' status and state reports come in bursts (10,000 phones after a push or a broker
   * restart): what arrives while a batch is being written is written in the next one, in one
   * transaction and a few statements (Repo.recordReports), not statements of its own.
   */
  private later(report: PhoneReport, state?: AddressStatePayload): void {
    if (this.stopped) return void this.notTaken++;
    this.writes.push(state ? { report, state } : { report });
    if (this.writes.length === 1) setImmediate(() => void this.flush());
  }

  /**
   * Writes what is queued now (also before anything that reads it back). Flushes run one
   * after the other: on PostgreSQL two transactions at once may commit in either order, and
   * a phone's "offline" written after its "online" would leave it offline.
   */
  flush(): Promise<void> {
    const run = this.flushing.then(() => this.writeQueued());
    this.flushing = run;
    return run;
  }

  /**
   * Takes no more reports; writes those already taken and waits for what their batches set off
   * (the pusher's checks of their address states), so that nothing of them reaches the store
   * after it closed. Call once the link takes no more reports (ProvisioningServer.stopIntake).
   */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.flush();
    await this.followUps.settled();
    if (this.notTaken > 0) this.deps.log.info({ reports: this.notTaken }, 'phone reports that came while stopping were not recorded');
    this.notTaken = 0;
  }

  private async writeQueued(): Promise<void> {
    // By device id (a stable sort: one phone's reports keep their order): every instance's batch
    // locks device rows in the same order, so two instances' batches do not deadlock on
    // PostgreSQL. A conflict with another statement (the silence sweep) is retried: the batch
    // was rolled back whole, and losing it would lose a phone's applied version until it reports again.
    const writes = this.writes.sort((a, b) => (a.report.deviceId < b.report.deviceId ? -1 : a.report.deviceId > b.report.deviceId ? 1 : 0));
    if (writes.length === 0) return;
    this.writes = [];
    const { repo, log } = this.deps;
    let accounts: Map<string, string>;
    for (let attempt = 1; ; attempt++) {
      try {
        // A phone no account knows yet (the embedded broker's anonymous mode) is the default account's.
        accounts = await repo.inAccount(DEFAULT_ACCOUNT, () => repo.transaction(() => repo.recordReports(writes.map((w) => w.report))));
        break;
      } catch (err) {
        if (isTransientConflict(err) && attempt <= CONFLICT_RETRIES) {
          log.warn(
            { err: (err as Error).message, writes: writes.length, attempt },
            'phone reports lost a lock conflict: writing them again',
          );
          continue;
        }
        log.error({ err, writes: writes.length }, 'could not record phone reports');
        return;
      }
    }
    this.afterWritten(writes, accounts);
  }

  /** Watchers told, and the applied versions checked against what was issued (not awaited: the next batch goes on). */
  private afterWritten(writes: readonly { report: PhoneReport; state?: AddressStatePayload }[], accounts: Map<string, string>): void {
    const { repo, bus, pusher, log } = this.deps;
    for (const { report } of writes) {
      const change = CHANGE_OF[report.kind];
      const account = accounts.get(report.deviceId);
      // Shown in the phone's account (the event stream shows each account its own phones).
      if (change && account !== undefined) repo.inAccount(account, () => bus.emit('phone', { deviceId: report.deviceId, change }));
    }
    const states = writes.flatMap(({ report, state }) =>
      state ? [{ deviceId: report.deviceId, account: accounts.get(report.deviceId) ?? DEFAULT_ACCOUNT, state }] : [],
    );
    if (states.length > 0)
      this.followUps.add(
        pusher.onAddressStates(states).catch((err: unknown) => log.error({ err, count: states.length }, 'address states not handled')),
      );
  }

  /**
   * Runs fn in the account the phone belongs to: whatever a phone reports reads and writes only
   * its own account's rows. A phone no account knows yet (the embedded broker's anonymous mode)
   * is the default account's.
   */
  private inPhoneAccount<T>(deviceId: string, fn: () => Promise<T>): Promise<T> {
    const { repo } = this.deps;
    return repo.accountOfDevice(deviceId).then((account) => repo.inAccount(account ?? DEFAULT_ACCOUNT, fn));
  }

  attach(): void {
    const { link, pusher, log } = this.deps;
    // Stored (with its notifications) before the broker's PUBACK and the phone's ack: a throw leaves it unacknowledged.
    link.setEventHandler((e) => this.handleEvent(e));
    link.on('status', (deviceId, s) => {
      this.later({ kind: 'status', deviceId, online: s.state === 'online', agentVersion: s.agentVersion ?? null });
      if (s.state === 'online' && this.deps.refreshLocationsOnConnect && !this.refreshed.has(deviceId)) {
        this.refreshed.add(deviceId);
        void pusher.schedule([deviceId], { forceLocations: true });
      }
    });
    link.on('address-state', (deviceId, s) => {
      this.later({ kind: 'applied', deviceId, version: s.version, hash: s.hash, appliedAt: s.appliedAt, floor: s.floor?.address ?? 0 }, s);
    });
    link.on('location', (deviceId, report) => {
      this.later({ kind: 'location', deviceId, report });
    });
    link.on('rejected', (deviceId, reason) => log.warn({ deviceId, reason }, 'payload from phone rejected'));
  }

  /**
   * Records one event, in its phone's account; returns false for a redelivery. A 911 or 933
   * call goes ahead of the phones' queued reports and of their statements (Repo.urgent): nothing
   * it reads is what a report writes, and in the scale bench 911 events waited 23 s (p50) behind
   * 10,000 reports on PostgreSQL. Other events see the reports that came before them.
   */
  async handleEvent(e: EventPayload): Promise<boolean> {
    if (NOTIFIED_EVENT_TYPES.has(e.type)) return this.deps.repo.urgent(() => this.inPhoneAccount(e.deviceId, () => this.recordEvent(e)));
    await this.flush();
    return this.inPhoneAccount(e.deviceId, () => this.recordEvent(e));
  }

  private async recordEvent(e: EventPayload): Promise<boolean> {
    const { repo, log } = this.deps;
    await repo.ensureDevice(e.deviceId);
    // Any message counts as a sign of life for the last-seen sweep (ServerApp.sweepSilent).
    this.later({ kind: 'touch', deviceId: e.deviceId });
    const device = (await repo.device(e.deviceId))!;
    const user = device.userId !== null ? await repo.user(device.userId) : null;
    const stored: Omit<StoredEvent, 'receivedAt'> = {
      id: e.id,
      deviceId: e.deviceId,
      type: e.type,
      ts: e.ts,
      userId: user?.id ?? null,
      locationId: user?.locationId ?? null,
      data: e.data,
    };
    // The event, its notification rows and what it changes on the phone's row in one
    // transaction: the event is acknowledged after this commit and never handled again,
    // so a change made after it would be lost for good if the server died in between.
    const done = await repo.transaction(async () => {
      if (!(await repo.insertEvent(stored))) return null;
      if (AUDITED_EVENT_TYPES.has(e.type))
        await repo.audit(`phone:${e.deviceId}`, `phone.${e.type}`, 'event', e.id, { userId: stored.userId, locationId: stored.locationId });
      const event = (await repo.event(e.id))!;
      if (NOTIFIED_EVENT_TYPES.has(e.type)) await this.deps.notifier.planRows(event);
      return { event, announce: await this.applyState(event) };
    });
    if (!done) {
      log.debug({ eventId: e.id, type: e.type }, 'event seen before: ignored');
      return false;
    }
    // The notifications go first: a watcher that throws must not hold them back.
    if (NOTIFIED_EVENT_TYPES.has(e.type)) this.deps.notifier.kick();
    // What follows the commit is for people watching; a failure here must not un-store the event.
    try {
      this.deps.bus.emit('event', done.event);
      done.announce();
      if (NOTIFIED_EVENT_TYPES.has(e.type)) await this.announceCall(done.event, user);
    } catch (err) {
      log.error({ err, eventId: e.id, type: e.type }, 'event stored; follow-up failed');
    }
    return true;
  }

  /**
   * What the event changes on the phone's or user's row, inside the event's transaction; returns
   * what to tell watchers after the commit. It runs in a savepoint: if it fails, the event is
   * still stored (a redelivery would fail the same way) and the failure is logged; a lock
   * conflict on PostgreSQL fails the whole transaction, so the redelivered event tries again.
   */
  private async applyState(event: StoredEvent): Promise<() => void> {
    const nothing = () => {};
    const apply = this.stateChange(event.type);
    // Most events (a 911 among them) change no row: no savepoint, no round trips added.
    if (!apply) return nothing;
    try {
      return await this.deps.repo.transaction(() => apply(event));
    } catch (err) {
      if (isTransientConflict(err)) throw err;
      this.deps.log.error({ err, eventId: event.id, type: event.type }, 'event stored; applying it to the phone failed');
      return nothing;
    }
  }

  private stateChange(type: string): ((event: StoredEvent) => Promise<() => void>) | null {
    if (type === 'location-selected') return (e) => this.applyLocationChoice(e);
    if (type === 'location-disagreement') return (e) => this.applyDisagreement(e);
    if (type === 'notice-acknowledged') return (e) => this.recordNoticeAck(e);
    if (type === 'location-mismatch') return (e) => this.applyMismatch(e);
    return null;
  }

  private async announceCall(event: StoredEvent, user: Awaited<ReturnType<Repo['user']>>): Promise<void> {
    const { repo, log, bus } = this.deps;
    log.warn({ eventId: event.id, deviceId: event.deviceId, type: event.type }, event.type === 'emergency-call' ? '911 CALL' : 'test call');
    const location = event.locationId !== null ? await repo.location(event.locationId) : null;
    const issued = (await repo.issuedAddress(event.deviceId))?.signed;
    const provisionedCivic = issued ? (JSON.parse(issued) as SignedAddress).doc.civic : null;
    const fallbacks = noticeFallbacks(await repo.account(), user, location);
    bus.emit('emergency', {
      event,
      facts: emergencyFacts({ event, user, location, provisionedCivic, fallbacks, zoneOf: await zoneLookup(repo) }),
    });
  }

  /** The phone is marked with both addresses until it reports them agreeing again. */
  private async applyDisagreement(event: StoredEvent): Promise<() => void> {
    const { repo, log, bus } = this.deps;
    const d = locationDisagreementDataSchema.safeParse(event.data);
    if (!d.success) {
      log.warn({ deviceId: event.deviceId, eventId: event.id }, 'malformed location-disagreement event: kept, not applied');
      return () => {};
    }
    const applied = await repo.setDeviceDisagreement(
      event.deviceId,
      d.data.state === 'open' ? { ...event.data, eventId: event.id, ts: event.ts } : null,
      event.ts,
      phoneClockOf(event.data),
    );
    if (!applied)
      log.info(
        { deviceId: event.deviceId, eventId: event.id, state: d.data.state },
        'older location-disagreement event: the phone already reported a later state',
      );
    return () => {
      if (applied) bus.emit('phone', { deviceId: event.deviceId, change: 'disagreement' });
    };
  }

  private async applyMismatch(event: StoredEvent): Promise<() => void> {
    await this.deps.repo.setDeviceMismatch(event.deviceId, event.data);
    return () => this.deps.bus.emit('phone', { deviceId: event.deviceId, change: 'mismatch' });
  }

  /** The phone's notice-acknowledged event (its NoticeState): kept on the phone's row for the admins. */
  private async recordNoticeAck(event: StoredEvent): Promise<() => void> {
    const { repo, log, bus } = this.deps;
    const d = noticeAckDataSchema.safeParse(event.data);
    if (!d.success) {
      log.warn({ deviceId: event.deviceId, eventId: event.id }, 'malformed notice-acknowledged event: kept, not applied');
      return () => {};
    }
    const applied = await repo.setNoticeAck(event.deviceId, {
      version: d.data.addressVersion,
      hash: d.data.addressHash,
      shownAt: d.data.shownAt ?? null,
      acknowledgedAt: d.data.acknowledgedAt,
      via: d.data.acknowledgedVia ?? null,
      userId: event.userId,
    });
    return () => {
      if (applied) bus.emit('phone', { deviceId: event.deviceId, change: 'notice' });
    };
  }

  /** A user's choice from the phone's list becomes their assigned location, if allowed. */
  private async applyLocationChoice(event: StoredEvent): Promise<() => void> {
    const { repo, log, pusher, bus } = this.deps;
    const actor = `phone:${event.deviceId}`;
    const refuse = async (reason: string) => {
      await repo.audit(actor, 'user.location-choice-refused', 'event', event.id, { reason, data: event.data });
      log.warn({ deviceId: event.deviceId, reason }, 'location choice refused');
      return () => {};
    };
    const parsed = locationSelectedDataSchema.safeParse(event.data);
    if (!parsed.success) return refuse(`malformed choice: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    const user = event.userId !== null ? await repo.user(event.userId) : null;
    if (!user) return refuse('the phone has no user');
    const locationId = Number(parsed.data.locationId);
    const location = Number.isSafeInteger(locationId) ? await repo.location(locationId) : null;
    if (!location) return refuse(`location ${parsed.data.locationId} does not exist`);
    if (!(await repo.account()).recommendations && !user.recommendations) return refuse('location recommendations are off for this user');
    if (user.locationId !== location.id) {
      await repo.setUserLocation(user.id, location.id);
      await repo.audit(actor, 'user.location-selected', 'user', user.id, { from: user.locationId, to: location.id, eventId: event.id });
    } else {
      await repo.audit(actor, 'user.location-confirmed', 'user', user.id, { locationId: location.id, eventId: event.id });
    }
    await repo.setDeviceMismatch(event.deviceId, null);
    return () => {
      bus.emit('change', { entity: 'user', id: user.id, action: 'location-selected' });
      void pusher.schedule(user.deviceIds);
    };
  }
}

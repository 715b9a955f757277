// The server's records and access checks as the HTTP API reads them: portal sessions and
// tokens, background jobs, phone events, notification deliveries and the audit log. Beside
// AdminService so that the routes never reach the repository themselves.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Repo, NotificationStatus, StoredEvent, TokenIdentity } from './db/repo.js';
import { NOTIFIED_EVENT_TYPES, type Notifier } from './notify/notifier.js';
import { emergencyFacts, type EmergencyFacts } from './notify/message.js';
import { zoneLookup } from './notify/zone.js';
import { noticeFallbacks } from './defaults.js';
import type { SignedAddress } from '../protocol/messages.js';
import { NotFoundError, ValidationError } from './errors.js';

/** A test notification: the channel, and for email or SMS whom to send it to. */
export const testNotificationSchema = z.object({
  channel: z.enum(['email', 'sms', 'webhook', 'call']),
  to: z.string().max(254).optional(),
});

export interface RecordsServiceDeps {
  repo: Repo;
  notifier: Notifier;
}

export class RecordsService {
  constructor(private readonly deps: RecordsServiceDeps) {}

  async schemaVersion(): Promise<number> {
    return await this.deps.repo.schemaVersion();
  }

  /** The token's owner, or null for an unknown or revoked token. */
  async verifyToken(token: string): Promise<TokenIdentity | null> {
    return await this.deps.repo.verifyToken(token);
  }

  /** The session's owner (and its idle time restarted), or null for an ended session. */
  async useSession(sid: string, idleMs: number): Promise<TokenIdentity | null> {
    return await this.deps.repo.useSession(sid, idleMs);
  }

  /** A new portal session for a token owner: its id, for the cookie (only its hash is stored). */
  async login(who: TokenIdentity, absoluteMs: number, ip: string): Promise<string> {
    const { repo } = this.deps;
    await repo.pruneSessions();
    const sid = randomBytes(32).toString('base64url');
    await repo.createSession(sid, who.id, absoluteMs);
    // In the token's account: the login route itself runs before anyone is known.
    await repo.inAccount(who.accountId, () => repo.audit(`token:${who.name}`, 'session.login', 'session', null, { ip }));
    return sid;
  }

  async logout(sid: string): Promise<void> {
    await this.deps.repo.revokeSession(sid);
  }

  async jobs() {
    return await this.deps.repo.jobs();
  }

  async job(id: number) {
    const j = await this.deps.repo.job(id);
    if (!j) throw new NotFoundError(`job ${id}`);
    return j;
  }

  async events(filter: { types?: string[]; deviceId?: string; before?: string; limit: number }) {
    return await this.deps.repo.events(filter);
  }

  /** One event with its notification deliveries and, for a call, the facts its notices state. */
  async event(id: string) {
    const { repo } = this.deps;
    const event = await repo.event(id);
    if (!event) throw new NotFoundError(`event ${id}`);
    return {
      ...event,
      facts: NOTIFIED_EVENT_TYPES.has(event.type) ? await this.callFacts(event) : null,
      notifications: await repo.notifications({ eventId: id }),
    };
  }

  async notifications(filter: { eventId?: string; status?: NotificationStatus; limit: number }) {
    return await this.deps.repo.notifications(filter);
  }

  async auditLog(filter: { entity?: string; entityId?: string; beforeSeq?: number; limit: number }) {
    return await this.deps.repo.auditLog(filter);
  }

  /** Records that an administrator read the broker's password file and ACL. */
  async noteBrokerConfigRead(actor: string): Promise<void> {
    await this.deps.repo.audit(actor, 'broker.config-read', 'broker', null);
  }

  /** Sends a test notification through one channel now, audited. */
  async testNotification(actor: string, input: unknown) {
    const r = testNotificationSchema.safeParse(input ?? {});
    if (!r.success) throw new ValidationError(r.error.issues.map((i) => ({ field: i.path.join('.'), reason: i.message })));
    await this.deps.repo.audit(actor, 'notifications.test', 'account', null, r.data);
    return this.deps.notifier.testSend(r.data.channel, r.data.to);
  }

  /** What a call's notices state (caller, callback, address sent, location code), as the notifier builds them. */
  private async callFacts(event: StoredEvent): Promise<EmergencyFacts> {
    const { repo } = this.deps;
    const user = event.userId !== null ? await repo.user(event.userId) : null;
    const location = event.locationId !== null ? await repo.location(event.locationId) : null;
    const issued = (await repo.issuedAddress(event.deviceId))?.signed;
    const provisionedCivic = issued ? (JSON.parse(issued) as SignedAddress).doc.civic : null;
    const fallbacks = noticeFallbacks(await repo.account(), user, location);
    return emergencyFacts({ event, user, location, provisionedCivic, fallbacks, zoneOf: await zoneLookup(repo) });
  }
}

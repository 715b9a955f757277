// Kari's Law notifications: for each emergency-call or test-call event, one
// notification row per (channel, recipient), created once however often the
// event arrives (the event id is the key), sent by a small pool of send slots,
// retried with exponential backoff and jitter, and every outcome recorded.
// Rows are claimed atomically in SQLite, so several server processes sharing
// the database never send one twice.
// Over 400 lines: planning, claiming, sending and the retry rules of every channel (calls
// included) are one queue's life cycle; split, each part would need the others' state.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Repo, Notification, NotificationChannel, StoredEvent } from '../db/repo.js';
import type { CallSettings, NotificationPolicy, SmsSettings, WebhookSettings } from '../validation.js';
import { DeliveryError, type EmailChannel, type HttpChannel } from './channels.js';
import { buildNotice, type Notice } from './message.js';
import { CallUnacknowledgedError, type CallAcknowledgement, type CallChannel } from './call.js';
import { zoneLookup } from './zone.js';
import { noticeFallbacks, notificationEmails } from '../defaults.js';
import type { SignedAddress } from '../../protocol/messages.js';
import { InFlight } from '../in-flight.js';

export interface RetryPolicy {
  baseMs: number;
  maxMs: number;
  maxAttempts: number;
}

export const DEFAULT_RETRY: RetryPolicy = { baseMs: 2000, maxMs: 5 * 60_000, maxAttempts: 20 };

export interface NotifierDeps {
  repo: Repo;
  log: Logger;
  email: EmailChannel;
  sms: HttpChannel<SmsSettings>;
  webhook: HttpChannel<WebhookSettings>;
  /** Security-desk calls (absent: 'call' notifications fail with the reason). */
  call?: CallChannel;
  retry?: RetryPolicy;
  /** Sends in flight at once. */
  concurrency?: number;
  /** How long a claimed row stays ours before another process may take it over. */
  leaseMs?: number;
  /**
   * The longest one send may take (default 30 s, under the lease): past it the attempt counts
   * as failed and is retried. A send that never returns (a stuck SMTP pool) must not hold its
   * worker, nor its row, for ever.
   */
  sendTimeoutMs?: number;
  /**
   * This server instance's name: rows it claims are marked `<instance>/<boot id>`, and at start
   * it takes back at once what an earlier run of the same instance left mid-send.
   */
  instance?: string;
  now?: () => Date;
  random?: () => number;
  /** Each status change, for live views. */
  onUpdate?: (n: Notification) => void;
}

export const NOTIFIED_EVENT_TYPES: ReadonlySet<string> = new Set(['emergency-call', 'test-call']);

export class Notifier {
  private readonly retry: RetryPolicy;
  private readonly concurrency: number;
  private readonly now: () => Date;
  private readonly random: () => number;
  /** Sends in flight. */
  private sending = 0;
  private claiming = false;
  private claimAgain = false;
  /** The last claim filled every free slot: more may be due when one frees. */
  private backlog = false;
  private readonly idleWaiters: (() => void)[] = [];
  private timer: NodeJS.Timeout | null = null;
  private timerAt = 0;
  private stopped = true;
  private readonly notices = new Map<string, Promise<Notice | null>>();
  /** Events the sweep found with nobody to notify: not looked at again by this process. */
  private readonly sweptEmpty = new Set<string>();
  private sweepTimer: NodeJS.Timeout | null = null;
  /** Sweeps under way: stop() waits for them (they write notification rows). */
  private readonly sweeps = new InFlight();
  /** Marks the rows this process claims: `<instance>/<boot id>` (null without an instance name). */
  private readonly claimant: string | null;

  constructor(private readonly deps: NotifierDeps) {
    this.retry = deps.retry ?? DEFAULT_RETRY;
    this.concurrency = deps.concurrency ?? 16;
    this.now = deps.now ?? (() => new Date());
    this.random = deps.random ?? Math.random;
    this.claimant = deps.instance ? `${deps.instance}/${randomUUID()}` : null;
  }

  /** Starts sending, and the sweep for events left without notifications (now, then every sweepMs). */
  async start(sweepMs = 60_000): Promise<void> {
    this.stopped = false;
    if (this.deps.instance && this.claimant) {
      const n = await this.deps.repo.reclaimNotifications(this.deps.instance, this.claimant);
      if (n > 0) this.deps.log.warn({ notifications: n }, 'notifications left mid-send by an earlier run of this server: sending them now');
    }
    this.runSweep();
    this.sweepTimer = setInterval(() => this.runSweep(), sweepMs);
    this.sweepTimer.unref?.();
    this.kick();
  }

  private runSweep(): void {
    this.sweeps.add(
      this.sweep().catch((err: unknown) => this.deps.log.error({ err }, 'notification sweep failed; trying again at the next one')),
    );
  }

  /** Stops taking new work and waits for the sends in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    await this.sweeps.settled();
    if (this.sending > 0 || this.claiming) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    this.deps.email.close();
    await this.deps.call?.close();
  }

  /**
   * Creates the notification rows the account's policy asks for. Call once the
   * event is stored; the rows are unique per event, so a second call adds nothing.
   */
  async plan(event: StoredEvent): Promise<number> {
    const added = await this.deps.repo.transaction(async () => this.planRows(event));
    this.kick();
    return added;
  }

  /**
   * The rows alone, in the caller's transaction (the event's own, so an event is
   * never stored without them). The caller kicks the notifier after the commit.
   */
  async planRows(event: StoredEvent): Promise<number> {
    const { repo, log } = this.deps;
    const policy = await this.policyFor(event);
    const settings = await repo.notificationSettings();
    let added = 0;
    const add = async (channel: NotificationChannel, recipient: string) => {
      if (await repo.addNotification(event.id, channel, recipient)) added++;
    };
    const app = policy !== 'all' || settings.webhook;
    if (app) await add('webhook', settings.webhook ? redactUrl(settings.webhook.url) : '(webhook not configured)');
    const fallbackNow = policy === 'app-then-email-sms' && !settings.webhook;
    if (policy === 'all' || fallbackNow) added += await this.planEmailAndSms(event);
    if (added === 0) log.warn({ eventId: event.id }, 'no notification recipients for this event');
    return added;
  }

  /**
   * Emergency and test-call events stored without notification rows (stored by
   * an older server, or before a crash of one that planned them apart): planned
   * now. Run at start and periodically. Returns how many events got rows.
   */
  async sweep(sinceMs = 7 * 24 * 3600_000): Promise<number> {
    const { repo, log } = this.deps;
    const since = new Date(this.now().getTime() - sinceMs).toISOString();
    let planned = 0;
    for (const event of await repo.eventsWithoutNotifications([...NOTIFIED_EVENT_TYPES], since)) {
      if (this.sweptEmpty.has(event.id)) continue;
      // In the event's account: its policy, channels and people.
      const added = await repo.inAccount(event.accountId, () => repo.transaction(async () => this.planRows(event)));
      if (added > 0) planned++;
      else this.sweptEmpty.add(event.id); // nobody to tell: said once (planRows logged it)
    }
    if (planned > 0) {
      log.warn({ events: planned }, 'emergency events found without notifications: planned now');
      this.kick();
    }
    return planned;
  }

  /** Claims and sends what is due now (new rows, or a retry that fell due). */
  kick(): void {
    if (this.stopped) return;
    // Every slot busy: claim when one frees.
    if (this.sending >= this.concurrency) {
      this.backlog = true;
      return;
    }
    // A kick during a claim may come from a commit that claim did not see: one more pass.
    if (this.claiming) {
      this.claimAgain = true;
      return;
    }
    this.claiming = true;
    // Outside the caller's transaction, if any: the sends outlive it. Ahead of bulk traffic
    // (Repo.urgent): a 911 notice must not wait for connections that phone reports hold.
    void this.deps.repo.detached(() => this.deps.repo.urgent(() => this.claim()));
  }

  /** The account's policy for this kind of call: 933 test calls may have their own. */
  private async policyFor(event: StoredEvent): Promise<NotificationPolicy> {
    const a = await this.deps.repo.account();
    return event.type === 'test-call' ? (a.testNotificationPolicy ?? a.notificationPolicy) : a.notificationPolicy;
  }

  private async planEmailAndSms(event: StoredEvent): Promise<number> {
    const { repo } = this.deps;
    const user = event.userId !== null ? await repo.user(event.userId) : null;
    const location = event.locationId !== null ? await repo.location(event.locationId) : null;
    let added = 0;
    for (const e of notificationEmails(user, location, await repo.account())) if (await repo.addNotification(event.id, 'email', e)) added++;
    // The location's own numbers, and the mobile of each person there: their location's alerts.
    // Only their mobiles: reading every user row there cost 90 ms per event at 10,000 users (scale bench).
    const people = location ? await repo.mobilesAt(location.id) : [];
    for (const n of new Set([...(location?.smsNumbers ?? []), ...people])) if (await repo.addNotification(event.id, 'sms', n)) added++;
    for (const n of location?.callNumbers ?? []) if (await repo.addNotification(event.id, 'call', n)) added++;
    return added;
  }

  /**
   * One claim per pass for as many rows as there are free send slots: a 911 event's few rows
   * cost one transaction, not one per slot (16 slots each claiming and finding nothing made
   * 60-80 commits per event on PostgreSQL, docs/scale.md).
   */
  private async claim(): Promise<void> {
    let failed = false;
    try {
      do {
        this.claimAgain = false;
        while (!this.stopped && this.sending < this.concurrency) {
          const room = this.concurrency - this.sending;
          const rows = await this.deps.repo.claimDueNotifications(room, this.deps.leaseMs ?? 60_000, this.claimant);
          for (const row of rows) this.startSend(row);
          // Fewer than asked: nothing more is due. As many: there may be more once a slot frees.
          this.backlog = rows.length === room;
          if (rows.length < room) break;
        }
      } while (this.claimAgain && !this.stopped && this.sending < this.concurrency);
    } catch (err) {
      this.deps.log.error({ err }, 'notification claim failed; claiming again in a second');
      failed = true;
    } finally {
      this.claiming = false;
      this.settleIfIdle();
      // A failed claim (the database away) is tried again in a second, not at once in a loop.
      if (failed) this.wakeAt(this.now().getTime() + 1000);
      // While sends wait on slow channels, the next retry must still fall due on time.
      else
        this.scheduleNext().catch((err: unknown) => {
          this.deps.log.error({ err }, 'notification scheduling failed; claiming again in a second');
          this.wakeAt(this.now().getTime() + 1000);
        });
    }
  }

  private startSend(row: Notification & { accountId: string }): void {
    this.sending++;
    // Sent with the settings of the account the row belongs to.
    const send = this.deps.repo.detached(() =>
      this.deps.repo.urgent(() => this.deps.repo.inAccount(row.accountId, () => this.deliver(row))),
    );
    send
      .catch((err: unknown) => this.deps.log.error({ err, eventId: row.eventId, channel: row.channel }, 'notification send failed'))
      .finally(() => {
        this.sending--;
        this.settleIfIdle();
        if (this.backlog) this.kick();
      });
  }

  private settleIfIdle(): void {
    if (this.sending === 0 && !this.claiming) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private async scheduleNext(): Promise<void> {
    if (this.stopped) return;
    const due = await this.deps.repo.nextNotificationDue();
    // Poll now and then even when idle: another process may have queued work.
    this.wakeAt(due ? Date.parse(due) : this.now().getTime() + 30_000);
  }

  /** Claims again at `at` (at most 30 s away), unless a wake-up is already set before it. */
  private wakeAt(at: number): void {
    if (this.stopped) return;
    const delay = Math.min(30_000, Math.max(10, at - this.now().getTime()));
    const when = Date.now() + delay;
    if (this.timer && this.timerAt <= when) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = when;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.kick();
    }, delay);
    this.timer.unref?.();
  }

  /** One build per event, shared by its rows' sends, which start together. */
  private notice(eventId: string): Promise<Notice | null> {
    const cached = this.notices.get(eventId);
    if (cached) return cached;
    const built = this.buildNotice(eventId);
    this.notices.set(eventId, built);
    if (this.notices.size > 1000) this.notices.delete(this.notices.keys().next().value!);
    // Not kept when it failed or found no event: the next send tries again.
    built.then(
      (n) => n ?? this.notices.delete(eventId),
      () => this.notices.delete(eventId),
    );
    return built;
  }

  private async buildNotice(eventId: string): Promise<Notice | null> {
    const { repo } = this.deps;
    const event = await repo.event(eventId);
    if (!event) return null;
    const user = event.userId !== null ? await repo.user(event.userId) : null;
    const location = event.locationId !== null ? await repo.location(event.locationId) : null;
    const issued = (await repo.issuedAddress(event.deviceId))?.signed;
    const provisionedCivic = issued ? (JSON.parse(issued) as SignedAddress).doc.civic : null;
    const account = await repo.account();
    return buildNotice({
      event,
      user,
      location,
      provisionedCivic,
      accountName: account.name,
      fallbacks: noticeFallbacks(account, user, location),
      zoneOf: await zoneLookup(repo),
    });
  }

  private async deliver(n: Notification): Promise<void> {
    const { repo, log } = this.deps;
    const notice = await this.notice(n.eventId);
    const settings = await repo.notificationSettings();
    // Set by a call's send: what its acknowledgement recorded.
    const call: { ack?: CallAcknowledgement } = {};
    try {
      if (!notice) throw new DeliveryError(`event ${n.eventId} not found`, false);
      const send = (): Promise<string> => {
        switch (n.channel) {
          case 'email':
            if (!settings.smtp) throw new DeliveryError('SMTP is not configured');
            return this.deps.email.send(settings.smtp, n.recipient, notice, {
              'X-E911-Event-Id': n.eventId,
              'Content-Language': notice.language,
              ...notice.headers,
            });
          case 'sms':
            if (!settings.sms) throw new DeliveryError('the SMS provider is not configured');
            return this.deps.sms.send(settings.sms, { to: n.recipient, text: notice.sms });
          case 'webhook':
            if (!settings.webhook) throw new DeliveryError('the webhook is not configured', false);
            return this.deps.webhook.send(settings.webhook, webhookBody(n.eventId, notice));
          case 'call':
            return this.sendCall(n, settings.call ?? null, notice).then((a) => {
              call.ack = a;
              return a.sipCallId;
            });
        }
      };
      const providerId = await this.bounded(n.channel, send(), n.channel === 'call' ? this.callBound(settings.call ?? null) : undefined);
      if (call.ack) await repo.notificationAcknowledged(n.id, providerId, call.ack);
      else await repo.notificationSent(n.id, providerId);
      log.info({ eventId: n.eventId, channel: n.channel, recipient: n.recipient, attempts: n.attempts }, 'notification delivered');
    } catch (err) {
      const e = err instanceof DeliveryError ? err : new DeliveryError((err as Error).message);
      if (e instanceof CallUnacknowledgedError) {
        await repo.notificationUnacknowledged(n.id, e.sipCallId, e.plays, e.message);
        log.warn({ eventId: n.eventId, recipient: n.recipient, plays: e.plays }, 'security-desk call not acknowledged');
      } else {
        // Calls have their own bound: each attempt rings someone.
        const max = n.channel === 'call' ? (settings.call?.maxAttempts ?? this.retry.maxAttempts) : this.retry.maxAttempts;
        const retryAt = e.retryable && n.attempts < max ? new Date(this.now().getTime() + this.backoff(n.attempts)) : null;
        await repo.notificationFailed(n.id, e.message, retryAt);
        if (retryAt) this.wakeAt(retryAt.getTime());
        log.warn(
          { eventId: n.eventId, channel: n.channel, recipient: n.recipient, attempts: n.attempts, retryAt, err: e.message },
          'notification not delivered',
        );
        // The app channel failed: under "app, then email and SMS" the others go now.
        const event = n.channel === 'webhook' && n.attempts === 1 ? await repo.event(n.eventId) : null;
        if (event && (await this.policyFor(event)) === 'app-then-email-sms') {
          if ((await repo.transaction(async () => this.planEmailAndSms(event))) > 0) this.kick();
        }
      }
    }
    const updated = (await repo.notifications({ eventId: n.eventId })).find((x) => x.id === n.id);
    if (updated) this.deps.onUpdate?.(updated);
  }

  /** A call lasts longer than the lease: the row stays ours for as long as the call can. */
  private async sendCall(n: Notification, s: CallSettings | null, notice: Notice): Promise<CallAcknowledgement> {
    if (!s) throw new DeliveryError('the call channel is not configured');
    if (!this.deps.call) throw new DeliveryError('this server has no voice stack to place calls', false);
    await this.deps.repo.extendNotificationLease(n.id, new Date(this.now().getTime() + (this.callBound(s) ?? 0) + 30_000));
    return this.deps.call.send(s, n.recipient, notice.spoken);
  }

  private callBound(s: CallSettings | null): number | undefined {
    return s && this.deps.call ? Math.max(this.deps.sendTimeoutMs ?? 30_000, this.deps.call.maxDurationMs(s)) : undefined;
  }

  /**
   * The send, or a retryable failure once it took longer than sendTimeoutMs (a call: as long
   * as it can take). A stuck SMTP transport is closed then, so the next attempt builds a fresh one.
   */
  private async bounded(channel: NotificationChannel, send: Promise<string>, limitMs?: number): Promise<string> {
    const ms = limitMs ?? this.deps.sendTimeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        reject(new DeliveryError(`${channel}: no outcome within ${Math.round(ms / 1000)} s`));
      }, ms);
    });
    try {
      return await Promise.race([send, timeout]);
    } finally {
      clearTimeout(timer);
      if (timedOut && channel === 'email') this.deps.email.close();
      // The losing send may still fail later: nobody waits for it, and it must not crash the process.
      send.catch(() => undefined);
    }
  }

  /**
   * Sends one sample test notification through a channel now, bypassing the
   * queue, so an administrator sees at once whether the settings work.
   */
  async testSend(channel: NotificationChannel, to?: string): Promise<{ ok: boolean; providerId?: string; error?: string }> {
    const settings = await this.deps.repo.notificationSettings();
    const at = this.now().toISOString();
    const event: StoredEvent = {
      id: `settings-test-${Date.now()}`,
      deviceId: 'settings-test',
      type: 'test-call',
      ts: at,
      receivedAt: at,
      userId: null,
      locationId: null,
      data: { numberDialed: '933', displayName: 'Settings Test', addressMissing: false },
    };
    const notice = buildNotice({
      event,
      user: null,
      location: null,
      provisionedCivic: null,
      accountName: (await this.deps.repo.account()).name,
    });
    try {
      switch (channel) {
        case 'email':
          if (!settings.smtp) throw new DeliveryError('SMTP is not configured');
          if (!to) throw new DeliveryError('give an address to send the test email to');
          return { ok: true, providerId: await this.deps.email.send(settings.smtp, to, notice) };
        case 'sms':
          if (!settings.sms) throw new DeliveryError('the SMS provider is not configured');
          if (!to) throw new DeliveryError('give a number to send the test SMS to');
          return { ok: true, providerId: await this.deps.sms.send(settings.sms, { to, text: notice.sms }) };
        case 'webhook':
          if (!settings.webhook) throw new DeliveryError('the webhook is not configured');
          return { ok: true, providerId: await this.deps.webhook.send(settings.webhook, webhookBody(event.id, notice)) };
        case 'call': {
          if (!settings.call) throw new DeliveryError('the call channel is not configured');
          if (!this.deps.call) throw new DeliveryError('this server has no voice stack to place calls');
          if (!to) throw new DeliveryError('give a number or SIP URI to call');
          const ack = await this.deps.call.send(settings.call, to, notice.spoken);
          return { ok: true, providerId: `${ack.sipCallId} (acknowledged)` };
        }
      }
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
  }

  /** Exponential, capped, with half of it random so retries of many rows spread out. */
  private backoff(attempts: number): number {
    const cap = Math.min(this.retry.maxMs, this.retry.baseMs * 2 ** Math.min(attempts - 1, 20));
    return Math.round(cap / 2 + (this.random() * cap) / 2);
  }
}

function webhookBody(eventId: string, notice: Notice) {
  return {
    type: notice.facts.test ? 'test-call' : 'emergency-call',
    eventId,
    subject: notice.subject,
    text: notice.text,
    facts: notice.facts,
  };
}

/** A URL without its user info and query, for the delivery log. */
function redactUrl(u: string): string {
  try {
    const url = new URL(u);
    return `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return '(webhook)';
  }
}

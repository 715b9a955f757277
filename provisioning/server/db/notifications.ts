// Notifications: one row per (event, channel, recipient), claimed with a lease so
// that several server processes never send one twice.
import type { ServerDb } from './open.js';
import { int, intOrNull, rowMapper, text, textOrNull, type Row } from './rows.js';
import type { Notification, NotificationChannel, NotificationStatus } from './types.js';

export const toNotification = rowMapper<Notification>({
  id: int('id'),
  eventId: text('event_id'),
  channel: text<NotificationChannel>('channel'),
  recipient: text('recipient'),
  status: text<NotificationStatus>('status'),
  attempts: int('attempts'),
  nextAttemptAt: text('next_attempt_at'),
  lastError: textOrNull('last_error'),
  providerId: textOrNull('provider_id'),
  createdAt: text('created_at'),
  sentAt: textOrNull('sent_at'),
  updatedAt: text('updated_at'),
  acknowledgedAt: textOrNull('acknowledged_at'),
  ackMethod: textOrNull('ack_method'),
  plays: intOrNull('plays'),
});

export class NotificationStore {
  constructor(private readonly s: ServerDb) {}

  /** Queues a notification once per (event, channel, recipient); false when it existed. */
  addNotification(eventId: string, channel: NotificationChannel, recipient: string): boolean {
    const now = this.s.iso();
    return (
      this.s
        .q(
          'INSERT OR IGNORE INTO notifications (event_id, channel, recipient, next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)',
        )
        .run(eventId, channel, recipient, now, now, now).changes > 0
    );
  }

  /** Claims due notifications for sending (atomic, so several processes never send one twice). */
  claimDueNotifications(limit: number, leaseMs: number, claimant: string | null = null): Notification[] {
    return this.s.transaction(() => {
      const now = this.s.iso();
      // A 'sending' row whose lease ran out belongs to a process that died mid-send.
      const rows = this.s
        .q(
          `SELECT * FROM notifications WHERE (status IN ('pending', 'retry') AND next_attempt_at <= @now)
             OR (status = 'sending' AND next_attempt_at <= @now) ORDER BY next_attempt_at LIMIT @limit`,
        )
        .all({ now, limit }) as Row[];
      const lease = new Date(this.s.now().getTime() + leaseMs).toISOString();
      const claim = this.s.q(
        "UPDATE notifications SET status = 'sending', attempts = attempts + 1, next_attempt_at = ?, updated_at = ?, claimed_by = ? WHERE id = ?",
      );
      for (const r of rows) claim.run(lease, now, claimant, r.id);
      return rows.map((r) => ({ ...toNotification(r), status: 'sending' as const, attempts: (r.attempts as number) + 1 }));
    });
  }

  /**
   * Rows an earlier run of this instance (`<instance>/<other boot>`) left 'sending' when it died:
   * due now, not when their lease runs out. Another instance's rows are left to their lease.
   */
  reclaimNotifications(instance: string, claimant: string): number {
    const prefix = `${instance}/`;
    return this.s
      .q("UPDATE notifications SET next_attempt_at = ? WHERE status = 'sending' AND substr(claimed_by, 1, ?) = ? AND claimed_by <> ?")
      .run(this.s.iso(), prefix.length, prefix, claimant).changes;
  }

  nextNotificationDue(): string | null {
    return (
      (this.s.q("SELECT min(next_attempt_at) FROM notifications WHERE status IN ('pending', 'retry', 'sending')").pluck().get() as
        | string
        | null) ?? null
    );
  }

  notificationSent(id: number, providerId: string | null): void {
    const now = this.s.iso();
    this.s
      .q("UPDATE notifications SET status = 'sent', sent_at = ?, provider_id = ?, last_error = NULL, updated_at = ? WHERE id = ?")
      .run(now, providerId, now, id);
  }

  /** A call answered and acknowledged (a 1 pressed): delivered, with when and how. */
  notificationAcknowledged(id: number, providerId: string, ack: { at: string; method: string; plays: number }): void {
    const now = this.s.iso();
    this.s
      .q(
        `UPDATE notifications SET status = 'sent', sent_at = ?, provider_id = ?, last_error = NULL, acknowledged_at = ?, ack_method = ?,
           plays = ?, updated_at = ? WHERE id = ?`,
      )
      .run(now, providerId, ack.at, ack.method, ack.plays, now, id);
  }

  /** A call answered whose message played `plays` times with no 1 pressed: final, said as such. */
  notificationUnacknowledged(id: number, providerId: string, plays: number, why: string): void {
    const now = this.s.iso();
    this.s
      .q(
        `UPDATE notifications SET status = 'unacknowledged', provider_id = ?, plays = ?, last_error = ?, next_attempt_at = ?,
           updated_at = ? WHERE id = ?`,
      )
      .run(providerId, plays, why.slice(0, 2000), now, now, id);
  }

  /** Keeps a claimed row ours while a long send (a call) goes on. */
  extendNotificationLease(id: number, until: Date): void {
    this.s.q("UPDATE notifications SET next_attempt_at = ? WHERE id = ? AND status = 'sending'").run(until.toISOString(), id);
  }

  notificationFailed(id: number, error: string, retryAt: Date | null): void {
    this.s
      .q('UPDATE notifications SET status = ?, last_error = ?, next_attempt_at = ?, updated_at = ? WHERE id = ?')
      .run(retryAt ? 'retry' : 'failed', error.slice(0, 2000), (retryAt ?? this.s.now()).toISOString(), this.s.iso(), id);
  }

  notifications(filter: { eventId?: string; status?: NotificationStatus; limit?: number } = {}): Notification[] {
    const clauses: string[] = [];
    if (filter.eventId !== undefined) clauses.push('event_id = @eventId');
    if (filter.status !== undefined) clauses.push('status = @status');
    const where = clauses.length ? `WHERE ${clauses.join(' AND ')}` : '';
    return (
      this.s.q(`SELECT * FROM notifications ${where} ORDER BY id DESC LIMIT @limit`).all({ ...filter, limit: filter.limit ?? 500 }) as Row[]
    ).map(toNotification);
  }
}

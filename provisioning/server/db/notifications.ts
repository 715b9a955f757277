// Notifications: one row per (event, channel, recipient), claimed with a lease so
// that several server processes never send one twice.
import { claimLock, type Sql } from './sql.js';
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
  constructor(
    private readonly s: Sql,
    private readonly acct: () => string,
  ) {}

  /** Queues a notification once per (event, channel, recipient); false when it existed. */
  async addNotification(eventId: string, channel: NotificationChannel, recipient: string): Promise<boolean> {
    const now = this.s.iso();
    return (
      (
        await this.s.run(
          'INSERT INTO notifications (event_id, channel, recipient, next_attempt_at, created_at, updated_at, account_id) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
          [eventId, channel, recipient, now, now, now, this.acct()],
        )
      ).changes > 0
    );
  }

  /**
   * Claims due notifications of every account for sending (atomic, so several processes never
   * send one twice); each says its account, whose settings send it.
   */
  async claimDueNotifications(
    limit: number,
    leaseMs: number,
    claimant: string | null = null,
  ): Promise<(Notification & { accountId: string })[]> {
    return this.s.transaction(async () => {
      const now = this.s.iso();
      // A 'sending' row whose lease ran out belongs to a process that died mid-send.
      const rows = (await this.s.all(
        `SELECT * FROM notifications WHERE (status IN ('pending', 'retry') AND next_attempt_at <= @now)
             OR (status = 'sending' AND next_attempt_at <= @now) ORDER BY next_attempt_at LIMIT @limit${claimLock(this.s.dialect)}`,
        { now, limit },
      )) as Row[];
      const lease = new Date(this.s.now().getTime() + leaseMs).toISOString();
      // One statement for the batch: each is a round trip on PostgreSQL.
      if (rows.length > 0)
        await this.s.run(
          `UPDATE notifications SET status = 'sending', attempts = attempts + 1, next_attempt_at = ?, updated_at = ?, claimed_by = ? WHERE id IN (${rows.map(() => '?').join(', ')})`,
          [lease, now, claimant, ...rows.map((r) => r.id)],
        );
      return rows.map((r) => ({
        ...toNotification(r),
        status: 'sending' as const,
        attempts: (r.attempts as number) + 1,
        accountId: r.account_id as string,
      }));
    });
  }

  /**
   * Rows an earlier run of this instance (`<instance>/<other boot>`) left 'sending' when it died:
   * due now, not when their lease runs out. Another instance's rows are left to their lease.
   */
  async reclaimNotifications(instance: string, claimant: string): Promise<number> {
    const prefix = `${instance}/`;
    return (
      await this.s.run(
        "UPDATE notifications SET next_attempt_at = ? WHERE status = 'sending' AND substr(claimed_by, 1, ?) = ? AND claimed_by <> ?",
        [this.s.iso(), prefix.length, prefix, claimant],
      )
    ).changes;
  }

  async nextNotificationDue(): Promise<string | null> {
    return (
      ((await this.s.column("SELECT min(next_attempt_at) FROM notifications WHERE status IN ('pending', 'retry', 'sending')"))[0] as
        | string
        | null) ?? null
    );
  }

  async notificationSent(id: number, providerId: string | null): Promise<void> {
    const now = this.s.iso();
    await this.s.run(
      "UPDATE notifications SET status = 'sent', sent_at = ?, provider_id = ?, last_error = NULL, updated_at = ? WHERE id = ?",
      [now, providerId, now, id],
    );
  }

  /** A call answered and acknowledged (a 1 pressed): delivered, with when and how. */
  async notificationAcknowledged(id: number, providerId: string, ack: { at: string; method: string; plays: number }): Promise<void> {
    const now = this.s.iso();
    await this.s.run(
      `UPDATE notifications SET status = 'sent', sent_at = ?, provider_id = ?, last_error = NULL, acknowledged_at = ?, ack_method = ?,
           plays = ?, updated_at = ? WHERE id = ?`,
      [now, providerId, ack.at, ack.method, ack.plays, now, id],
    );
  }

  /** A call answered whose message played `plays` times with no 1 pressed: final, said as such. */
  async notificationUnacknowledged(id: number, providerId: string, plays: number, why: string): Promise<void> {
    const now = this.s.iso();
    await this.s.run(
      `UPDATE notifications SET status = 'unacknowledged', provider_id = ?, plays = ?, last_error = ?, next_attempt_at = ?,
           updated_at = ? WHERE id = ?`,
      [providerId, plays, why.slice(0, 2000), now, now, id],
    );
  }

  /** Keeps a claimed row ours while a long send (a call) goes on. */
  async extendNotificationLease(id: number, until: Date): Promise<void> {
    await this.s.run("UPDATE notifications SET next_attempt_at = ? WHERE id = ? AND status = 'sending'", [until.toISOString(), id]);
  }

  async notificationFailed(id: number, error: string, retryAt: Date | null): Promise<void> {
    await this.s.run('UPDATE notifications SET status = ?, last_error = ?, next_attempt_at = ?, updated_at = ? WHERE id = ?', [
      retryAt ? 'retry' : 'failed',
      error.slice(0, 2000),
      (retryAt ?? this.s.now()).toISOString(),
      this.s.iso(),
      id,
    ]);
  }

  async notifications(filter: { eventId?: string; status?: NotificationStatus; limit?: number } = {}): Promise<Notification[]> {
    const clauses: string[] = ['account_id = @accountId'];
    if (filter.eventId !== undefined) clauses.push('event_id = @eventId');
    if (filter.status !== undefined) clauses.push('status = @status');
    const where = `WHERE ${clauses.join(' AND ')}`;
    return (
      (await this.s.all(`SELECT * FROM notifications ${where} ORDER BY id DESC LIMIT @limit`, {
        ...filter,
        accountId: this.acct(),
        limit: filter.limit ?? 500,
      })) as Row[]
    ).map(toNotification);
  }
}

// Events phones reported (911 and 933 calls, disagreements...), stored once per id.
import { jsonArrayTable, type Sql } from './sql.js';
import { intOrNull, json, rowMapper, text, type Row } from './rows.js';
import type { StoredEvent } from './types.js';

export const toEvent = rowMapper<StoredEvent>({
  id: text('id'),
  deviceId: text('device_id'),
  type: text('type'),
  ts: text('ts'),
  receivedAt: text('received_at'),
  userId: intOrNull('user_id'),
  locationId: intOrNull('location_id'),
  data: json('data', {}),
});

export class EventStore {
  constructor(
    private readonly s: Sql,
    private readonly acct: () => string,
  ) {}

  /** Stores an event once; false when its id was seen before (a redelivery). */
  async insertEvent(e: Omit<StoredEvent, 'receivedAt'>): Promise<boolean> {
    return (
      (
        await this.s.run(
          'INSERT INTO events (id, device_id, type, ts, received_at, user_id, location_id, data, account_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
          [e.id, e.deviceId, e.type, e.ts, this.s.iso(), e.userId, e.locationId, JSON.stringify(e.data), this.acct()],
        )
      ).changes > 0
    );
  }

  /** Events of these types (of every account, each with its account) received since `since` that have no notification row. */
  async eventsWithoutNotifications(types: readonly string[], since: string): Promise<(StoredEvent & { accountId: string })[]> {
    return (
      (await this.s.all(
        `SELECT * FROM events e WHERE e.type IN (SELECT value FROM ${jsonArrayTable(this.s.dialect, '?')}) AND e.received_at >= ?
           AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.event_id = e.id) ORDER BY e.received_at LIMIT 1000`,
        [JSON.stringify(types), since],
      )) as Row[]
    ).map((r) => ({ ...toEvent(r), accountId: r.account_id as string }));
  }

  async event(id: string): Promise<StoredEvent | null> {
    const r = (await this.s.get('SELECT * FROM events WHERE id = ? AND account_id = ?', [id, this.acct()])) as Row | undefined;
    return r ? toEvent(r) : null;
  }

  async events(filter: { types?: readonly string[]; deviceId?: string; limit?: number; before?: string } = {}): Promise<StoredEvent[]> {
    const clauses: string[] = ['account_id = @accountId'];
    const params: Record<string, unknown> = { limit: filter.limit ?? 100, accountId: this.acct() };
    if (filter.types?.length) {
      clauses.push(`type IN (SELECT value FROM ${jsonArrayTable(this.s.dialect, '@types')})`);
      params.types = JSON.stringify(filter.types);
    }
    if (filter.deviceId) {
      clauses.push('device_id = @deviceId');
      params.deviceId = filter.deviceId;
    }
    if (filter.before) {
      clauses.push('received_at < @before');
      params.before = filter.before;
    }
    const where = `WHERE ${clauses.join(' AND ')}`;
    return ((await this.s.all(`SELECT * FROM events ${where} ORDER BY received_at DESC, rowid DESC LIMIT @limit`, params)) as Row[]).map(
      toEvent,
    );
  }
}

// Events phones reported (911 and 933 calls, disagreements...), stored once per id.
import type { ServerDb } from './open.js';
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
  constructor(private readonly s: ServerDb) {}

  /** Stores an event once; false when its id was seen before (a redelivery). */
  insertEvent(e: Omit<StoredEvent, 'receivedAt'>): boolean {
    return (
      this.s
        .q(
          'INSERT OR IGNORE INTO events (id, device_id, type, ts, received_at, user_id, location_id, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        )
        .run(e.id, e.deviceId, e.type, e.ts, this.s.iso(), e.userId, e.locationId, JSON.stringify(e.data)).changes > 0
    );
  }

  /** Events of these types received since `since` that have no notification row. */
  eventsWithoutNotifications(types: readonly string[], since: string): StoredEvent[] {
    return (
      this.s
        .q(
          `SELECT * FROM events e WHERE e.type IN (SELECT value FROM json_each(?)) AND e.received_at >= ?
           AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.event_id = e.id) ORDER BY e.received_at LIMIT 1000`,
        )
        .all(JSON.stringify(types), since) as Row[]
    ).map(toEvent);
  }

  event(id: string): StoredEvent | null {
    const r = this.s.q('SELECT * FROM events WHERE id = ?').get(id) as Row | undefined;
    return r ? toEvent(r) : null;
  }

  events(filter: { types?: readonly string[]; deviceId?: string; limit?: number; before?: string } = {}): StoredEvent[] {
    const clauses: string[] = [];
    const params: Record<string, unknown> = { limit: filter.limit ?? 100 };
    if (filter.types?.length) {
      clauses.push('type IN (SELECT value FROM json_each(@types))');
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
    const where = clauses.length ? `WHERE ${clauses.join(' AND ')}` : '';
    return (this.s.q(`SELECT * FROM events ${where} ORDER BY received_at DESC, rowid DESC LIMIT @limit`).all(params) as Row[]).map(toEvent);
  }
}

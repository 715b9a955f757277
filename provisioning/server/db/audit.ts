// The audit log: who changed what, appended, read newest first.
import type { ServerDb } from './open.js';
import { int, json, rowMapper, text, textOrNull, type Row } from './rows.js';
import type { AuditEntry } from './types.js';

export const toAuditEntry = rowMapper<AuditEntry>({
  seq: int('seq'),
  at: text('at'),
  actor: text('actor'),
  action: text('action'),
  entity: text('entity'),
  entityId: textOrNull('entity_id'),
  details: json('details', null),
});

export class AuditStore {
  constructor(private readonly s: ServerDb) {}

  audit(actor: string, action: string, entity: string, entityId: string | number | null, details?: unknown): void {
    this.s
      .q('INSERT INTO audit (at, actor, action, entity, entity_id, details) VALUES (?, ?, ?, ?, ?, ?)')
      .run(
        this.s.iso(),
        actor,
        action,
        entity,
        entityId === null ? null : String(entityId),
        details === undefined ? null : JSON.stringify(details),
      );
  }

  auditLog(filter: { entity?: string; entityId?: string; limit?: number; beforeSeq?: number } = {}): AuditEntry[] {
    const clauses: string[] = [];
    if (filter.entity) clauses.push('entity = @entity');
    if (filter.entityId) clauses.push('entity_id = @entityId');
    if (filter.beforeSeq) clauses.push('seq < @beforeSeq');
    const where = clauses.length ? `WHERE ${clauses.join(' AND ')}` : '';
    return (
      this.s.q(`SELECT * FROM audit ${where} ORDER BY seq DESC LIMIT @limit`).all({ ...filter, limit: filter.limit ?? 100 }) as Row[]
    ).map(toAuditEntry);
  }
}

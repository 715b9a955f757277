// The audit log: who changed what, appended, read newest first.
import type { Sql } from './sql.js';
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
  constructor(
    private readonly s: Sql,
    private readonly acct: () => string,
  ) {}

  async audit(actor: string, action: string, entity: string, entityId: string | number | null, details?: unknown): Promise<void> {
    await this.s.run('INSERT INTO audit (at, actor, action, entity, entity_id, details, account_id) VALUES (?, ?, ?, ?, ?, ?, ?)', [
      this.s.iso(),
      actor,
      action,
      entity,
      entityId === null ? null : String(entityId),
      details === undefined ? null : JSON.stringify(details),
      this.acct(),
    ]);
  }

  async auditLog(filter: { entity?: string; entityId?: string; limit?: number; beforeSeq?: number } = {}): Promise<AuditEntry[]> {
    const clauses: string[] = ['account_id = @accountId'];
    if (filter.entity) clauses.push('entity = @entity');
    if (filter.entityId) clauses.push('entity_id = @entityId');
    if (filter.beforeSeq) clauses.push('seq < @beforeSeq');
    const where = `WHERE ${clauses.join(' AND ')}`;
    return (
      (await this.s.all(`SELECT * FROM audit ${where} ORDER BY seq DESC LIMIT @limit`, {
        ...filter,
        accountId: this.acct(),
        limit: filter.limit ?? 100,
      })) as Row[]
    ).map(toAuditEntry);
  }
}

// Bulk changes to users' notification emails: one list applied to many users,
// and the CSV round trip (download pre-filled, upload and validate with nothing
// applied, then apply). Both apply as background jobs; each replaces a user's
// whole list. Only the Email columns of a CSV change anything.
import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Repo, Job } from './db/repo.js';
import type { JobContext, JobHandler, JobRunner } from './jobs.js';
import { bulkEmailsSchema, emailProblem, normalizeEmail, MAX_NOTIFICATION_EMAILS, type BulkEmailsInput } from './validation.js';
import { parse } from './service.js';
import { csvRecord, loopTurns, parseCsvYielding, restoreFormula, CsvSyntaxError } from './csv.js';
import { LimitError, NotFoundError, ConflictError, ValidationError } from './errors.js';
import { noticeStatus, noticeSummary } from './notice-status.js';

export const CSV_EMAIL_COLUMNS = Array.from({ length: MAX_NOTIFICATION_EMAILS }, (_, i) => `Email${i + 1}`);
export const CSV_REFERENCE_COLUMNS = ['UserId', 'Username', 'DisplayName', 'Extension', 'LocationCode', 'LocationName'] as const;
/** After the emails (older files without it still read): each of the user's phones and its emergency-services notice. */
export const CSV_NOTICE_COLUMN = 'E911Notice';
export const CSV_COLUMNS = [...CSV_REFERENCE_COLUMNS, ...CSV_EMAIL_COLUMNS, CSV_NOTICE_COLUMN];

/**
 * How an upload is applied: its valid rows (rows with errors skipped), or all of it only when
 * no row has an error (nothing otherwise).
 */
export const CSV_APPLY_MODES = ['valid-rows', 'all-or-nothing'] as const;
export type CsvApplyMode = (typeof CSV_APPLY_MODES)[number];

/** What an apply job did, as its result says. */
export interface CsvApplyResult {
  mode: CsvApplyMode;
  /** valid-rows: the valid rows, the others skipped; all-rows: every row; nothing: refused (a row is wrong or a user is gone). */
  applied: 'valid-rows' | 'all-rows' | 'nothing';
  skippedRows: number;
  updated: number;
  unchanged: number;
  missing: number;
  reason?: string;
}

export interface CsvLimits {
  maxBytes: number;
  maxRows: number;
  /** Errors listed in a report; the count is always complete. */
  maxReportedErrors: number;
}

export const DEFAULT_CSV_LIMITS: CsvLimits = { maxBytes: 32 * 1024 * 1024, maxRows: 100_000, maxReportedErrors: 1000 };

export interface CsvIssue {
  row: number;
  column: string;
  reason: string;
}

export interface CsvReport {
  /** Present when the file could be read: pass it to apply. Rows with errors are skipped. */
  uploadId: string | null;
  rows: number;
  /** Valid rows whose list differs from the user's current one. */
  changes: number;
  unchanged: number;
  errorCount: number;
  errors: CsvIssue[];
}

const CHUNK = 500;

export interface BulkDeps {
  repo: Repo;
  jobs: JobRunner;
  log: Logger;
  limits?: CsvLimits;
}

export class BulkService {
  readonly limits: CsvLimits;

  constructor(private readonly deps: BulkDeps) {
    this.limits = deps.limits ?? DEFAULT_CSV_LIMITS;
  }

  /** The job handlers this service runs; the composition root registers them. */
  handlers(): Record<string, JobHandler> {
    return {
      'bulk-emails': (job, ctx) => this.runBulkEmails(job, ctx),
      'csv-apply': (job, ctx) => this.runCsvApply(job, ctx),
    };
  }

  /** Queues "set these emails on these users"; returns the job at once. */
  async queueBulkEmails(actor: string, input: unknown): Promise<Job> {
    const req = parse(bulkEmailsSchema, input);
    const { repo } = this.deps;
    let total: number;
    if ('locationId' in req.target) {
      if (!(await repo.location(req.target.locationId))) throw new NotFoundError(`location ${req.target.locationId}`);
      total = await repo.userCount({ locationId: req.target.locationId });
    } else if ('userIds' in req.target) {
      const ids = [...new Set(req.target.userIds)];
      const known = await repo.existingUserIds(ids);
      const unknown = ids.filter((id) => !known.has(id));
      if (unknown.length)
        throw new ValidationError([
          { field: 'target.userIds', reason: `no such users: ${unknown.slice(0, 20).join(', ')}${unknown.length > 20 ? ' ...' : ''}` },
        ]);
      req.target.userIds = ids;
      total = ids.length;
    } else total = await repo.userCount();
    if (req.alsoCompanyContacts && !('all' in req.target))
      throw new ValidationError([{ field: 'alsoCompanyContacts', reason: 'only with target all (every user)' }]);
    await repo.transaction(async () => {
      if (req.alsoCompanyContacts) {
        await repo.audit(actor, 'account.update', 'account', null, { emergencyContacts: req.emails, via: 'bulk-emails' });
        await repo.updateAccount({ emergencyContacts: req.emails });
      }
      await repo.audit(actor, 'bulk.emails-queued', 'job', null, {
        target: 'userIds' in req.target ? { userIds: req.target.userIds.length } : req.target,
        emails: req.emails,
        ...(req.alsoCompanyContacts ? { alsoCompanyContacts: true } : {}),
      });
    });
    return this.deps.jobs.enqueue('bulk-emails', actor, req, total);
  }

  private async runBulkEmails(job: Job, ctx: JobContext): Promise<unknown> {
    const { repo } = this.deps;
    const req = job.params as BulkEmailsInput;
    // The target is resolved when the job runs: "all users" means all users then.
    const ids =
      'userIds' in req.target
        ? req.target.userIds
        : 'locationId' in req.target
          ? await repo.userIds({ locationId: req.target.locationId })
          : await repo.userIds();
    return this.applyLists(
      job,
      ctx,
      ids.map((id) => [id, req.emails] as const),
    );
  }

  private async applyLists(
    job: Job,
    ctx: JobContext,
    lists: readonly (readonly [number, readonly string[]])[],
  ): Promise<{ updated: number; unchanged: number; missing: number }> {
    const { repo } = this.deps;
    let updated = 0;
    let unchanged = 0;
    let missing = 0;
    for (let i = 0; i < lists.length; i += CHUNK) {
      await repo.transaction(async () => {
        for (const [id, emails] of lists.slice(i, i + CHUNK)) {
          const before = await repo.userEmails(id);
          if (before === null) {
            missing++;
            continue;
          }
          if (await repo.setUserEmails(id, emails)) {
            updated++;
            await repo.audit(job.actor, 'user.emails-replace', 'user', id, { before, after: emails, jobId: job.id });
          } else unchanged++;
        }
      });
      await ctx.progress(Math.min(i + CHUNK, lists.length));
      await ctx.yield();
    }
    return { updated, unchanged, missing };
  }

  // ---- CSV ----

  /** The CSV download: every user, reference columns, Email1..Email10 with the current list, then their phones' notice. */
  async exportCsv(): Promise<string> {
    const out = [csvRecord(CSV_COLUMNS)];
    const notices = new Map<number, string[]>();
    for (const d of await this.deps.repo.devices()) {
      if (d.userId === null) continue;
      const list = notices.get(d.userId) ?? [];
      list.push(noticeSummary(d.deviceId, noticeStatus(d)));
      notices.set(d.userId, list);
    }
    for (const u of await this.deps.repo.csvUserRows()) {
      out.push(
        csvRecord([
          u.id,
          u.username,
          u.displayName,
          u.extension,
          u.locationCode,
          u.locationName,
          ...CSV_EMAIL_COLUMNS.map((_, i) => u.emails[i] ?? ''),
          (notices.get(u.id) ?? []).join('; '),
        ]),
      );
    }
    return out.join('');
  }

  /**
   * Validates an upload and keeps its changes for apply. Nothing is applied.
   * Throws LimitError for a file over the limits and ValidationError when it
   * cannot be read as this CSV at all; row problems go into the report.
   */
  async validateCsv(actor: string, body: Buffer | string): Promise<CsvReport> {
    const { maxBytes, maxRows, maxReportedErrors } = this.limits;
    const size = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
    if (size > maxBytes) throw new LimitError(`the file is ${mib(size)}; the limit is ${mib(maxBytes)}`);
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    // Checked natively without decoding (a decode and search of 32 MiB held the loop for a second).
    if (!isUtf8(bytes)) throw new ValidationError([{ field: 'file', reason: 'the file is not UTF-8 text (save it as "CSV UTF-8")' }]);
    let records: string[][];
    try {
      records = await parseCsvYielding(bytes, { maxRecords: maxRows + 1, maxFieldLength: 4096 });
    } catch (err) {
      if (!(err instanceof CsvSyntaxError)) throw err;
      if (/more than \d+ rows/.test(err.message))
        throw new LimitError(`the file has more than ${maxRows} data rows; the limit is ${maxRows}`);
      throw new ValidationError([{ field: `row ${err.row}`, reason: err.message.replace(/^row \d+: /, '') }]);
    }
    const header = (records[0] ?? []).map((h) => h.trim());
    if (records.length === 0 || header.every((h) => h === ''))
      throw new ValidationError([{ field: 'row 1', reason: 'the file is empty: it needs the header row' }]);
    const problems: CsvIssue[] = [];
    const col = new Map<string, number>();
    header.forEach((h, i) => {
      const key = h.toLowerCase();
      if (col.has(key)) problems.push({ row: 1, column: h, reason: 'this column appears twice' });
      col.set(key, i);
    });
    for (const c of CSV_EMAIL_COLUMNS)
      if (!col.has(c.toLowerCase())) problems.push({ row: 1, column: c, reason: 'column missing: the header needs Email1 to Email10' });
    if (!col.has('userid') && !col.has('username'))
      problems.push({ row: 1, column: 'UserId', reason: 'column missing: the header needs UserId (or Username)' });
    if (problems.length) throw new ValidationError(problems.map((p) => ({ field: `row ${p.row} ${p.column}`, reason: p.reason })));

    const idCol = col.get('userid');
    const nameCol = col.get('username');
    const emailCols = CSV_EMAIL_COLUMNS.map((c) => [c, col.get(c.toLowerCase())!] as const);
    const index = await this.deps.repo.userEmailIndex();
    const seen = new Map<number, number>();
    const changes: [number, string[]][] = [];
    let errorCount = 0;
    let unchanged = 0;
    let rows = 0;
    const report = (row: number, column: string, reason: string) => {
      errorCount++;
      if (problems.length < maxReportedErrors) problems.push({ row, column, reason });
    };
    // The rows' checks take as long as the parse on a large file: the loop gets its turns here too.
    const turn = loopTurns();
    for (let r = 1; r < records.length; r++) {
      await turn();
      const rec = records[r]!;
      const row = r + 1;
      if (rec.length === 1 && rec[0]!.trim() === '') continue; // a blank line
      rows++;
      const errorsBefore = errorCount;
      let userId: number | undefined;
      const idText = idCol !== undefined ? (rec[idCol] ?? '').trim() : '';
      if (idText !== '') {
        userId = /^\d+$/.test(idText) ? Number(idText) : undefined;
        if (userId === undefined || !index.byId.has(userId)) {
          report(row, 'UserId', `no user with id ${JSON.stringify(idText)}`);
          continue;
        }
      } else {
        const name = nameCol !== undefined ? restoreFormula((rec[nameCol] ?? '').trim()) : '';
        userId = name ? index.byName.get(name.toLowerCase()) : undefined;
        if (userId === undefined) {
          report(
            row,
            name ? 'Username' : 'UserId',
            name ? `no user named ${JSON.stringify(name)}` : 'the row names no user (UserId is empty)',
          );
          continue;
        }
      }
      const first = seen.get(userId);
      if (first !== undefined) {
        report(row, 'UserId', `user ${userId} appears again (first in row ${first})`);
        continue;
      }
      seen.set(userId, row);
      const emails: string[] = [];
      const lower = new Set<string>();
      for (const [name, i] of emailCols) {
        const raw = restoreFormula((rec[i] ?? '').trim());
        if (raw === '') continue;
        const p = emailProblem(raw);
        if (p) {
          report(row, name, `${JSON.stringify(raw.slice(0, 80))} ${p}`);
          continue;
        }
        const e = normalizeEmail(raw);
        if (lower.has(e.toLowerCase())) {
          report(row, name, `${e} is listed twice in this row`);
          continue;
        }
        lower.add(e.toLowerCase());
        emails.push(e);
      }
      if (rec.length > header.length)
        report(row, `column ${header.length + 1}`, `the row has ${rec.length} fields; the header has ${header.length}`);
      if (errorCount > errorsBefore) continue;
      if (index.byId.get(userId) === JSON.stringify(emails)) unchanged++;
      else changes.push([userId, emails]);
    }
    const uploadId = randomUUID();
    await this.deps.repo.transaction(async () => {
      await this.deps.repo.saveCsvUpload(uploadId, actor, rows, changes, errorCount);
      await this.deps.repo.audit(actor, 'csv.validate', 'csv', uploadId, { rows, changes: changes.length, unchanged, errors: errorCount });
    });
    return { uploadId, rows, changes: changes.length, unchanged, errorCount, errors: problems };
  }

  /**
   * Queues the changes of a validated upload; an upload applies once. all-or-nothing with a
   * row in error applies nothing: refused (409) saying so, and the upload stays unapplied.
   */
  async queueCsvApply(actor: string, uploadId: string, mode: CsvApplyMode = 'valid-rows'): Promise<Job> {
    const { repo } = this.deps;
    if (!CSV_APPLY_MODES.includes(mode)) throw new ValidationError([{ field: 'mode', reason: `must be ${CSV_APPLY_MODES.join(' or ')}` }]);
    const upload = await repo.csvUpload(uploadId);
    if (!upload) throw new NotFoundError(`CSV upload ${uploadId}`);
    if (upload.jobId !== null) throw new ConflictError(`CSV upload ${uploadId} was already applied by job ${upload.jobId}`);
    if (mode === 'all-or-nothing' && upload.errorCount > 0) {
      await repo.audit(actor, 'csv.apply-refused', 'csv', uploadId, { mode, errors: upload.errorCount });
      throw new ConflictError(
        `Nothing was applied: ${upload.errorCount} ${upload.errorCount === 1 ? 'row has an error' : 'rows have errors'} and the choice was to apply nothing while any row is wrong. Fix the file and upload it again, or apply the valid rows.`,
      );
    }
    const total = (upload.changes as unknown[]).length;
    const queued = await repo.transaction(async () => {
      const job = await this.deps.jobs.enqueue('csv-apply', actor, { uploadId, mode }, total);
      await repo.markCsvApplied(uploadId, job.id);
      await repo.audit(actor, 'csv.apply-queued', 'csv', uploadId, { jobId: job.id, changes: total, mode, skippedRows: upload.errorCount });
      return job;
    });
    // The job and the mark are committed now: the runner finds the job whenever it looked.
    this.deps.jobs.kick();
    return queued;
  }

  private async runCsvApply(job: Job, ctx: JobContext): Promise<CsvApplyResult> {
    const { uploadId, mode = 'valid-rows' } = job.params as { uploadId: string; mode?: CsvApplyMode };
    const upload = await this.deps.repo.csvUpload(uploadId);
    if (!upload) throw new Error(`CSV upload ${uploadId} vanished`);
    const lists = upload.changes as [number, string[]][];
    if (mode === 'all-or-nothing') {
      // A user deleted since the check would make a row wrong now: still nothing applied.
      const known = await this.deps.repo.existingUserIds(lists.map(([id]) => id));
      const gone = lists.filter(([id]) => !known.has(id)).map(([id]) => id);
      if (gone.length)
        return {
          mode,
          applied: 'nothing',
          skippedRows: 0,
          updated: 0,
          unchanged: 0,
          missing: gone.length,
          reason: `users deleted since the file was checked: ${gone.slice(0, 20).join(', ')}`,
        };
    }
    const r = await this.applyLists(job, ctx, lists);
    return { mode, applied: mode === 'all-or-nothing' ? 'all-rows' : 'valid-rows', skippedRows: upload.errorCount, ...r };
  }
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

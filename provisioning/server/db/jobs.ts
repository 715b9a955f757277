// Background jobs (bulk pushes, CSV applies) and the checked CSV uploads they apply.
import type { ServerDb } from './open.js';
import { int, intOrNull, json, rowMapper, text, textOrNull, type Row } from './rows.js';
import type { CsvUpload, Job, JobStatus } from './types.js';

export const toJob = rowMapper<Job>({
  id: int('id'),
  kind: text('kind'),
  status: text<JobStatus>('status'),
  actor: text('actor'),
  params: json('params', null),
  total: int('total'),
  done: int('done'),
  result: json('result', null),
  error: textOrNull('error'),
  createdAt: text('created_at'),
  startedAt: textOrNull('started_at'),
  finishedAt: textOrNull('finished_at'),
});

const toCsvUpload = rowMapper<CsvUpload>({
  id: text('id'),
  createdAt: text('created_at'),
  rows: int('rows'),
  changes: json('changes', []),
  errorCount: int('error_count'),
  jobId: intOrNull('job_id'),
});

export class JobStore {
  constructor(private readonly s: ServerDb) {}

  createJob(kind: string, actor: string, params: unknown, total: number): number {
    return Number(
      this.s
        .q("INSERT INTO jobs (kind, status, actor, params, total, created_at) VALUES (?, 'queued', ?, ?, ?, ?)")
        .run(kind, actor, JSON.stringify(params), total, this.s.iso()).lastInsertRowid,
    );
  }

  job(id: number): Job | null {
    const r = this.s.q('SELECT * FROM jobs WHERE id = ?').get(id) as Row | undefined;
    return r ? toJob(r) : null;
  }

  jobs(limit = 50): Job[] {
    return (this.s.q('SELECT * FROM jobs ORDER BY id DESC LIMIT ?').all(limit) as Row[]).map(toJob);
  }

  /** Takes the oldest queued job (atomic across processes). */
  claimJob(): Job | null {
    return this.s.transaction(() => {
      const r = this.s.q("SELECT * FROM jobs WHERE status = 'queued' ORDER BY id LIMIT 1").get() as Row | undefined;
      if (!r) return null;
      this.s.q("UPDATE jobs SET status = 'running', started_at = ? WHERE id = ?").run(this.s.iso(), r.id);
      return { ...toJob(r), status: 'running' as const };
    });
  }

  /** Jobs a stopped process left running go back to the queue: each job is idempotent. */
  requeueRunningJobs(): number {
    return this.s.q("UPDATE jobs SET status = 'queued', done = 0 WHERE status = 'running'").run().changes;
  }

  jobProgress(id: number, done: number): void {
    this.s.q('UPDATE jobs SET done = ? WHERE id = ?').run(done, id);
  }

  finishJob(id: number, result: unknown, error: string | null): void {
    this.s
      .q('UPDATE jobs SET status = ?, result = ?, error = ?, finished_at = ? WHERE id = ?')
      .run(error ? 'failed' : 'done', result === undefined ? null : JSON.stringify(result), error, this.s.iso(), id);
  }

  // ---- CSV uploads ----

  saveCsvUpload(id: string, actor: string, rows: number, changes: unknown, errorCount = 0): void {
    this.s
      .q('INSERT INTO csv_uploads (id, created_at, actor, rows, changes, error_count) VALUES (?, ?, ?, ?, ?, ?)')
      .run(id, this.s.iso(), actor, rows, JSON.stringify(changes), errorCount);
  }

  csvUpload(id: string): CsvUpload | null {
    const r = this.s.q('SELECT * FROM csv_uploads WHERE id = ?').get(id) as Row | undefined;
    return r ? toCsvUpload(r) : null;
  }

  markCsvApplied(id: string, jobId: number): boolean {
    return this.s.q('UPDATE csv_uploads SET job_id = ? WHERE id = ? AND job_id IS NULL').run(jobId, id).changes > 0;
  }
}

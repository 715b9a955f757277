// Background jobs (bulk pushes, CSV applies) and the checked CSV uploads they apply.
import { claimLock, type Sql } from './sql.js';
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
  constructor(
    private readonly s: Sql,
    private readonly acct: () => string,
  ) {}

  async createJob(kind: string, actor: string, params: unknown, total: number): Promise<number> {
    const r = await this.s.get<{ id: number }>(
      "INSERT INTO jobs (kind, status, actor, params, total, created_at, account_id) VALUES (?, 'queued', ?, ?, ?, ?, ?) RETURNING id",
      [kind, actor, JSON.stringify(params), total, this.s.iso(), this.acct()],
    );
    return r!.id;
  }

  async job(id: number): Promise<Job | null> {
    const r = (await this.s.get('SELECT * FROM jobs WHERE id = ? AND account_id = ?', [id, this.acct()])) as Row | undefined;
    return r ? toJob(r) : null;
  }

  async jobs(limit = 50): Promise<Job[]> {
    return ((await this.s.all('SELECT * FROM jobs WHERE account_id = ? ORDER BY id DESC LIMIT ?', [this.acct(), limit])) as Row[]).map(
      toJob,
    );
  }

  /** Takes the oldest queued job of any account (atomic across processes); it runs in its account. */
  async claimJob(): Promise<(Job & { accountId: string }) | null> {
    return this.s.transaction(async () => {
      const r = (await this.s.get(`SELECT * FROM jobs WHERE status = 'queued' ORDER BY id LIMIT 1${claimLock(this.s.dialect)}`)) as
        | Row
        | undefined;
      if (!r) return null;
      await this.s.run("UPDATE jobs SET status = 'running', started_at = ? WHERE id = ?", [this.s.iso(), r.id]);
      return { ...toJob(r), status: 'running' as const, accountId: r.account_id as string };
    });
  }

  /** Jobs a stopped process left running go back to the queue: each job is idempotent. */
  async requeueRunningJobs(): Promise<number> {
    return (await this.s.run("UPDATE jobs SET status = 'queued', done = 0 WHERE status = 'running'")).changes;
  }

  async jobProgress(id: number, done: number): Promise<void> {
    await this.s.run('UPDATE jobs SET done = ? WHERE id = ?', [done, id]);
  }

  async finishJob(id: number, result: unknown, error: string | null): Promise<void> {
    await this.s.run('UPDATE jobs SET status = ?, result = ?, error = ?, finished_at = ? WHERE id = ?', [
      error ? 'failed' : 'done',
      result === undefined ? null : JSON.stringify(result),
      error,
      this.s.iso(),
      id,
    ]);
  }

  // ---- CSV uploads ----

  async saveCsvUpload(id: string, actor: string, rows: number, changes: unknown, errorCount = 0): Promise<void> {
    await this.s.run(
      'INSERT INTO csv_uploads (id, created_at, actor, rows, changes, error_count, account_id) VALUES (?, ?, ?, ?, ?, ?, ?)',
      [id, this.s.iso(), actor, rows, JSON.stringify(changes), errorCount, this.acct()],
    );
  }

  async csvUpload(id: string): Promise<CsvUpload | null> {
    const r = (await this.s.get('SELECT * FROM csv_uploads WHERE id = ? AND account_id = ?', [id, this.acct()])) as Row | undefined;
    return r ? toCsvUpload(r) : null;
  }

  async markCsvApplied(id: string, jobId: number): Promise<boolean> {
    return (
      (await this.s.run('UPDATE csv_uploads SET job_id = ? WHERE id = ? AND account_id = ? AND job_id IS NULL', [jobId, id, this.acct()]))
        .changes > 0
    );
  }
}

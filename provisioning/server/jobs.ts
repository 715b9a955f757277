// Background jobs: queued in the store, run one at a time in this process, in
// chunks that yield to the event loop so the API answers meanwhile. A job left
// running by a stopped process is queued again on start: every job kind here
// is idempotent (it sets values, it does not add to them).
import type { Logger } from 'pino';
import type { Repo, Job } from './db/repo.js';
import type { Bus } from './bus.js';

export interface JobContext {
  /** Records progress (persisted at most every 100 ms, and at the end). */
  progress(done: number): Promise<void>;
  /** Lets the event loop run: call between chunks. */
  yield(): Promise<void>;
}

export type JobHandler = (job: Job, ctx: JobContext) => Promise<unknown>;

export interface JobRunnerDeps {
  repo: Repo;
  log: Logger;
  bus: Bus;
  handlers: Record<string, JobHandler>;
}

export class JobRunner {
  private running: Promise<void> | null = null;
  private stopped = true;
  /** A kick came while the loop ran: it must not end on an empty look taken before. */
  private again = false;

  constructor(private readonly deps: JobRunnerDeps) {}

  async start(): Promise<void> {
    this.stopped = false;
    const n = await this.deps.repo.requeueRunningJobs();
    if (n > 0) this.deps.log.warn({ jobs: n }, 'jobs interrupted by a stop were queued again');
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  async enqueue(kind: string, actor: string, params: unknown, total: number): Promise<Job> {
    if (!this.deps.handlers[kind]) throw new Error(`no handler for job kind ${kind}`);
    const id = await this.deps.repo.createJob(kind, actor, params, total);
    const job = (await this.deps.repo.job(id))!;
    this.deps.bus.emit('job', job);
    this.kick();
    return job;
  }

  /** Resolves when no job is running (tests and the CLI wait with it). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /**
   * Runs queued jobs now. enqueue() calls it; a caller that queued a job inside a transaction
   * calls it again after the commit (on PostgreSQL the runner may have looked before it).
   */
  kick(): void {
    // A running loop that already found the queue empty looks once more before it ends.
    this.again = true;
    if (this.stopped || this.running) return;
    // Its own context: a job queued inside a transaction must not run inside it.
    this.running = this.deps.repo
      .detached(() => this.loop())
      .finally(() => {
        this.running = null;
      });
  }

  private async loop(): Promise<void> {
    // Start on a later turn: enqueue() returns the queued job to its caller first.
    await new Promise((r) => setImmediate(r));
    while (!this.stopped) {
      this.again = false;
      const job = await this.deps.repo.claimJob();
      // In the account that queued it: a job reads and changes only that account's rows.
      if (job) await this.deps.repo.inAccount(job.accountId, () => this.run(job));
      else if (!this.again) return;
    }
  }

  private async run(job: Job): Promise<void> {
    const { repo, log, bus } = this.deps;
    const t0 = performance.now();
    let last = 0;
    let done = 0;
    const ctx: JobContext = {
      progress: async (d) => {
        done = d;
        const now = performance.now();
        if (now - last >= 100) {
          last = now;
          await repo.jobProgress(job.id, d);
          bus.emit('job', { ...job, done: d });
        }
      },
      yield: () => new Promise((r) => setImmediate(r)),
    };
    bus.emit('job', job);
    try {
      const result = await this.deps.handlers[job.kind]!(job, ctx);
      await repo.jobProgress(job.id, Math.max(done, job.total));
      await repo.finishJob(job.id, result, null);
      log.info({ jobId: job.id, kind: job.kind, ms: Math.round(performance.now() - t0) }, 'job done');
    } catch (err) {
      await repo.jobProgress(job.id, done);
      await repo.finishJob(job.id, null, (err as Error).message);
      log.error({ err, jobId: job.id, kind: job.kind }, 'job failed');
    }
    bus.emit('job', (await repo.job(job.id))!);
  }
}

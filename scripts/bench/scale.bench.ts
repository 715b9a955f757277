// The scale benchmark (`npm run bench -- scale`): 100,000 simulated phones (sim-phone.ts, raw
// MQTT sockets spread over worker processes and loopback source addresses) against
//  - Mosquitto with 1, 2 and 3 server instances sharing the load (`--share-group`, MQTT 5),
//  - and/or a NATS cluster (its MQTT listener, MQTT 3.1.1) with 1, 2 and 3 instances taking the
//    phones' messages through a NATS queue group (`--nats`),
//  - the single-node embedded default (`e911-server run`: in-process aedes broker, MQTT 3.1.1),
// the embedded run being every figure's baseline, measured in the same run:
//  1. connecting and subscribing every phone;
//  2. a location change pushed until every phone has applied it (each checks id, version and
//     shape, every 100th also the signature, and reports a retained address/state);
//  3. 911 events at a steady rate from 10 more phones (BENCH_SCALE_EVENT_PHONES), each to 2 emails accepted by an SMTP
//     sink, p50 and p99;
// with each process's CPU seconds over each phase (the server instances, the broker, the
// phone workers), which shows what saturates first.
// Knobs: BENCH_SCALE_PHONES (100000), BENCH_SCALE_WORKERS (one per 15,000 phones, at least 2), BENCH_SCALE_INSTANCES ("1,2,3"),
// BENCH_SCALE_ROUNDS (3), BENCH_SCALE_EVENT_RATE (20 per s), BENCH_SCALE_EVENT_SECONDS (15), BENCH_SCALE_EVENT_PHONES (10),
// BENCH_SCALE_EMBEDDED (1; 0 skips the baseline), BENCH_SCALE_VERIFY_EVERY (100),
// BENCH_SCALE_SERVER_MAIN (another tree's dist/provisioning/server/main.js: its server measured instead),
// BENCH_SERVER_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" for the instances' profiles),
// BENCH_SCALE_STORE ("sqlite"; "postgres" or "sqlite,postgres": the broker set-ups' instances on a
// throwaway PostgreSQL cluster, durable as deployed, with fresh phones for each store),
// BENCH_SCALE_BROKER ("mosquitto"; "nats" or "mosquitto,nats"), BENCH_SCALE_NATS_NODES (one per
// 15,000 phones, at least 3), BENCH_SCALE_NATS_AUTH_TIMEOUT (seconds, NATS's default 2), BENCH_SCALE_PUB_QOS (the phones' own publishes: by default what the agent is told, 1 on Mosquitto and 0 on NATS), BENCH_SCALE_RETAIN (the phones' status and reports retained: by default as the agent is told, 1 on Mosquitto and 0 on NATS), BENCH_SCALE_SUB_QOS (the phones' subscription QoS: by default what
// the agent is told to use, 1 on Mosquitto and 0 on NATS), BENCH_SCALE_EMBEDDED_PHONES (the
// baseline's phones, the first of the same phones, in a store of their own; all of them by default).
// Over 400 lines: setup, two broker set-ups and the three measured phases with their CPU figures.
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startMosquitto } from '../../test/helpers/mosquitto.js';
import { clusterConnections, startNatsCluster } from '../../test/helpers/nats-cluster.js';
import { freePort } from '../../test/helpers/ports.js';
import { stopProcess } from '../../test/helpers/process.js';
import { startSmtpSink, type SmtpSink } from '../../test/helpers/smtp-sink.js';
import Database from 'better-sqlite3';
import pg from 'pg';
import { Repo } from '../../provisioning/server/db/repo.js';
import { openSql } from '../../provisioning/server/db/store.js';
import { startPostgres, type PgCluster } from '../../test/helpers/postgres.js';
import { SERVER_DB_FILE } from '../../provisioning/server/db/open.js';
import { loadOrCreateServerCredentials, renderBrokerConfig, renderNatsConfig } from '../../provisioning/server/app.js';
import { hashPassword, hashPasswordBcrypt } from '../../provisioning/server/broker-auth.js';
import { loadOrCreateKeyPair } from '../../provisioning/server/keys.js';
import { locationInputSchema, smtpSettingsSchema, userInputSchema } from '../../provisioning/server/validation.js';
import { publicKeyFromText } from '../../provisioning/protocol/signing.js';
import { report, summary } from './stats.js';
import { SimPhone, connectRetrying } from './sim-phone.js';
import type { FromWorker, Stragglers, ToWorker } from './sim-phone-worker.js';
import {
  PHONES_PER_ADDRESS,
  cpuSeconds,
  eventSchedule,
  openFilesLimit,
  phoneId,
  phonePassword,
  sourceAddress,
  splitPhones,
} from './scale-plan.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const env = process.env;
const PHONES = Number(env.BENCH_SCALE_PHONES ?? 100_000);
// Each worker holds its phones' sockets: at most ~15,000 each keeps it under a 20,000 open-files limit.
const WORKERS = Number(env.BENCH_SCALE_WORKERS ?? Math.max(2, Math.ceil(PHONES / 15_000)));
// "none": only the embedded baseline.
const INSTANCES = (env.BENCH_SCALE_INSTANCES ?? '1,2,3') === 'none' ? [] : (env.BENCH_SCALE_INSTANCES ?? '1,2,3').split(',').map(Number);
const ROUNDS = Number(env.BENCH_SCALE_ROUNDS ?? 3);
const EVENT_RATE = Number(env.BENCH_SCALE_EVENT_RATE ?? 20);
const EVENT_SECONDS = Number(env.BENCH_SCALE_EVENT_SECONDS ?? 15);
const EMBEDDED = env.BENCH_SCALE_EMBEDDED !== '0';
const VERIFY_EVERY = Number(env.BENCH_SCALE_VERIFY_EVERY ?? 100);
const STORES = (env.BENCH_SCALE_STORE ?? 'sqlite').split(',').map((x) => x.trim());
for (const st of STORES) if (st !== 'sqlite' && st !== 'postgres') throw new Error(`BENCH_SCALE_STORE: unknown store ${st}`);
const BROKERS = (env.BENCH_SCALE_BROKER ?? 'mosquitto').split(',').map((x) => x.trim());
for (const b of BROKERS) if (b !== 'mosquitto' && b !== 'nats') throw new Error(`BENCH_SCALE_BROKER: unknown broker ${b}`);
// Each node is one process with its own open-files limit, as one Mosquitto is.
const NATS_NODES = Number(env.BENCH_SCALE_NATS_NODES ?? Math.max(3, Math.ceil(PHONES / 15_000)));
// Seconds a node gives an MQTT client to log in (NATS's default, 2, when unset): under a reconnect storm logins took longer.
const NATS_AUTH_TIMEOUT = env.BENCH_SCALE_NATS_AUTH_TIMEOUT ? Number(env.BENCH_SCALE_NATS_AUTH_TIMEOUT) : null;
const SUB_QOS = env.BENCH_SCALE_SUB_QOS === undefined ? null : Number(env.BENCH_SCALE_SUB_QOS);
if (SUB_QOS !== null && SUB_QOS !== 0 && SUB_QOS !== 1) throw new Error(`BENCH_SCALE_SUB_QOS: ${SUB_QOS} is not 0 or 1`);
const subscribeQos = (broker: 'mosquitto' | 'nats'): 0 | 1 => (SUB_QOS as 0 | 1 | null) ?? (broker === 'nats' ? 0 : 1);
const PUB_QOS = env.BENCH_SCALE_PUB_QOS === undefined ? null : Number(env.BENCH_SCALE_PUB_QOS);
if (PUB_QOS !== null && PUB_QOS !== 0 && PUB_QOS !== 1) throw new Error(`BENCH_SCALE_PUB_QOS: ${PUB_QOS} is not 0 or 1`);
// The phones' own publishes, as the agent is told (broker.publishQos): 0 on NATS, where each QoS 1 publish is a replicated write.
const publishQos = (broker: 'mosquitto' | 'nats'): 0 | 1 => (PUB_QOS as 0 | 1 | null) ?? (broker === 'nats' ? 0 : 1);
// The phones' status and reports retained as the agent is told (broker.retain): not on NATS, whose
// servers never read a retained message. BENCH_SCALE_RETAIN=0 or 1 overrides.
const RETAIN = env.BENCH_SCALE_RETAIN === undefined ? null : env.BENCH_SCALE_RETAIN === '1';
const retainReports = (broker: 'mosquitto' | 'nats'): boolean => RETAIN ?? broker !== 'nats';
// The embedded aedes broker: MQTT 3.1.1, the agent's defaults otherwise.
const EMBEDDED_LINK = { protocolVersion: 4, subscribeQos: 1, publishQos: 1, retain: true } as const;
const EMBEDDED_PHONES = Math.min(PHONES, Number(env.BENCH_SCALE_EMBEDDED_PHONES ?? PHONES));
// The phones the 911 events come from, in turn. Each QoS 1 event is a replicated write on NATS, taken one after
// another from its connection: 10 phones at 20/s send 2 a second each, where a real phone sends one per call.
const EVENT_PHONES = Number(env.BENCH_SCALE_EVENT_PHONES ?? 10);
const EMAILS_PER_EVENT = 2; // the event phone's user and the location's admin
// Another tree's built server (its dist/provisioning/server/main.js), to measure a change against its base in one run.
const SERVER_MAIN = env.BENCH_SCALE_SERVER_MAIN ?? path.resolve(here, '../../provisioning/server/main.js');
const SERVER_NODE_ARGS = ['--max-old-space-size=8192', ...(env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? [])];
const ms = (t0: number) => performance.now() - t0;
const say = (s: string) => process.stdout.write(`${s}\n`);
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

class ScaleBenchError extends Error {
  override name = 'ScaleBenchError';
}

/** What one broker set-up measured: the baseline (embedded) or one instance count on one broker and store. */
interface Figures {
  label: string;
  /** "mosquitto, sqlite", "nats, postgres", "embedded": the set-up whose phones were connected once. */
  setup: string;
  phones: number;
  connectS: number;
  pushS: number[];
  p50: number;
  p99: number;
  missing: number;
  cpu: { push: string; events: string };
}

// The broker (or the embedded server) holds one socket per phone: 100,000 is far over a shell's
// usual open-files limit. Raise it for this process tree if we may (root with CAP_SYS_RESOURCE):
// run again under prlimit, every child inherits it. Without that capability a process cannot
// pass its hard limit, and one broker process cannot hold more phones than it allows. A NATS
// node holds only its share.
const PER_PROCESS = Math.max(
  INSTANCES.length > 0 && BROKERS.includes('mosquitto') ? PHONES : 0,
  INSTANCES.length > 0 && BROKERS.includes('nats') ? Math.ceil(PHONES / NATS_NODES) : 0,
  EMBEDDED ? EMBEDDED_PHONES : 0,
);
const NOFILE = PER_PROCESS + EVENT_PHONES + 2_000;
const limit = openFilesLimit(readFileSync('/proc/self/limits', 'utf8'));
if (limit < NOFILE) {
  const raise = [`--nofile=${NOFILE}:${NOFILE}`];
  const probe = spawnSync('prlimit', [...raise, 'true'], { encoding: 'utf8' });
  if (probe.status !== 0)
    throw new ScaleBenchError(
      `${PHONES} phones need ${NOFILE} open files in the broker's process; this one may have ${limit} and cannot raise it ` +
        `(${(probe.stderr || String(probe.error)).trim()}): at most ${limit - EVENT_PHONES - 2_000} phones per broker process ` +
        '(BENCH_SCALE_PHONES; on NATS, more nodes: BENCH_SCALE_NATS_NODES; the baseline: BENCH_SCALE_EMBEDDED_PHONES)',
    );
  const r = spawnSync('prlimit', [...raise, process.execPath, ...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' });
  if (r.error) throw r.error;
  process.exit(r.status ?? 1);
}

const HQ = {
  code: 'HQ',
  name: 'Example Corp',
  address: { country: 'US', houseNumber: '100', street: 'Main St', city: 'San Jose', state: 'CA', postalCode: '95110' },
  building: 'A',
  floor: '2',
  room: '200',
  timeZone: 'America/Los_Angeles',
  adminEmails: ['security@example.com'],
};

type Credential = (id: string) => { mosquitto: string; bcrypt: string | null };

/**
 * The account: one location, PHONES users with a phone each, plus the event phones, each its own
 * broker login; in SQLite (the seed folder, copied for each set-up) and, given its URL, in
 * PostgreSQL too (the template of each set-up's database). The brokers' logins and permissions
 * are rendered into confDir: Mosquitto's passwd and acl, NATS's nats-auth.conf.
 */
async function seed(
  seedDir: string,
  confDir: string,
  smtpPort: number,
  pwSeed: string,
  pgUrl: string | null,
): Promise<{ token: string; publicKey: string }> {
  const { pair } = loadOrCreateKeyPair(path.join(seedDir, 'signing-key.json'));
  const token = 'e911_scale_bench_token';
  // Hashed once for both stores: bcrypt (NATS's) costs a millisecond or two a phone.
  const hashes = new Map<string, ReturnType<Credential>>();
  const credential: Credential = (id) => {
    let h = hashes.get(id);
    if (!h) {
      const pw = phonePassword(pwSeed, id);
      h = { mosquitto: hashPassword(pw), bcrypt: BROKERS.includes('nats') ? hashPasswordBcrypt(pw) : null };
      hashes.set(id, h);
    }
    return h;
  };
  if (pgUrl) {
    const t0 = performance.now();
    const repo = new Repo(openSql({ dataDir: seedDir, store: pgUrl }));
    await seedRepo(repo, seedDir, smtpPort, credential, token);
    await repo.close();
    say(`setup (PostgreSQL): ${PHONES} + ${EVENT_PHONES} users, phones and broker logins in ${(ms(t0) / 1000).toFixed(1)} s`);
  }
  const t0 = performance.now();
  const repo = new Repo({ dataDir: seedDir });
  await seedRepo(repo, seedDir, smtpPort, credential, token);
  mkdirSync(confDir);
  const files = await renderBrokerConfig(repo, confDir);
  writeFileSync(path.join(confDir, 'passwd'), files.passwd, { mode: 0o600 });
  writeFileSync(path.join(confDir, 'acl'), files.acl);
  if (BROKERS.includes('nats')) writeFileSync(path.join(confDir, 'nats-auth.conf'), (await renderNatsConfig(repo)).conf, { mode: 0o600 });
  await repo.close();
  say(`setup: ${PHONES} + ${EVENT_PHONES} users, phones and broker logins in ${(ms(t0) / 1000).toFixed(1)} s`);
  if (EMBEDDED && EMBEDDED_PHONES < PHONES) {
    // The baseline's store holds only its own phones: an embedded server seeded with all of them
    // would keep a retained locations list for each, which aedes tests every new subscription against.
    const dir = embeddedSeedDir(seedDir);
    mkdirSync(dir);
    cpSync(path.join(seedDir, 'signing-key.json'), path.join(dir, 'signing-key.json'));
    const embedded = new Repo({ dataDir: dir });
    await seedRepo(embedded, dir, smtpPort, credential, token, EMBEDDED_PHONES);
    await embedded.close();
  }
  return { token, publicKey: pair.publicKey };
}

const embeddedSeedDir = (seedDir: string) => (EMBEDDED_PHONES < PHONES ? `${seedDir}-embedded` : seedDir);

async function seedRepo(
  repo: Repo,
  dataDir: string,
  smtpPort: number,
  credential: Credential,
  token: string,
  phones = PHONES,
): Promise<void> {
  for (const n of [1, 2, 3]) await loadOrCreateServerCredentials(dataDir, `s${n}`, repo);
  await repo.transaction(async () => {
    await repo.updateAccount({ name: 'Bench Corp', contactEmail: 'it@example.com' });
    await repo.setNotificationSettings({
      smtp: smtpSettingsSchema.parse({ host: '127.0.0.1', port: smtpPort, security: 'none', from: 'e911@example.com' }),
      sms: null,
      webhook: null,
    });
    const loc = await repo.insertLocation(locationInputSchema.parse(HQ));
    const add = async (id: string, username: string, emails: string[]) => {
      const uid = await repo.insertUser(
        userInputSchema.parse({ username, displayName: username, locationId: loc, callback: '+14085550100', emails }),
      );
      await repo.setUserDevices(uid, [id]);
      const c = credential(id);
      await repo.setDeviceCredential(id, c.mosquitto, c.bcrypt);
    };
    for (let i = 0; i < phones; i++) await add(phoneId(i), `u${i}`, []);
    for (let i = 0; i < EVENT_PHONES; i++) await add(`evt-${i}`, `desk${i}`, [`desk${i}@example.com`]);
    await repo.setE911(true);
    await repo.createToken('bench', token);
  });
}

/** What the bench reads back from the store the server(s) write: how many phones' reports are still to come, the highest applied version. */
interface Progress {
  notApplied(): Promise<number>;
  maxApplied(): Promise<number | null>;
  /** What the store says of these phones: issued and applied versions, online. */
  phones(ids: string[]): Promise<Record<string, unknown>[]>;
  /** When the server stored each of these events (its received_at), epoch ms. */
  received(ids: string[]): Promise<Map<string, number>>;
  /** PostgreSQL only: samples the server's sessions over a phase; stop() says what they waited on. */
  watch?(): { stop(): Promise<string> };
  close(): Promise<void>;
}

// The set-up's phones: the first `phones` sim phones (ids are zero-padded, so they sort by number).
const SIM_PHONES = "device_id LIKE 'sim-%' AND device_id < ";

function sqliteProgress(dataDir: string, phones: number): Progress {
  // WAL: a reader never blocks the server(s).
  const db = new Database(path.join(dataDir, SERVER_DB_FILE), { readonly: true });
  const upTo = phoneId(phones);
  // Per phone, not one version for all: instances that re-issue leave phones on different ones.
  const notApplied = db
    .prepare(`SELECT count(*) FROM devices WHERE ${SIM_PHONES} ? AND (applied_version IS NULL OR applied_version < addr_version)`)
    .pluck();
  const maxApplied = db.prepare(`SELECT max(applied_version) FROM devices WHERE ${SIM_PHONES} ?`).pluck();
  return {
    notApplied: async () => notApplied.get(upTo) as number,
    maxApplied: async () => maxApplied.get(upTo) as number | null,
    phones: async (ids) =>
      db
        .prepare(
          `SELECT device_id, addr_version, addr_issued_at, applied_version, online, last_seen FROM devices WHERE device_id IN (${ids.map(() => '?').join(',')})`,
        )
        .all(...ids) as Record<string, unknown>[],
    received: async (ids) => {
      const rows = db.prepare(`SELECT id, received_at FROM events WHERE id IN (${ids.map(() => '?').join(',')})`).all(...ids) as {
        id: string;
        received_at: string;
      }[];
      return new Map(rows.map((r) => [r.id, Date.parse(r.received_at)]));
    },
    close: async () => {
      db.close();
    },
  };
}

function pgProgress(url: string, phones: number): Progress {
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  const one = async (sql: string) => (await pool.query(sql, [phoneId(phones)])).rows[0] as Record<string, unknown>;
  return {
    notApplied: async () =>
      Number(
        (
          await one(
            `SELECT count(*) AS n FROM devices WHERE ${SIM_PHONES} $1 AND (applied_version IS NULL OR applied_version < addr_version)`,
          )
        ).n,
      ),
    maxApplied: async () => {
      const v = (await one(`SELECT max(applied_version) AS v FROM devices WHERE ${SIM_PHONES} $1`)).v;
      return v === null || v === undefined ? null : Number(v);
    },
    phones: async (ids) =>
      (
        await pool.query(
          'SELECT device_id, addr_version, addr_issued_at, applied_version, online, last_seen FROM devices WHERE device_id = ANY($1)',
          [ids],
        )
      ).rows as Record<string, unknown>[],
    received: async (ids) => {
      const rows = (await pool.query('SELECT id, received_at FROM events WHERE id = ANY($1)', [ids])).rows as {
        id: string;
        received_at: string;
      }[];
      return new Map(rows.map((r) => [r.id, Date.parse(r.received_at)]));
    },
    watch: () => pgWatch(url),
    close: () => pool.end(),
  };
}

/**
 * What the instances' connections do over a phase: committed transactions (pg_stat_database), and
 * every 250 ms pg_stat_activity's sessions by state and wait event (the bench's own excluded).
 */
function pgWatch(url: string): { stop(): Promise<string> } {
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  const commits = async () =>
    Number((await pool.query('SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()')).rows[0]?.n ?? 0);
  const seen = new Map<string, number>();
  let samples = 0;
  let maxBusy = 0;
  let stopped = false;
  const c0 = commits();
  const loop = (async () => {
    while (!stopped) {
      const rows = (
        await pool.query(
          `SELECT state, coalesce(wait_event_type || ':' || wait_event, 'cpu') AS w FROM pg_stat_activity
           WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`,
        )
      ).rows as { state: string; w: string }[];
      samples++;
      let busy = 0;
      for (const r of rows) {
        const k = r.state === 'idle' ? 'idle' : `${r.state} ${r.w}`;
        seen.set(k, (seen.get(k) ?? 0) + 1);
        if (r.state !== 'idle') busy++;
      }
      maxBusy = Math.max(maxBusy, busy);
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  const t0 = performance.now();
  return {
    async stop() {
      stopped = true;
      await loop;
      const n = (await commits()) - (await c0);
      await pool.end();
      const avg = [...seen.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 6)
        .map(([k, v]) => `${k} ${(v / samples).toFixed(1)}`)
        .join(', ');
      return `PostgreSQL: ${n} commits (${((n * 1000) / ms(t0)).toFixed(0)}/s); sessions on average: ${avg}; at most ${maxBusy} busy`;
    },
  };
}

/** The phone workers: forked, each given a slice; resolves once all are connected. */
class Workers {
  readonly procs: ChildProcess[] = [];
  /** Per worker, the last round it acknowledged (marked) and the last in which all its phones applied a newer version. */
  private readonly marked: number[] = [];
  private readonly advanced: number[] = [];
  private round = 0;
  private waiters: (() => void)[] = [];
  private failure: ScaleBenchError | null = null;
  private readonly stragglers = new Map<number, Stragglers>();
  /** Per worker, the phones the broker dropped and those connected again since. */
  private readonly drops: { drops: number; reconnected: number }[] = [];

  /** Phones the broker dropped (each connected again) since the workers started. */
  dropped(): { drops: number; reconnected: number } {
    return this.drops.reduce((a, d) => ({ drops: a.drops + d.drops, reconnected: a.reconnected + d.reconnected }), {
      drops: 0,
      reconnected: 0,
    });
  }

  /** Connects the first `phones` phones, phone i to ports[i % ports.length]; resolves with the time taken. */
  async start(ports: number[], link: PhoneLink, pwSeed: string, publicKey: string, phones: number): Promise<number> {
    const slices = splitPhones(phones, WORKERS);
    const connected: Promise<number>[] = [];
    for (const [k, s] of slices.entries()) {
      const child = fork(path.join(here, 'sim-phone-worker.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      this.procs.push(child);
      this.marked.push(0);
      this.advanced.push(0);
      connected.push(
        new Promise((resolve, reject) => {
          child.on('message', (m: FromWorker) => {
            if (m.type === 'connected') resolve(m.ms);
            else if (m.type === 'marked' || m.type === 'advanced') {
              (m.type === 'marked' ? this.marked : this.advanced)[k] = m.round;
              this.wake();
            } else if (m.type === 'drops') {
              this.drops[k] = m;
            } else if (m.type === 'stragglers') {
              this.stragglers.set(k, m);
              this.wake();
            } else if (m.type === 'error') {
              this.failure = new ScaleBenchError(`worker ${k}: ${m.message}`);
              reject(this.failure);
              this.wake();
            }
          });
          child.once('exit', (code) => {
            if (code !== 0) {
              this.failure ??= new ScaleBenchError(`worker ${k} exited with ${code}`);
              reject(this.failure);
              this.wake();
            }
          });
        }),
      );
      const msg: ToWorker = {
        type: 'connect',
        ports,
        ...link,
        from: s.from,
        to: s.to,
        seed: pwSeed,
        publicKey,
        perAddress: PHONES_PER_ADDRESS,
        verifyEvery: VERIFY_EVERY,
        // Each worker's share of the 200 connects in flight server.bench.ts uses.
        window: Math.max(20, Math.floor(200 / WORKERS)),
      };
      child.send(msg);
    }
    const t0 = performance.now();
    await Promise.all(connected);
    return ms(t0);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private async until(ok: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.failure) throw this.failure;
      if (ok()) return;
      if (Date.now() > deadline) throw new ScaleBenchError(`${what}: not within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 1000);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Notes every phone's version now; resolves once all workers have. Returns the round. */
  async mark(): Promise<number> {
    const round = ++this.round;
    for (const p of this.procs) p.send({ type: 'mark', round } satisfies ToWorker);
    // Workers reconnecting thousands of dropped phones on a loaded host answer late (100,000 phones: past 30 s).
    await this.until(() => this.marked.every((r) => r >= round), 180_000, `mark ${round}`);
    return round;
  }

  /**
   * Waits until every phone has applied a newer version than at mark `round`; false when not in
   * time, having said which phones did not, whether the broker dropped them, and what the store
   * says of a few. Throws only when a worker failed.
   */
  async appliedSince(round: number, timeoutMs: number, progress?: Progress): Promise<boolean> {
    try {
      await this.until(() => this.advanced.every((r) => r >= round), timeoutMs, `every phone applying a new version after mark ${round}`);
      return true;
    } catch (err) {
      if (this.failure) throw err;
      this.stragglers.clear();
      for (const p of this.procs) p.send({ type: 'stragglers' } satisfies ToWorker);
      await this.until(() => this.stragglers.size === this.procs.length, 30_000, 'the workers telling their stragglers').catch(() => {});
      const all = [...this.stragglers.values()];
      const behind = all.reduce((n, x) => n + x.behind, 0);
      const dropped = all.reduce((n, x) => n + x.dropped, 0);
      const sample = all.flatMap((x) => x.sample).slice(0, 10);
      say(
        `  not applied within ${timeoutMs / 1000} s of mark ${round}: ${behind} phones, ${dropped} of them dropped by the broker at some point; a few: ${JSON.stringify(sample)}`,
      );
      if (progress && sample.length > 0) say(`  the store says of them: ${JSON.stringify(await progress.phones(sample.map((x) => x.id)))}`);
      return false;
    }
  }

  async close(): Promise<void> {
    await Promise.all(
      this.procs.map(async (p) => {
        if (p.connected) p.send({ type: 'close' } satisfies ToWorker);
        await stopProcess(p, 10_000);
      }),
    );
  }
}

/** CPU seconds of each named process between start() and stop(), with the wall time. */
function cpuMeter(procs: Record<string, number[]>): { stop(): string } {
  const before = Object.fromEntries(Object.entries(procs).map(([k, pids]) => [k, pids.map(cpuSeconds)]));
  const t0 = performance.now();
  return {
    stop() {
      const wall = ms(t0) / 1000;
      const parts = Object.entries(procs).map(([k, pids]) => {
        const used = pids.map((p, i) => cpuSeconds(p) - before[k]![i]!);
        return `${k} ${used.map((u) => u.toFixed(1)).join('+')}`;
      });
      return `CPU s over ${wall.toFixed(1)} s wall: ${parts.join(', ')}`;
    },
  };
}

async function startServer(args: string[], httpPort: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...SERVER_NODE_ARGS, SERVER_MAIN, 'run', ...args, '--http-port', String(httpPort)], {
    env: { PATH: env.PATH, E911_LOG_LEVEL: env.BENCH_SERVER_LOG ?? 'error' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new ScaleBenchError(`server ${args.join(' ')} exited with ${child.exitCode}`);
    const up = await fetch(`http://127.0.0.1:${httpPort}/api/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) return child;
    if (Date.now() > deadline) throw new ScaleBenchError(`server on ${httpPort} not healthy after 60 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Runs the push rounds and the steady 911 events against running server(s); phones connected. */
async function measure(
  label: string,
  ctx: { token: string; httpPort: number; phones: number; progress: Progress; workers: Workers; eventPhones: SimPhone[]; sink: EventSink },
  cpu: Record<string, number[]>,
): Promise<Omit<Figures, 'connectS' | 'label' | 'setup' | 'phones'>> {
  const api = async (method: string, p: string, body?: unknown) => {
    const res = await fetch(`http://127.0.0.1:${ctx.httpPort}${p}`, {
      method,
      headers: { authorization: `Bearer ${ctx.token}`, 'content-type': 'application/json' },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    if (!res.ok) throw new ScaleBenchError(`${method} ${p}: ${res.status} ${await res.text()}`);
    return res.json() as Promise<unknown>;
  };
  const pushS: number[] = [];
  const lagS: number[] = [];
  // The server(s) seeing every phone's report: read from the store they write.
  const { progress } = ctx;
  const pushCpu = cpuMeter(cpu);
  const pushPg = progress.watch?.();
  for (let r = 0; r < ROUNDS; r++) {
    const mark = await ctx.workers.mark();
    const t0 = performance.now();
    const loc = (await api('PATCH', '/api/locations/1', { room: `${label}-${r}` })) as { version?: number };
    if (!(await ctx.workers.appliedSince(mark, 300_000, progress))) {
      // Told above; the figure is missing, and the next round (a new version to every phone) goes on.
      pushS.push(Number.NaN);
      say(`  ${label}: round ${r + 1}: NOT applied by all ${ctx.phones} phones within 300 s`);
      continue;
    }
    // The highest version any phone holds: with one instance, what this change issued to all.
    const v = (await progress.maxApplied()) ?? loc.version ?? 0;
    pushS.push(ms(t0) / 1000);
    // Not in the figure (the phones' view is), but the events must not queue behind these reports.
    const storedBy = Date.now() + 120_000;
    let left = await progress.notApplied();
    while (left > 0 && Date.now() < storedBy) {
      await new Promise((r) => setTimeout(r, 100));
      left = await progress.notApplied();
    }
    if (left > 0) say(`  ${label}: round ${r + 1}: ${left} phones' reports of it not stored within 120 s`);
    lagS.push(ms(t0) / 1000 - pushS.at(-1)!);
    say(
      `  ${label}: round ${r + 1}: v${v} applied by all ${ctx.phones} phones in ${pushS.at(-1)!.toFixed(2)} s, ` +
        `all reports stored ${lagS.at(-1)!.toFixed(2)} s later`,
    );
  }
  const pushCpuText = pushCpu.stop();
  say(`  ${label}: push ${pushCpuText}`);
  if (pushPg) say(`  ${label}: push ${await pushPg.stop()}`);

  // 911 events at a steady rate, round robin over the event phones, timed to the last email accepted.
  const schedule = eventSchedule(EVENT_RATE, EVENT_SECONDS);
  const evCpu = cpuMeter(cpu);
  const evPg = progress.watch?.();
  const start = performance.now();
  const pending: Promise<number | null>[] = [];
  const sentAt = new Map<string, number>();
  for (const [i, at] of schedule.entries()) {
    const wait = start + at - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const phone = ctx.eventPhones[i % ctx.eventPhones.length]!;
    const id = `${label}-${i}`;
    pending.push(ctx.sink.expect(id, EMAILS_PER_EVENT, 60_000));
    sentAt.set(id, Date.now());
    phone.publish(`e911/v1/${phone.id}/events`, emergencyEvent(id, phone.id));
  }
  const got = await Promise.all(pending);
  const evCpuText = evCpu.stop();
  if (evPg) say(`  ${label}: events ${await evPg.stop()}`);
  const lat = got.filter((x): x is number => x !== null);
  const s = summary(lat);
  say(
    `  ${label}: ${schedule.length} events at ${EVENT_RATE}/s: p50 ${s.p50.toFixed(0)} ms, p99 ${s.p99.toFixed(0)} ms, ` +
      `${schedule.length - lat.length} not accepted in 60 s; ${evCpuText}`,
  );
  // Where the time went: from the publish to the server storing the event (broker and intake), and after it.
  const received = await ctx.progress.received([...sentAt.keys()]);
  const toStore = [...sentAt].flatMap(([id, t]) => (received.has(id) ? [received.get(id)! - t] : []));
  if (toStore.length > 0) {
    const st = summary(toStore);
    say(`  ${label}: of which publish to stored by the server: p50 ${st.p50.toFixed(0)} ms, p99 ${st.p99.toFixed(0)} ms`);
  }
  const drops = ctx.eventPhones.reduce((n, p) => n + p.drops, 0);
  if (drops > 0) say(`  ${label}: the broker has dropped the event phones ${drops} times so far (each connected again)`);
  return { pushS, p50: s.p50, p99: s.p99, missing: schedule.length - lat.length, cpu: { push: pushCpuText, events: evCpuText } };
}

function emergencyEvent(id: string, deviceId: string): string {
  return JSON.stringify({
    v: 1,
    id,
    type: 'emergency-call',
    deviceId,
    ts: new Date().toISOString(),
    data: {
      numberDialed: '911',
      callback: '+14085550100',
      displayName: deviceId,
      locationCode: 'HQ',
      addressMissing: false,
      device: { ip: '10.1.2.3' },
    },
  });
}

/** The SMTP sink, which times each event from its publish (expect) to its last email accepted. */
interface EventSink {
  sink: SmtpSink;
  expect(id: string, emails: number, timeoutMs: number): Promise<number | null>;
}

async function startEventSink(): Promise<EventSink> {
  const waiters = new Map<string, { left: number; t0: number; done: (ms: number) => void }>();
  const sink = await startSmtpSink({
    onMail(m) {
      const w = waiters.get((m.headers['x-e911-event-id'] ?? '').trim());
      if (!w) return;
      // The sink says 250 right after this: the sender has it accepted now.
      if (--w.left === 0) w.done(ms(w.t0));
    },
  });
  return {
    sink,
    expect(id, emails, timeoutMs) {
      return new Promise((resolve) => {
        const t = setTimeout(() => {
          waiters.delete(id);
          resolve(null);
        }, timeoutMs);
        waiters.set(id, {
          left: emails,
          t0: performance.now(),
          done: (v) => {
            clearTimeout(t);
            waiters.delete(id);
            resolve(v);
          },
        });
      });
    },
  };
}

/** The event phones, phone i on ports[i % ports.length]; a failed connect tried again for a minute, as an agent would. */
async function connectEventPhones(ports: number[], link: PhoneLink, pwSeed: string, publicKey: string): Promise<SimPhone[]> {
  const key = publicKeyFromText(publicKey);
  const phones = Array.from(
    { length: EVENT_PHONES },
    (_, i) =>
      new SimPhone(
        `evt-${i}`,
        phonePassword(pwSeed, `evt-${i}`),
        key,
        () => {},
        () => {},
        false,
      ),
  );
  // Their own source address, past the workers' ones.
  const from = sourceAddress(PHONES + PHONES_PER_ADDRESS, PHONES_PER_ADDRESS);
  const opts = { ...link, localAddress: from };
  await Promise.all(phones.map((p, i) => connectRetrying(p, i, ports, opts, 60_000)));
  // Dropped, one connects again as an agent does (what it sent meanwhile is lost: a sim phone has no outbox).
  for (const [i, p] of phones.entries())
    p.onDrop = () =>
      void connectRetrying(p, i + 1, ports, opts, 60_000).catch((err: Error) => say(`  ${p.id} not connected again: ${err.message}`));
  return phones;
}

/** How the phones speak to a broker: what the agent is told for it (broker.protocolVersion, subscribeQos, publishQos, retain). */
interface PhoneLink {
  protocolVersion: 4 | 5;
  subscribeQos: 0 | 1;
  publishQos: 0 | 1;
  retain: boolean;
}

/** A running broker set-up: where phones connect, how server instances are started on it, its processes. */
interface BrokerSetup {
  ports: number[];
  link: PhoneLink;
  /** The arguments that put server instance k (0-based) on this broker. */
  serverArgs(k: number): string[];
  pids: number[];
  /** NATS: the nodes' closed connections (each keeps its last 10,000), counted by the reason the node gives. */
  closedReasons?(): Promise<string>;
  close(): Promise<void>;
}

async function startBroker(kind: 'mosquitto' | 'nats', root: string, confDir: string): Promise<BrokerSetup> {
  if (kind === 'mosquitto') {
    const broker = await startMosquitto({
      extraConfig: ['allow_anonymous false', `password_file ${confDir}/passwd`, `acl_file ${confDir}/acl`],
    });
    return {
      ports: [broker.port],
      link: {
        protocolVersion: 5,
        subscribeQos: subscribeQos('mosquitto'),
        publishQos: publishQos('mosquitto'),
        retain: retainReports('mosquitto'),
      },
      serverArgs: (k) => ['--broker', broker.url, '--mqtt-version', '5', '--share-group', 'e911-server', '--instance', `s${k + 1}`],
      pids: [findChild('mosquitto')],
      close: () => broker.close(),
    };
  }
  // NATS resolves an include from the node's configuration folder, a sibling of root in the temp folder.
  const include = `../${path.basename(root)}/${path.relative(root, confDir)}/nats-auth.conf`;
  const cluster = await startNatsCluster({
    nodes: NATS_NODES,
    extraConfig: [`include "${include}"`],
    ...(NATS_AUTH_TIMEOUT ? { mqttConfig: [`authorization { timeout: ${NATS_AUTH_TIMEOUT} }`] } : {}),
    startTimeoutMs: 120_000,
  });
  const mqtt = cluster.nodes.map((n) => n.mqttUrl);
  const nats = cluster.nodes.map((n) => n.nativeUrl!);
  // Instance k starts on node k: the instances' links spread over the nodes.
  const from = <T>(xs: T[], k: number) => [...xs.slice(k % xs.length), ...xs.slice(0, k % xs.length)];
  return {
    ports: cluster.nodes.map((n) => n.mqttPort),
    link: { protocolVersion: 4, subscribeQos: subscribeQos('nats'), publishQos: publishQos('nats'), retain: retainReports('nats') },
    serverArgs: (k) => [
      '--broker',
      from(mqtt, k).join(','),
      '--nats',
      from(nats, k).join(','),
      '--mqtt-version',
      '4',
      '--instance',
      `s${k + 1}`,
    ],
    pids: cluster.nodes.map((n) => n.pid()!),
    closedReasons: async () => {
      const counts = new Map<string, number>();
      for (const c of await clusterConnections(cluster, 'state=closed'))
        counts.set(c.reason ?? '?', (counts.get(c.reason ?? '?') ?? 0) + 1);
      return [...counts].map(([r, n]) => `${r} ${n}`).join(', ');
    },
    close: () => cluster.close(),
  };
}

async function main(): Promise<void> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'e911-scalebench-'));
  const seedDir = path.join(root, 'seed');
  const confDir = path.join(root, 'broker');
  mkdirSync(seedDir);
  const pwSeed = `seed-${Math.random().toString(36).slice(2)}`;
  const children: ChildProcess[] = [];
  let broker: BrokerSetup | null = null;
  let workers: Workers | null = null;
  let eventPhones: SimPhone[] = [];
  const sink = await startEventSink();
  const results: Figures[] = [];
  let pgc: PgCluster | null = null;
  let setups = 0;
  // Each set-up on a fresh copy of the seeded store: what one issued would look applied to the next one's new phones.
  const freshDataDir = (from = seedDir) => {
    const dir = path.join(root, `data-${++setups}`);
    cpSync(from, dir, { recursive: true });
    return dir;
  };
  // Interrupted (Ctrl-C, a timeout): the brokers and the servers go too; workers leave with their IPC channel.
  const interrupted = (sig: NodeJS.Signals) => {
    for (const c of children) c.kill('SIGTERM');
    for (const name of ['mosquitto', 'nats-server']) spawnSync('pkill', ['-TERM', '-P', String(process.pid), '-x', name]);
    // Synchronous inside (pg_ctl stop): done before the exit.
    void pgc?.stop();
    rmSync(root, { recursive: true, force: true });
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', interrupted).once('SIGTERM', interrupted);
  try {
    let pgSeedUrl: string | null = null;
    if (INSTANCES.length > 0 && STORES.includes('postgres')) {
      pgc = await startPostgres({ durable: true });
      pgSeedUrl = await pgc.createDatabase();
    }
    const { token, publicKey } = await seed(seedDir, confDir, sink.sink.port, pwSeed, pgSeedUrl);

    // ---- Each broker and store, with 1, 2 and 3 instances; the phones stay connected across them.
    // For each set-up, fresh phones and a fresh copy of the store.
    for (const kind of INSTANCES.length > 0 ? (BROKERS as ('mosquitto' | 'nats')[]) : []) {
      for (const store of STORES) {
        const dataDir = freshDataDir();
        const pgUrl = store === 'postgres' ? await pgc!.createDatabase(new URL(pgSeedUrl!).pathname.slice(1)) : null;
        const storeArgs = pgUrl ? ['--store', pgUrl] : [];
        const progress = pgUrl ? pgProgress(pgUrl, PHONES) : sqliteProgress(dataDir, PHONES);
        const setup = `${kind}, ${store}`;
        broker = await startBroker(kind, root, confDir);
        const b = broker;
        // First, untimed: a fresh NATS node makes its MQTT streams for its first client (up to 30 s here), which a
        // running cluster has long done.
        eventPhones = await connectEventPhones(b.ports, b.link, pwSeed, publicKey);
        workers = new Workers();
        const connectMs = await workers.start(b.ports, b.link, pwSeed, publicKey, PHONES);
        say(
          `${setup}: ${PHONES} phones connected and subscribed (QoS ${b.link.subscribeQos}, publishing at QoS ${b.link.publishQos}${b.link.retain ? '' : ', not retained'}) in ${(connectMs / 1000).toFixed(1)} s ` +
            `over ${WORKERS} workers and ${b.ports.length} broker process${b.ports.length > 1 ? 'es' : ''}`,
        );
        let first = true;
        for (const n of INSTANCES) {
          const ports = await Promise.all(Array.from({ length: n }, () => freePort()));
          const mark = await workers.mark();
          const t0 = performance.now();
          const servers: ChildProcess[] = [];
          for (const [k, port] of ports.entries()) {
            const s = await startServer(['--data', dataDir, ...storeArgs, ...b.serverArgs(k)], port);
            servers.push(s);
            children.push(s);
          }
          if (first) {
            // The first start pushes version 1 to every phone.
            const all = await workers.appliedSince(mark, 1_800_000, progress);
            say(
              `${setup}, 1 instance: initial provisioning (start to all ${PHONES} applied v1) ${all ? `${(ms(t0) / 1000).toFixed(1)} s` : 'NOT within 30 min'}`,
            );
            first = false;
          }
          const cpu = { server: servers.map((s) => s.pid!), [kind]: b.pids, phones: workers.procs.map((p) => p.pid!) };
          const label = `${kind}-${store}-${n}-instance${n > 1 ? 's' : ''}`;
          const f = await measure(label, { token, httpPort: ports[0]!, phones: PHONES, progress, workers, eventPhones, sink }, cpu);
          const d = workers.dropped();
          if (d.drops > 0) say(`  ${label}: the broker has dropped ${d.drops} phone connections so far, ${d.reconnected} connected again`);
          if (b.closedReasons) say(`  ${label}: the nodes' last closed connections, by reason: ${await b.closedReasons()}`);
          results.push({ label, setup, phones: PHONES, connectS: connectMs / 1000, ...f });
          for (const s of servers) await stopProcess(s, 10_000);
        }
        for (const p of eventPhones) p.close();
        await workers.close();
        workers = null;
        await b.close();
        broker = null;
        await progress.close();
      }
    }

    // ---- The baseline: the embedded default (aedes in the server process, MQTT 3.1.1).
    if (EMBEDDED) {
      const dataDir = freshDataDir(embeddedSeedDir(seedDir));
      const mqttPort = await freePort();
      const httpPort = await freePort();
      const server = await startServer(['--data', dataDir, '--port', String(mqttPort)], httpPort);
      children.push(server);
      workers = new Workers();
      const cm = await workers.start([mqttPort], EMBEDDED_LINK, pwSeed, publicKey, EMBEDDED_PHONES);
      say(`embedded: ${EMBEDDED_PHONES} phones connected and subscribed in ${(cm / 1000).toFixed(1)} s over ${WORKERS} workers`);
      eventPhones = await connectEventPhones([mqttPort], EMBEDDED_LINK, pwSeed, publicKey);
      const cpu = { server: [server.pid!], phones: workers.procs.map((p) => p.pid!) };
      const progress = sqliteProgress(dataDir, EMBEDDED_PHONES);
      const f = await measure('embedded', { token, httpPort, phones: EMBEDDED_PHONES, progress, workers, eventPhones, sink }, cpu);
      await progress.close();
      results.push({ label: 'embedded', setup: 'embedded', phones: EMBEDDED_PHONES, connectS: cm / 1000, ...f });
    }
    summarize(results);
  } finally {
    for (const p of eventPhones) p.close();
    await workers?.close();
    for (const c of children) await stopProcess(c, 10_000);
    await broker?.close();
    await sink.sink.close();
    await pgc?.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

/** The pid of this process's child named `name` (the broker the Mosquitto helper spawned). */
function findChild(name: string): number {
  const out = spawnSync('pgrep', ['-P', String(process.pid), '-x', name], { encoding: 'utf8' });
  const pid = Number(out.stdout.trim().split('\n')[0]);
  if (!pid) throw new ScaleBenchError(`no child process ${name}`);
  return pid;
}

function summarize(results: Figures[]): void {
  const base = results.find((r) => r.label === 'embedded');
  const b = (f: (r: Figures) => number) => (base ? f(base) : Number.NaN);
  const baseNote = base && base.phones !== PHONES ? ` (the baseline with ${base.phones} of the phones)` : '';
  say(
    `\nload average ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}; baseline: the embedded default, same run${baseNote}`,
  );
  for (const r of results.filter((x) => x !== base)) {
    const k = r.label;
    if (results.find((x) => x.setup === r.setup) === r)
      report(
        `${PHONES} phones connected and subscribed, ${r.setup}`,
        r.connectS,
        's',
        b((x) => x.connectS),
        '-',
      );
    report(
      `location change to ${PHONES} applied, ${k} (median of ${ROUNDS})`,
      med(r.pushS),
      's',
      b((x) => med(x.pushS)),
      '-',
    );
    report(
      `911 at ${EVENT_RATE}/s to 2 emails, p50, ${k}`,
      r.p50,
      'ms',
      b((x) => x.p50),
      '-',
    );
    report(
      `911 at ${EVENT_RATE}/s to 2 emails, p99, ${k}`,
      r.p99,
      'ms',
      b((x) => x.p99),
      '<= 2000 ms',
    );
    if (r.missing > 0) say(`  ${k}: ${r.missing} events not accepted within 60 s`);
  }
}

await main();

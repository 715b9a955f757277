// The provisioning server's composition root: builds every part, passes
// collaborators in, starts them in order and stops them in reverse. One
// ServerApp is one server process; several may share a database file (one
// host) and an external broker (shared subscriptions).
// Over 400 lines: the wiring of every part in one place, read top to bottom in start order.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../common/atomic-file.js';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { named } from '../common/log.js';
import type { Repo } from './db/repo.js';
import { openRepo } from './db/store.js';
import { isTransientConflict } from './db/sql.js';
import { DEFAULT_ACCOUNT } from './db/scope.js';
import { ProvisioningServer } from './server.js';
import { Pusher, repoDesiredStore } from './pusher.js';
import { Notifier, type RetryPolicy } from './notify/notifier.js';
import { HttpSmsChannel, SmtpChannel, WebhookChannel } from './notify/channels.js';
import { TargetPolicy } from './notify/targets.js';
import { SipCallChannel, deskCallVoiceOptions, type DeskCallSip } from './notify/call.js';
import { EspeakSpeech } from './notify/speech.js';
import { createPjsipVoiceStack } from '../../hal/voice/pjsip/index.js';
import { PhoneIntake } from './intake.js';
import { AdminService } from './service.js';
import { RecordsService } from './records.js';
import { BulkService, type CsvLimits } from './bulk.js';
import { JobRunner } from './jobs.js';
import { Bus } from './bus.js';
import { buildApi } from './http/api.js';
import type { AccountsAdmin } from './http/deps.js';
import { ConflictError, NotFoundError } from './errors.js';
import { InFlight } from './in-flight.js';
import { startEmbeddedBroker, type EmbeddedBroker, type EmbeddedTlsListener } from './embedded-broker.js';
import {
  hashPassword,
  hashPasswordBcrypt,
  isPhoneDeviceId,
  serverMqttUser,
  mosquittoAcl,
  mosquittoConfSnippet,
  mosquittoPasswordFile,
  natsAuthorization,
  newPassword,
  verifyPassword,
  type MosquittoListener,
} from './broker-auth.js';
import { privateKeyFromText, type KeyPairText } from '../protocol/signing.js';
import type { SignedAddress } from '../protocol/messages.js';

/** broker.resendAfterMs when not set. */
export const DEFAULT_RESEND_AFTER_MS = 60_000;
/** Resends published at once. */
const RESEND_WINDOW = 256;
/** On NATS, connections that take turns with the retained locations pushes (ProvisioningServer.retainedLinks). */
const NATS_RETAINED_LINKS = 8;

export interface ServerAppOptions {
  dataDir: string;
  /**
   * Where the records are kept: a PostgreSQL URL (postgres://user:pass@host/db) for several
   * instances on several hosts; unset, `sqlite:DIR` or DIR: SQLite (server.db in the data folder by default).
   */
  store?: string;
  log: Logger;
  keyPair: KeyPairText;
  broker: {
    /** An external broker (Mosquitto); without it an embedded aedes broker starts. */
    url?: string;
    embeddedPort?: number;
    embeddedHost?: string;
    /**
     * A TLS listener on the embedded broker for phones across the network (the plain one
     * stays where embeddedHost puts it, loopback by default, for this server's own link).
     */
    embeddedTls?: EmbeddedTlsListener;
    /** The embedded broker refuses phones without server-issued credentials unless this is true. */
    allowAnonymous?: boolean;
    protocolVersion?: 4 | 5;
    /**
     * MQTT 5 shared-subscription group, for several server instances on one broker. A random
     * suffix kept in the database is appended: Mosquitto grants any `$share/...` subscription
     * whatever the ACL says, so a phone that could name the group could join it and take
     * (and lose) a share of every phone's events.
     */
    shareGroup?: string;
    /**
     * This instance's name: its broker user and client id are `e911-server-<instance>`.
     * Default: `<host>-<API port>` with a share group, else `main`.
     */
    instance?: string;
    /** The server's own MQTT login; by default the instance's, kept in the data folder. */
    username?: string;
    password?: string;
    /** For an mqtts:// broker: the CA of its certificate, and a client certificate if it asks (PEM). */
    tls?: { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer };
    /**
     * The broker is a NATS cluster (its MQTT listener at `url`, the other nodes' in `urls`):
     * MQTT 3.1.1 for what the server publishes, and the phones' reports through a NATS queue
     * group on the nodes' native ports (`servers`, nats://) instead of MQTT subscriptions.
     * The server logs in to NATS with its broker user (the authorization `broker-config --nats-auth` renders).
     */
    nats?: { servers: readonly string[]; queue?: string };
    /** Every MQTT URL of the broker's nodes (url first): the server's link fails over between them. */
    urls?: readonly string[];
    /**
     * A phone not heard from (status heartbeat, event, report) for this long is marked offline,
     * whatever its retained status says: a clustered broker does not publish the will of a
     * phone whose node died. Off by default (0); set it above the agents' heartbeat.
     */
    offlineAfterMs?: number;
    /**
     * An issued address that a phone online has not confirmed (applied) this long after it was
     * issued is sent again, then after twice as long each time, up to 64 times this. A push can
     * be lost on a live connection (QoS 0 on NATS; an instance stopped between recording and
     * publishing it), and an agent without a heartbeat says nothing that would make the server
     * look again. Default 60 s; 0 turns it off.
     */
    resendAfterMs?: number;
  };
  /** null: no HTTP API (tests of the MQTT side, the push CLI). */
  http: {
    port: number;
    host?: string;
    secureCookies?: boolean;
    /** HTTPS with this key and certificate (PEM). */
    tls?: { key: string | Buffer; cert: string | Buffer };
    /** Portal session lifetime (default 12 h absolute, 30 min idle). */
    session?: { absoluteMs?: number; idleMs?: number };
    /** Other origins allowed to make cookie-authenticated changes (a proxy's public URL). */
    allowedOrigins?: readonly string[];
    /** Failed logins per client address per window (default 10 per 15 min). */
    loginLimit?: { max: number; windowMs: number };
    /** How often an open event stream checks its token is still valid (default 15 s). */
    streamCheckMs?: number;
    /**
     * Adds routes beside the API before it listens (the admin portal's pages, the HELD
     * endpoint). Every route needs a token unless it carries PUBLIC_ROUTE (http/public.ts).
     */
    extend?: (app: Awaited<ReturnType<typeof buildApi>>, server: ServerApp) => Promise<void> | void;
  } | null;
  notify?: {
    retry?: RetryPolicy;
    concurrency?: number;
    /**
     * Host names and networks (CIDR) that SMS and webhook POSTs may reach although they are
     * loopback, link-local or private (see notify/targets.ts); by default those are refused.
     */
    allowTargets?: readonly string[];
    /** The longest one send may take before it counts as failed and is retried (default 30 s). */
    sendTimeoutMs?: number;
    /**
     * How long a claimed notification stays this instance's before another may take it over
     * (default 60 s; keep it above sendTimeoutMs): how late a send cut by an instance's death goes out.
     */
    leaseMs?: number;
    /**
     * Where the voice stack for security-desk calls listens (started on the first call): SIP over
     * UDP and TCP on host:port (default 0.0.0.0:5062), RTP from rtpPort (default 4100).
     */
    sip?: DeskCallSip;
    /** The speech synthesizer (default espeak-ng from PATH) and its speed (default 145 words a minute). */
    speech?: { command?: string; wordsPerMinute?: number };
  };
  pushWindow?: number;
  csvLimits?: CsvLimits;
  sqliteBinding?: string;
  /** The clock the database records time by (sessions expire by it); tests move it. */
  now?: () => Date;
}

/** The default instance name: unique per host and API port, in the syntax a broker user allows. */
export function defaultInstance(shareGroup: string | undefined, httpPort: number | undefined): string {
  if (!shareGroup) return 'main';
  return (
    `${os.hostname()}-${httpPort ?? process.pid}`
      .replace(/[^A-Za-z0-9._-]/g, '-')
      .replace(/^[^A-Za-z0-9]+/, '')
      .slice(0, 41) || 'main'
  );
}

/**
 * One server instance's MQTT login, created once and kept 0600 in the data folder
 * (`mqtt-server-<instance>.json`); its hash is registered in the database so that
 * `broker-config` renders every instance's user.
 */
export async function loadOrCreateServerCredentials(
  dataDir: string,
  instance: string,
  repo: Repo,
): Promise<{ username: string; password: string }> {
  const creds = serverCredentialsFile(dataDir, instance);
  await registerServerCredentials(repo, creds);
  return creds;
}

/** The instance's login from its file in the data folder, made on first use. */
function serverCredentialsFile(dataDir: string, instance: string): { username: string; password: string } {
  const username = serverMqttUser(instance);
  const file = path.join(dataDir, `mqtt-${username}.json`);
  let creds: { username: string; password: string };
  if (existsSync(file)) creds = JSON.parse(readFileSync(file, 'utf8')) as { username: string; password: string };
  else {
    creds = { username, password: newPassword() };
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    writeFileAtomic(file, `${JSON.stringify(creds, null, 2)}\n`, 0o600);
  }
  return creds;
}

/** Registers the login's hash in the store (once), so that `broker-config` renders it. */
async function registerServerCredentials(repo: Repo, creds: { username: string; password: string }): Promise<void> {
  // Registered with both hashes (Mosquitto's, NATS's); one registered before NATS support gets its bcrypt now.
  const known = (await repo.serverBrokerUsers()).find((u) => u.username === creds.username);
  if (!known || known.bcrypt === null)
    await repo.setServerBrokerUser(creds.username, hashPassword(creds.password), hashPasswordBcrypt(creds.password));
}

/** A new API token: 256 random bits. */
export function newApiToken(): string {
  return `e911_${randomBytes(32).toString('base64url')}`;
}

/** The instance name of the push command's broker user (`e911-server-cli`): not a running server's, whose session it would take over. */
export const CLI_INSTANCE = 'cli';

/** The shared-subscription group every instance of this database uses: the name given plus a secret suffix. */
export async function shareGroupName(repo: Repo, base: string): Promise<string> {
  return `${base}-${await repo.sharedSecret('share-group-suffix', () => randomBytes(12).toString('hex'))}`;
}

export class ServerApp {
  readonly repo: Repo;
  readonly bus: Bus;
  readonly link: ProvisioningServer;
  readonly pusher: Pusher;
  readonly notifier: Notifier;
  readonly jobs: JobRunner;
  readonly bulk: BulkService;
  readonly service: AdminService;
  readonly intake: PhoneIntake;
  private broker: EmbeddedBroker | null = null;
  private api: Awaited<ReturnType<typeof buildApi>> | null = null;
  private readonly creds: { username: string; password: string };
  /** This instance's login registered in the store (begun at construction: broker-config renders it before start). */
  private readonly registered: Promise<void>;
  private brokerUrlValue: string | null = null;
  private httpUrlValue: string | null = null;
  private silenceTimer: NodeJS.Timeout | null = null;
  private resendTimer: NodeJS.Timeout | null = null;
  /** The sweeps the timers started (silent phones, resends): stop() waits for them. */
  private readonly sweeps = new InFlight();

  constructor(private readonly opts: ServerAppOptions) {
    const { log, dataDir } = opts;
    this.repo = openRepo({
      dataDir,
      ...(opts.store ? { store: opts.store } : {}),
      log: named(log, 'store'),
      ...(opts.sqliteBinding ? { nativeBinding: opts.sqliteBinding } : {}),
      ...(opts.now ? { now: opts.now } : {}),
    });
    this.bus = new Bus(() => this.repo.currentAccount());
    const external = opts.broker.url !== undefined;
    const instance = opts.broker.instance ?? defaultInstance(opts.broker.shareGroup, opts.http?.port);
    this.creds =
      opts.broker.username !== undefined
        ? { username: opts.broker.username, password: opts.broker.password ?? '' }
        : external
          ? serverCredentialsFile(dataDir, instance)
          : // The embedded broker lives and dies with this process: a fresh secret each run.
            { username: serverMqttUser(instance), password: randomBytes(24).toString('base64url') };
    this.registered = external && opts.broker.username === undefined ? registerServerCredentials(this.repo, this.creds) : Promise.resolve();
    // Awaited by start() and brokerConfig(), which report a failure: not lost meanwhile.
    this.registered.catch(() => undefined);
    const nats = external && opts.broker.nats ? opts.broker.nats : undefined;
    // NATS speaks MQTT 3.1.1 only.
    const protocolVersion = nats ? 4 : (opts.broker.protocolVersion ?? (external ? 5 : 4));
    this.link = new ProvisioningServer({
      // The embedded broker's URL is passed to start() once it listens.
      brokerUrl: opts.broker.url ?? 'mqtt://127.0.0.1',
      privateKey: privateKeyFromText(opts.keyPair),
      log: named(log, 'mqtt'),
      protocolVersion,
      // The client id is the user name (the broker binds them): stable per instance, so the
      // broker keeps its persistent session (and queues its share of events) across a restart.
      clientId: this.creds.username,
      username: this.creds.username,
      password: this.creds.password,
      desired: repoDesiredStore(this.repo),
      ...(opts.broker.tls ? { tls: opts.broker.tls } : {}),
      ...(opts.broker.urls ? { brokerUrls: opts.broker.urls } : {}),
      ...(nats
        ? {
            retainedLinks: NATS_RETAINED_LINKS,
            nats: {
              servers: nats.servers,
              // Phones may not subscribe to others' events at all on NATS, so the group's name need not be secret.
              queue: nats.queue ?? 'e911-servers',
              user: this.creds.username,
              pass: this.creds.password,
              name: this.creds.username,
            },
          }
        : {}),
    });
    this.pusher = new Pusher({
      repo: this.repo,
      link: this.link,
      log: named(log, 'push'),
      ...(opts.pushWindow ? { window: opts.pushWindow } : {}),
      onIssued: (deviceId) => this.bus.emit('phone', { deviceId, change: 'issued' }),
    });
    const targets = new TargetPolicy({ allow: opts.notify?.allowTargets ?? [] });
    this.notifier = new Notifier({
      repo: this.repo,
      log: named(log, 'notify'),
      email: new SmtpChannel(),
      sms: new HttpSmsChannel(targets),
      webhook: new WebhookChannel(targets),
      call: new SipCallChannel({
        log: named(log, 'desk-call'),
        speech: new EspeakSpeech({ dir: path.join(dataDir, 'speech'), ...opts.notify?.speech }),
        voice: () => createPjsipVoiceStack({ logger: named(log, 'voice') }),
        start: deskCallVoiceOptions(opts.notify?.sip),
      }),
      ...(opts.notify?.retry ? { retry: opts.notify.retry } : {}),
      ...(opts.notify?.concurrency ? { concurrency: opts.notify.concurrency } : {}),
      ...(opts.notify?.sendTimeoutMs ? { sendTimeoutMs: opts.notify.sendTimeoutMs } : {}),
      ...(opts.notify?.leaseMs ? { leaseMs: opts.notify.leaseMs } : {}),
      // A restart of this instance takes back at once the sends its earlier run left unfinished.
      instance,
      onUpdate: (n) => this.bus.emit('notification', n),
    });
    const handlers = {};
    this.jobs = new JobRunner({ repo: this.repo, log: named(log, 'jobs'), bus: this.bus, handlers });
    this.bulk = new BulkService({
      repo: this.repo,
      jobs: this.jobs,
      log: named(log, 'bulk'),
      ...(opts.csvLimits ? { limits: opts.csvLimits } : {}),
    });
    Object.assign(handlers, this.bulk.handlers());
    this.service = new AdminService({
      repo: this.repo,
      pusher: this.pusher,
      bus: this.bus,
      log: named(log, 'admin'),
      targets,
      ...(nats ? { nats: true } : {}),
    });
    this.intake = new PhoneIntake({
      repo: this.repo,
      link: this.link,
      pusher: this.pusher,
      notifier: this.notifier,
      bus: this.bus,
      log: named(log, 'intake'),
      refreshLocationsOnConnect: !external,
    });
  }

  /** The embedded broker's TLS listener (mqtts://), if it has one. */
  get brokerTlsUrl(): string | null {
    return this.broker?.tlsUrl ?? null;
  }

  get brokerUrl(): string {
    if (!this.brokerUrlValue) throw new Error('server not started');
    return this.brokerUrlValue;
  }

  /** Every route the admin HTTP server answers (method, URL pattern, whether it needs no token). */
  routes(): readonly { method: string; url: string; public: boolean }[] {
    if (!this.api) throw new Error('HTTP API not started');
    return this.api.routeTable;
  }

  get httpUrl(): string {
    if (!this.httpUrlValue) throw new Error('HTTP API not started');
    return this.httpUrlValue;
  }

  async start(): Promise<void> {
    const { opts } = this;
    const log = opts.log;
    if (!opts.broker.url) {
      const brokerLog = named(log, 'broker');
      this.broker = await startEmbeddedBroker(
        opts.broker.embeddedPort ?? 1883,
        opts.broker.embeddedHost ?? '127.0.0.1',
        {
          authenticate: async (user, password) => {
            if (user === this.creds.username) return password === this.creds.password ? 'server' : null;
            // A server user name is never a phone. Other registered server users (the push
            // command's, `e911-server-cli`) log in with the password kept in the data folder.
            if (!isPhoneDeviceId(user)) {
              const registered = (await this.repo.serverBrokerUsers()).find((u) => u.username === user);
              return registered && (await verifyPassword(password, registered.hash)) ? 'server' : null;
            }
            if (opts.broker.allowAnonymous) return 'phone';
            const hash = await this.repo.deviceCredential(user);
            return hash && (await verifyPassword(password, hash)) ? 'phone' : null;
          },
          refused: (what, user, detail) => brokerLog.warn({ what, user, detail }, 'broker refused a client'),
        },
        opts.broker.embeddedTls,
      );
      this.brokerUrlValue = this.broker.url;
      log.info({ url: this.broker.url, tls: this.broker.tlsUrl }, 'embedded broker listening');
    } else this.brokerUrlValue = opts.broker.url;

    // What the link needs from the store: this instance's login registered, the share group's secret suffix.
    await this.registered;
    if (opts.broker.shareGroup && !opts.broker.nats) this.link.setShareGroup(await shareGroupName(this.repo, opts.broker.shareGroup));
    this.intake.attach();
    await this.link.start(this.brokerUrlValue);
    await this.notifier.start();
    await this.jobs.start();
    this.startSilenceSweep();
    this.startResendSweep();
    if (opts.http) {
      this.api = await buildApi({
        service: this.service,
        records: new RecordsService({ repo: this.repo, notifier: this.notifier }),
        bulk: this.bulk,
        bus: this.bus,
        inAccount: (accountId, fn) => this.repo.inAccount(accountId, fn),
        accounts: this.accountsAdmin(),
        log: named(log, 'http'),
        mqttConnected: () => this.link.connected,
        brokerConfig: () => this.brokerConfig(),
        ...(opts.http.secureCookies ? { secureCookies: true } : {}),
        ...(opts.http.tls ? { tls: opts.http.tls } : {}),
        ...(opts.http.session ? { session: opts.http.session } : {}),
        ...(opts.http.allowedOrigins ? { allowedOrigins: opts.http.allowedOrigins } : {}),
        ...(opts.http.loginLimit ? { loginLimit: opts.http.loginLimit } : {}),
        ...(opts.http.streamCheckMs ? { streamCheckMs: opts.http.streamCheckMs } : {}),
      });
      await opts.http.extend?.(this.api, this);
      const host = opts.http.host ?? '127.0.0.1';
      await this.api.listen({ port: opts.http.port, host });
      const addr = this.api.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : opts.http.port;
      this.httpUrlValue = `${opts.http.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
      log.info({ url: this.httpUrlValue }, 'admin API listening');
    }
    // Whatever changed while the server was down goes out now (unchanged phones cost a hash).
    void this.pusher.scheduleAll();
  }

  /**
   * Marks offline the phones not heard from within offlineAfterMs. Every instance sweeps the
   * shared database; the update is one statement, so two sweeps at once change each phone once.
   */
  async sweepSilent(now = Date.now()): Promise<string[]> {
    const after = this.opts.broker.offlineAfterMs ?? 0;
    if (after <= 0) return [];
    await this.intake.flush();
    const ids = await this.repo.markSilentOffline(new Date(now - after).toISOString());
    const accounts = await this.repo.accountsOfDevices(ids);
    for (const deviceId of ids)
      await this.repo.inAccount(accounts.get(deviceId) ?? DEFAULT_ACCOUNT, async () =>
        this.bus.emit('phone', { deviceId, change: 'status' }),
      );
    if (ids.length > 0) this.opts.log.info({ phones: ids.length, afterMs: after }, 'phones silent too long marked offline');
    return ids;
  }

  private startSilenceSweep(): void {
    const after = this.opts.broker.offlineAfterMs ?? 0;
    if (after <= 0) return;
    // A tenth of the timeout: a phone is marked at most 10% late.
    this.silenceTimer = setInterval(
      () => {
        this.sweeps.add(this.sweepSilent().catch((err: unknown) => this.opts.log.error({ err }, 'silent-phone sweep failed')));
      },
      Math.max(100, Math.floor(after / 10)),
    );
    this.silenceTimer.unref();
  }

  /**
   * Sends again the addresses that phones online have not confirmed, when due (resendAfterMs;
   * Repo.claimResends decides which, once across instances). A row whose document is not of its
   * version (marked for a re-issue above what a phone holds, and not re-issued yet) is re-issued
   * instead. Returns how many were sent.
   */
  async resendUnconfirmed(now = Date.now()): Promise<number> {
    const after = this.opts.broker.resendAfterMs ?? DEFAULT_RESEND_AFTER_MS;
    if (after <= 0) return 0;
    // The reports in hand first: a phone that has just applied is not sent its address again.
    await this.intake.flush();
    const due = await this.repo.claimResends(now, after);
    const reissue: string[] = [];
    const send: { deviceId: string; signed: string }[] = [];
    for (const d of due) {
      let version: unknown;
      try {
        version = (JSON.parse(d.signed) as SignedAddress).doc?.version;
      } catch {
        version = null;
      }
      if (version === d.version) send.push(d);
      else reissue.push(d.deviceId);
    }
    let sent = 0;
    for (let i = 0; i < send.length; i += RESEND_WINDOW) {
      await Promise.all(
        send.slice(i, i + RESEND_WINDOW).map(({ deviceId, signed }) =>
          this.link.publishRaw(deviceId, signed).then(
            () => sent++,
            (err: Error) => this.opts.log.warn({ err: err.message, deviceId }, 'address not sent again'),
          ),
        ),
      );
    }
    if (reissue.length > 0) void this.pusher.schedule(reissue);
    if (due.length > 0)
      this.opts.log.info({ sent, reissued: reissue.length, afterMs: after }, 'addresses not confirmed by phones online sent again');
    return sent;
  }

  private startResendSweep(): void {
    const after = this.opts.broker.resendAfterMs ?? DEFAULT_RESEND_AFTER_MS;
    if (after <= 0) return;
    // A quarter of the wait: a resend is at most 25% late.
    let running = false;
    this.resendTimer = setInterval(
      () => {
        // One at a time: a sweep with many phones to send may outlast the interval.
        if (running) return;
        running = true;
        this.sweeps.add(
          this.resendUnconfirmed()
            .catch((err: unknown) =>
              // Its claim can meet another instance's writes to the same rows: the next sweep claims them.
              isTransientConflict(err)
                ? this.opts.log.warn({ err: (err as Error).message }, 'resend sweep lost a lock conflict: the next one takes its phones')
                : this.opts.log.error({ err }, 'resend sweep failed'),
            )
            .finally(() => {
              running = false;
            }),
        );
      },
      Math.max(100, Math.floor(after / 4)),
    );
    this.resendTimer.unref();
  }

  /**
   * Stops in the order work flows, so that nothing reaches the store after it closed. First no
   * new input: the sweeps (silent phones, resends), the HTTP listener (requests under way finish), the phones'
   * reports (later ones are dropped; the phones send them again to the next instance). Then the
   * work already taken, each part after those that feed it: jobs and report batches queue
   * pushes. Then the link, which takes events until it closes (a 911 event is stored and
   * acknowledged, not left for the phone's resend), then the notifier their notifications wake,
   * the broker, the store. (Waiting for the pusher while reports still came in let their checks
   * and pushes start after the store closed: thousands of "Cannot use a pool after calling end"
   * in the scale bench.)
   */
  async stop(): Promise<void> {
    for (const t of [this.silenceTimer, this.resendTimer]) if (t) clearInterval(t);
    this.silenceTimer = null;
    this.resendTimer = null;
    await this.sweeps.settled();
    await this.api?.close();
    this.api = null;
    await this.link.stopIntake();
    await this.jobs.stop();
    await this.intake.stop();
    await this.pusher.stop();
    await this.link.stop();
    await this.notifier.stop();
    await this.broker?.close();
    this.broker = null;
    await this.repo.close();
  }

  /**
   * A new API token (shown once; only its hash is kept) of the account (created if new).
   * Without an account: the default account's, a provider token (as `e911-server token create`
   * makes), which may also create accounts.
   */
  async createToken(name: string, opts: { account?: string; provider?: boolean } = {}): Promise<string> {
    const account = opts.account ?? DEFAULT_ACCOUNT;
    if (!(await this.repo.accountExists(account))) await this.repo.createAccount(account, '');
    const token = newApiToken();
    await this.repo.inAccount(account, async () => {
      await this.repo.createToken(name, token, { provider: opts.provider ?? opts.account === undefined });
      await this.repo.audit('local', 'token.create', 'token', null, { name });
    });
    return token;
  }

  /** What a provider's routes do to accounts; each change is audited in the account it made. */
  private accountsAdmin(): AccountsAdmin {
    const { repo } = this;
    const summary = async (id: string) => (await repo.accounts()).find((a) => a.id === id)!;
    return {
      list: () => repo.accounts(),
      create: async (actor, id, name) => {
        if (!(await repo.createAccount(id, name))) throw new ConflictError(`account ${id} exists`);
        await repo.inAccount(id, () => repo.audit(actor, 'account.create', 'account', id, { name }));
        return summary(id);
      },
      mintToken: async (actor, accountId, name) => {
        if (!(await repo.accountExists(accountId))) throw new NotFoundError(`account ${accountId}`);
        const token = newApiToken();
        await repo.inAccount(accountId, async () => {
          await repo.createToken(name, token);
          await repo.audit(actor, 'token.create', 'token', null, { name });
        });
        return { token };
      },
      show: async (actor, sessionId, ownAccountId, accountId) => {
        if (!(await repo.accountExists(accountId))) throw new NotFoundError(`account ${accountId}`);
        await repo.showAccount(sessionId, accountId === ownAccountId ? null : accountId);
        // In the account shown: its admins can see that the provider looked in.
        await repo.inAccount(accountId, () => repo.audit(actor, 'session.show-account', 'account', accountId, {}));
        return summary(accountId);
      },
    };
  }

  /** This instance's broker user name (also its client id). */
  get brokerUser(): string {
    return this.creds.username;
  }

  /** Mosquitto files: every phone with credentials, every server instance's user, the ACL. */
  async brokerConfig(
    dir = '/etc/mosquitto/e911',
    listeners?: readonly MosquittoListener[],
  ): Promise<{ passwd: string; acl: string; conf: string }> {
    await this.registered;
    return renderBrokerConfig(this.repo, dir, listeners);
  }
}

/**
 * NATS authorization (an `include` for every node's configuration): each server instance's
 * user and each phone's, with their permissions. Phones issued credentials before NATS
 * support (no bcrypt hash) or whose id has a dot are left out and listed.
 */
export async function renderNatsConfig(repo: Repo): Promise<{ conf: string; skipped: { deviceId: string; reason: string }[] }> {
  const skipped: { deviceId: string; reason: string }[] = [];
  const phones: { deviceId: string; bcrypt: string }[] = [];
  for (const c of await repo.deviceCredentials()) {
    if (c.bcrypt === null) skipped.push({ deviceId: c.deviceId, reason: 'credentials issued before NATS support: issue them again' });
    else phones.push({ deviceId: c.deviceId, bcrypt: c.bcrypt });
  }
  const servers = (await repo.serverBrokerUsers()).filter((u): u is typeof u & { bcrypt: string } => u.bcrypt !== null);
  const r = natsAuthorization(
    servers.map((u) => ({ user: u.username, bcrypt: u.bcrypt })),
    phones,
  );
  for (const deviceId of r.skipped) skipped.push({ deviceId, reason: 'a dot in the device id cannot be a NATS subject token' });
  return { conf: r.conf, skipped };
}

export async function renderBrokerConfig(
  repo: Repo,
  dir: string,
  listeners?: readonly MosquittoListener[],
): Promise<{ passwd: string; acl: string; conf: string }> {
  const servers = await repo.serverBrokerUsers();
  const entries = [
    ...servers.map((s) => ({ user: s.username, hash: s.hash })),
    ...(await repo.deviceCredentials()).map((c) => ({ user: c.deviceId, hash: c.hash })),
  ];
  return {
    passwd: mosquittoPasswordFile(entries),
    acl: mosquittoAcl(servers.map((s) => s.username)),
    conf: mosquittoConfSnippet(dir, listeners),
  };
}

// The composition root: the one place that builds every part of the agent and
// passes collaborators in. Start runs in order; stop runs in reverse.
//
// 911 needs no store: the emergency path, the keypad, the control socket and
// systemd's notifier are built first (the core). When the store cannot be opened
// (permission, full disk, busy: typed StoreErrors), the core runs alone, events
// are held in memory, and the store is tried again with backoff; once it opens,
// the held events are written and the rest of the agent starts.
// Over 400 lines: the one composition root builds and starts every part, by design.
import { readFileSync } from 'node:fs';
import type { Logger } from '../provisioning/common/log.js';
import { named } from '../provisioning/common/log.js';
import type { AgentConfig } from './config.js';
import { hostPaths, type HostPaths } from '../hal/host.js';
import { systemTimeZone } from '../hal/timezone.js';
import { Store } from './store/store.js';
import { AddressBook } from './address/address-book.js';
import { eventFactory, procPhoneClock, type EventFactory } from './events/events.js';
import { OutboxDrainer } from './link/outbox-drainer.js';
import { MqttLink, type InboundHandlers } from './link/link.js';
import { ControlServer } from './control/control-server.js';
import { systemdNotifier, type Notifier } from './systemd.js';
import { ControlError, StoreError, StoreTooNewError } from './errors.js';
import { publicKeyFromText } from '../provisioning/protocol/signing.js';
import type { AddressStatePayload, EventPayload, EventType, TopicKind } from '../provisioning/protocol/messages.js';
import type { StoredAddress } from './store/store.js';
import { EmergencyService } from './emergency/service.js';
import { StoreEmergencyJournal } from './events/emergency-journal.js';
import { BeginFile } from './events/begin-file.js';
import type { VoiceStack } from '../hal/voice/types.js';
import { createPjsipVoiceStack, pjsipAvailability, sharedFileMapper } from '../hal/voice/pjsip/index.js';
import { FrontPanel, type FrontPanelStore } from './handset/front-panel.js';
import type { NoticeState } from './handset/notice.js';
import { HeldEvents } from './events/held-events.js';
import { HostNetworkProbe, serviceNetworkProbe } from './diagnostics/probes.js';
import { networkSite } from './emergency/call-site.js';
import type { Handset } from '../hal/handset.js';
import type { NetworkMonitor } from '../hal/net/types.js';
import { LocationParts } from './location/parts.js';
import type { LocationService } from './location/service.js';
import { registerLocationControl } from './location/control.js';
import { guardedStore } from './store/guarded-store.js';
import { WorkerLocationsVerifier, type WorkerScript } from './location/locations-verifier.js';
import { locationsWorkerScript } from './location/locations-worker-script.js';
import { checkpointWorkerScript } from './store/checkpoint-worker-script.js';
import type { CheckpointWorkerScript } from './store/wal-checkpointer.js';
import type { InventoryWorkerScript } from '../hal/inventory/inventory.js';
import { inventoryWorkerScript } from '../hal/inventory/inventory-worker-script.js';

export const AGENT_VERSION = '0.1.0';

export interface AgentDeps {
  config: AgentConfig;
  log: Logger;
  host: HostPaths;
  env: NodeJS.ProcessEnv;
  now?: () => Date;
  /** Path to better_sqlite3.node, handed in by the bundled executable. */
  sqliteBinding?: string;
  /** The voice stack to use (tests: MemoryVoiceStack; null: none). Default: the PJSIP addon if it loads. */
  voice?: VoiceStack | null;
  /** Path to e911_voice.node, handed in by the bundled executable. */
  voiceAddonPath?: string;
  /** A network monitor to use instead of the configured backend (tests). */
  network?: NetworkMonitor;
  /** A handset to use instead of the configured backend (tests, the pty simulator). */
  handset?: Handset | null;
  /** Where the locations worker's code is (tests running from source point at dist/). Default: beside the agent's code. */
  locationsWorker?: WorkerScript;
  /** Where the store's checkpoint worker's code is (tests running from source point at dist/). Default: beside the agent's code. */
  checkpointWorker?: CheckpointWorkerScript;
  /** How the inventory worker gets systeminformation. Default: node_modules (the bundle replaces the default). */
  inventoryWorker?: InventoryWorkerScript;
}

/** What 911 needs, built and started first, with or without the store. */
interface Core {
  newEvent: EventFactory;
  journal: StoreEmergencyJournal;
  /** The emergency event's first write before the INVITE (beside the store's file). */
  beginFile: BeginFile;
  emergency: EmergencyService;
  front: FrontPanel;
  control: ControlServer;
  notifier: Notifier;
  started: { emergency: boolean; front: boolean; control: boolean };
}

/** The parts that need the store, built once it opens. */
interface Parts {
  store: Store;
  addressBook: AddressBook;
  drainer: OutboxDrainer;
  link: MqttLink;
  location: LocationParts;
  /** The worker thread that verifies locations pushes off the main thread. */
  locationsVerifier: WorkerLocationsVerifier;
}

const REJECT_REPORT_INTERVAL_MS = 60_000;
const SUPPRESS_KEY = 'emergency.suppressUntil';
/** The location parts wait for the link's first subscribe at most this long after ready. */
const LOCATION_START_CAP_MS = 1000;

/** Settles when p does or after ms, whichever is first; the timer never keeps the process up. */
function waitAtMost(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const cap = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
    timer.unref();
  });
  return Promise.race([p, cap]).finally(() => clearTimeout(timer));
}

export class Agent {
  private core: Core | null = null;
  private parts: Parts | null = null;
  /** The open store (set before the parts that use it are built). */
  private store: Store | null = null;
  /** Why the store could not be opened, while it cannot. */
  private storeFailure: StoreError | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryAttempts = 0;
  private readonly held: HeldEvents;
  /** The notice and last diagnostics while the store is away. */
  private readonly memoryFront: { notice: NoticeState | null; diagnostics: unknown } = { notice: null, diagnostics: null };
  private readonly lastRejectReport = new Map<string, number>();
  private suppressedRejects = 0;
  /** Parts not needed for 911 that failed to start, waiting for their next try. */
  private readonly partTimers = new Map<string, NodeJS.Timeout>();
  /** Parts that failed while running: attempts, and until when a repeat is only counted (backoff). */
  private readonly runningFailures = new Map<string, { attempt: number; quietUntil: number; unreported: number }>();
  /** The end of the window after a 911, not yet on disk (store away or full): written with the held events. */
  private pendingSuppressUntil: number | null = null;
  /** The latest address push not yet stored (its store write failed): tried again with backoff. */
  private pendingAddressPush: Buffer | string | null = null;
  /** The location parts' start, begun after ready: stop() lets it finish before stopping them. */
  private locationStarting: Promise<void> | null = null;

  constructor(private readonly deps: AgentDeps) {
    this.held = new HeldEvents(named(deps.log, 'store'));
  }

  /** Started, with its store (the whole agent). */
  get running(): boolean {
    return this.parts !== null;
  }

  /** Why the agent runs 911 only (its store cannot be opened), or null. */
  get storeUnavailable(): { code: string; message: string } | null {
    return this.storeFailure ? { code: this.storeFailure.code, message: this.storeFailure.message } : null;
  }

  async start(): Promise<void> {
    const t0 = performance.now();
    const core = this.buildCore();
    this.core = core;
    const store = this.openStore();
    if (store) {
      await this.startWithStore(store, t0);
      return;
    }
    // 911 first, whatever the store says: no address (the fallback route, flagged),
    // events in memory; then the keypad that dials it and e911ctl.
    await this.startCore(null);
    await this.startPart('control', () => this.startControl());
    core.notifier.ready('emergency calls only: the store is unavailable');
    this.deps.log.error(
      { code: this.storeFailure?.code, reason: this.storeFailure?.message },
      '*** STORE UNAVAILABLE: emergency calls work (no address: fallback route); the rest starts when the store opens ***',
    );
    this.scheduleRetry();
  }

  /** The emergency path, the keypad, e911ctl and systemd's notifier: nothing here needs the store. */
  private buildCore(): Core {
    const { config, log, env, host } = this.deps;
    const now = this.deps.now ?? (() => new Date());
    const newEvent = eventFactory(
      config.deviceId,
      now,
      procPhoneClock(host.proc, (p) => readFileSync(p, 'utf8')),
    );
    const serverKey = publicKeyFromText(config.serverPublicKey);
    // Opened before anything can begin an event: what a process that died left is read first.
    // Mapped through the voice addon when it loads (a line is then a copy, not a syscall); else written with write(2).
    const beginFile = new BeginFile(
      config.dataDir,
      named(log, 'emergency'),
      sharedFileMapper(this.deps.voiceAddonPath ? { addonPath: this.deps.voiceAddonPath } : {}),
    );
    beginFile.open();
    const journal = new StoreEmergencyJournal({
      file: beginFile,
      store: () => this.store,
      drain: () => this.parts?.drainer ?? null,
      newEvent,
      now,
      log: named(log, 'emergency'),
      onHeld: () => this.scheduleRetry(),
    });
    journal.prepare();
    const emergency = this.createEmergency(journal, newEvent);
    const control = new ControlServer(
      config.control.socketPath,
      named(log, 'control'),
      config.control.group ? { name: config.control.group, etcGroup: host.etcGroup } : undefined,
    );
    const front = new FrontPanel({
      handsetConfig: config.handset,
      diagnosticsConfig: config.diagnostics,
      deviceId: config.deviceId,
      agentVersion: AGENT_VERSION,
      serverKey,
      log,
      host,
      store: this.frontStore(),
      newEvent,
      wake: () => this.parts?.drainer.wake(),
      address: () => this.parts?.addressBook.current() ?? null,
      emergency: () => emergency,
      link: () => {
        const p = this.parts;
        if (p) return { ...p.link.state, backlog: p.store.outboxBacklog(), inFlight: p.drainer.inFlightCount() };
        return {
          state: 'stopped',
          url: null,
          connectedAt: null,
          connects: 0,
          lastError: 'the store is unavailable: the link waits for it',
          backlog: this.held.size,
          inFlight: 0,
        };
      },
      testNumber: config.emergency.numbers.find((n) => n.kind === 'test')?.digits ?? '933',
      onPartFailed: (part, err) => this.partFailed(part, err),
      ...(this.deps.now ? { now: this.deps.now } : {}),
      ...(this.deps.handset !== undefined ? { handset: this.deps.handset } : {}),
      // Diagnostics read the network service (built with the store) at check time.
      network: serviceNetworkProbe(() => this.parts?.location ?? null, new HostNetworkProbe(host)),
      inventoryWorker: this.deps.inventoryWorker ?? inventoryWorkerScript,
    });
    const notifier = systemdNotifier(env, named(log, 'systemd'), config.watchdogMs);
    const core: Core = {
      newEvent,
      journal,
      beginFile,
      emergency,
      front,
      control,
      notifier,
      started: { emergency: false, front: false, control: false },
    };
    this.registerControl(core);
    return core;
  }

  /** Starts what is not started yet of the core: emergency path, keypad, control socket. */
  private async startCore(address: StoredAddress | null): Promise<void> {
    const core = this.core!;
    if (!core.started.emergency) {
      await core.emergency.start(address);
      core.started.emergency = true;
    } else {
      core.emergency.setAddress(address);
    }
    if (!core.started.front) {
      await core.front.start();
      core.started.front = true;
    } else if (address) {
      core.front.addressChanged(address);
    }
  }

  private async startControl(): Promise<void> {
    const core = this.core!;
    if (core.started.control) return;
    await core.control.start();
    core.started.control = true;
  }

  /** Opens the store; a typed store error is remembered and null returned (the caller retries). */
  private openStore(): Store | null {
    const { config, log } = this.deps;
    const opts = {
      dataDir: config.dataDir,
      log: named(log, 'store'),
      ...(this.deps.now ? { now: this.deps.now } : {}),
      outboxMax: config.outbox.maxEvents,
      ...(this.deps.sqliteBinding ? { nativeBinding: this.deps.sqliteBinding } : {}),
      // WAL checkpoints off the main thread: none runs inside a write a dialed 911 would wait for.
      // Its script is looked up when a worker starts (the first write's checkpoint), not at start:
      // in the bundle it is a code string, kept out of the heap until then.
      checkpoints: { script: this.deps.checkpointWorker ?? checkpointWorkerScript },
    };
    try {
      this.store = new Store(opts);
      this.storeFailure = null;
      return this.store;
    } catch (err) {
      if (!(err instanceof StoreError)) throw err;
      if (err instanceof StoreTooNewError) {
        // Written by a newer agent (a downgrade): left as it is, and retrying will not change it.
        // This agent runs on a store in memory, so everything works but nothing survives a restart.
        log.error({ err, path: config.dataDir }, 'store written by a newer agent: kept untouched; running on a store in memory');
        this.store = new Store({ ...opts, memory: true });
        this.store.enqueue(
          this.core!.newEvent('store-incident', { at: new Date().toISOString(), reason: err.message, code: err.code, memoryOnly: true }),
        );
        this.storeFailure = null;
        return this.store;
      }
      // The first failure in full; the retries only when the reason changes.
      if (this.storeFailure?.code !== err.code) log.error({ err, code: err.code }, 'store unavailable');
      this.storeFailure = err;
      return null;
    }
  }

  /** Tries again later: to open the store, or to write what is held in memory. Doubles its wait. */
  private scheduleRetry(): void {
    if (this.retryTimer || !this.core) return;
    const { minMs, maxMs } = this.deps.config.recovery;
    const delay = Math.min(maxMs, minMs * 2 ** Math.min(this.retryAttempts++, 20));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.retry();
    }, delay);
  }

  private retry(): void {
    if (!this.core) return;
    if (!this.store) {
      const store = this.openStore();
      if (!store) {
        this.scheduleRetry();
        return;
      }
      this.deps.log.warn({ attempts: this.retryAttempts }, 'store available again: starting the rest of the agent');
      this.retryAttempts = 0;
      this.startWithStore(store, performance.now()).catch((err: unknown) => {
        this.deps.log.error({ err }, 'starting the rest of the agent after the store came back failed');
      });
      return;
    }
    if (this.flushHeld()) this.retryAttempts = 0;
    else this.scheduleRetry();
  }

  /** Writes what the store could not take (emergency events first). True when nothing is left. */
  private flushHeld(): boolean {
    const store = this.store;
    const core = this.core;
    if (!store || !core) return false;
    // Events a process that died began in the begin file; not into a store in memory (it would not keep them).
    const recovered = store.path === ':memory:' ? 0 : core.journal.recoverLeftover();
    const emergencyEvents = core.journal.flushPending();
    const others = this.held.flushInto(store);
    if (emergencyEvents + others > 0) {
      this.deps.log.warn({ emergencyEvents, others }, 'events held in memory are now stored');
      this.parts?.drainer.wake();
    }
    this.saveSuppression();
    return recovered !== false && core.journal.pendingCount === 0 && this.held.size === 0 && this.pendingSuppressUntil === null;
  }

  /**
   * Writes the window's end for a restart. The window itself runs in memory (monotonic);
   * while the store cannot take the write, it waits here and goes with the held events.
   */
  private saveSuppression(): void {
    const until = this.pendingSuppressUntil;
    if (until === null || !this.store) return;
    try {
      this.store.setSetting(SUPPRESS_KEY, String(until));
      this.pendingSuppressUntil = null;
    } catch (err) {
      if (!(err instanceof StoreError)) throw err;
      this.partFailed('emergency-window', err);
      this.scheduleRetry();
    }
  }

  /** Records an event for the server: the outbox, or memory when the store cannot take it. */
  private record(event: EventPayload): void {
    const p = this.parts;
    if (p) {
      try {
        p.store.enqueue(event);
        p.drainer.wake();
        return;
      } catch (err) {
        this.deps.log.error({ err, type: event.type, id: event.id }, 'event not stored: held in memory');
      }
    }
    this.held.add(event);
    this.scheduleRetry();
  }

  /** The handset's store: the agent's, or memory while it is away (events held until it is back). */
  private frontStore(): FrontPanelStore {
    const m = this.memoryFront;
    return {
      noticeState: () => (this.parts ? this.parts.store.noticeState() : m.notice),
      saveNoticeShown: (st) => {
        if (this.parts) return this.parts.store.saveNoticeShown(st);
        m.notice = st;
      },
      saveNoticeAcknowledged: (st, e) => {
        if (this.parts) return this.parts.store.saveNoticeAcknowledged(st, e);
        m.notice = st;
        this.record(e);
      },
      lastDiagnostics: () => (this.parts ? this.parts.store.lastDiagnostics() : m.diagnostics),
      saveDiagnostics: (r, e) => {
        if (this.parts) return this.parts.store.saveDiagnostics(r, e);
        m.diagnostics = r;
        this.record(e);
      },
    };
  }

  /** The rest of the agent, once the store is open. */
  private async startWithStore(store: Store, t0: number): Promise<void> {
    const { config, log, host } = this.deps;
    const core = this.core!;
    const { newEvent, emergency, front, notifier } = core;
    const now = this.deps.now ?? (() => new Date());
    const serverKey = publicKeyFromText(config.serverPublicKey);
    if (store.incident) store.enqueue(newEvent('store-incident', { ...store.incident }));
    // What was recorded while the store was away goes in first, in order.
    this.flushHeld();
    const addressBook = new AddressBook({ store, log: named(log, 'address'), deviceId: config.deviceId, serverKey, newEvent, now });
    const drainer = new OutboxDrainer(
      store,
      config.outbox.window,
      named(log, 'outbox'),
      config.outbox.serverAckTimeoutMs,
      config.outbox.serverConfirms,
    );
    // A worker thread while pushes come (started by one, ended when idle): a 2 MiB push never holds the keypad up.
    // Its script is looked up when it starts: in the bundle a code string, kept out of the heap until then.
    const locationsVerifier = new WorkerLocationsVerifier({
      script: this.deps.locationsWorker ?? locationsWorkerScript,
      deviceId: config.deviceId,
      serverPublicKey: config.serverPublicKey,
      log: named(log, 'locations'),
    });
    const link = new MqttLink({
      config,
      log: named(log, 'link'),
      drainer,
      handlers: this.inboundHandlers(),
      agentVersion: AGENT_VERSION,
      // A large push's body goes from the socket to the worker as it arrives (publish-framer.ts).
      largePayloads: locationsVerifier,
    });
    const location = new LocationParts({
      config: config.network,
      host,
      log,
      // A failed write there (a full disk) is reported and its event held, never thrown into an event callback.
      store: guardedStore(store, { onFailure: (err) => this.partFailed('location', err), hold: (e) => this.record(e) }),
      deviceId: config.deviceId,
      serverKey,
      locationsVerifier,
      newEvent,
      wake: () => drainer.wake(),
      publishReport: (p) => link.publishRetained('location', p),
      address: () => addressBook.current(),
      // Looked up at alert time: the handset's display may come up after us.
      alerts: { raise: (a) => front.alerts?.raise(a), clear: (id) => front.alerts?.clear(id) },
      ...(this.deps.network ? { network: this.deps.network } : {}),
    });
    this.parts = { store, addressBook, drainer, link, location, locationsVerifier };
    // lldpd and lldpcli are started again by LldpAgent itself (same backoff); the agent reports each death.
    location.lldp?.on('helper-exited', (e) =>
      this.partFailed('lldp', new Error(`${e.helper} exited (${e.signal ?? `code ${e.code}`})`), e.retryInMs),
    );

    const address = addressBook.current();
    // Milliseconds each part took to start, in the 'agent ready' line: where start-up goes.
    const phases: Record<string, number> = { build: Math.round(performance.now() - t0) };
    let mark = performance.now();
    const phase = (name: string) => {
      const at = performance.now();
      phases[name] = Math.round(at - mark);
      mark = at;
    };
    // 911 first: the voice stack and the prepared INVITE are up before anything else starts
    // (already up, without an address, when the store came late); then the keypad that dials it.
    await this.startCore(address);
    phase('emergency+handset');
    // Where the phone is (its parts start after ready, below; the first report waits in the link).
    // The emergency path prepares its PIDF-LO from the best location whenever that changes.
    // With a disagreement, the other address goes second in the PIDF-LO; the ELIN may be the callback.
    const civicOf = (l: ReturnType<LocationService['best']>) =>
      l && l.kind === 'civic' && l.civic ? { civic: l.civic, method: l.method, source: l.source } : null;
    const toEmergency = () => {
      const c = location.service.callLocations();
      emergency.setLocation(civicOf(c.first), { alternate: civicOf(c.second), elin: c.elin });
    };
    location.service.onBestChange(toEmergency);
    // With no address (first start, a store reset, a store in memory) version 0: it replaces the
    // broker's retained state from before, and the server, seeing the phone behind, pushes again.
    link.publishRetained('address/state', addressState(address, store));
    await this.startPart('control', () => this.startControl());
    phase('control');
    notifier.ready(address ? `address v${address.version}` : 'no address on file');
    log.info(
      { ms: Math.round(performance.now() - t0), phases, addressVersion: address?.version ?? null, backlog: store.outboxBacklog() },
      'agent ready',
    );
    // Where the phone is, after ready: its helpers (ip monitor, ip -6 neigh, lldpcli) are each a
    // fork of the agent's whole address space, hundreds of ms on a phone. 911 does not wait for
    // them: the emergency path has the provisioned address from the store, and takes the network's
    // location when the service's first ranking comes (onBestChange). The first report goes out
    // through the link once the snapshot is read.
    // They also wait for the link's first subscribe (a fork copies the page tables of the whole
    // agent, and competed with the connect for the CPU), at most LOCATION_START_CAP_MS: a
    // phone with no broker still gets its network location for 911 about a second after ready.
    // The link itself starts in the next turn of the event loop: 911 does not use it, its first
    // connect loads mqtt.js (deferred in the bundle: scripts/build-arm.mjs), and the ready line,
    // written asynchronously, would otherwise wait behind that.
    const readyAt = performance.now();
    this.locationStarting = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
      if (this.parts?.link !== link) return; // stopped meanwhile
      link.start();
      drainer.wake();
      await waitAtMost(link.whenSubscribed(), LOCATION_START_CAP_MS);
      if (this.parts?.location !== location) return; // stopped meanwhile
      await this.startPart('location', () => location.start());
      if (this.parts?.location === location) log.info({ msAfterReady: Math.round(performance.now() - readyAt) }, 'location parts started');
    });
  }

  /**
   * Starts a part not needed to place 911. A failure is logged, reported (part-failed) and
   * tried again with backoff: it never stops the agent (systemd restarting it every second
   * would leave 911 working only between restarts).
   */
  private async startPart(part: string, start: () => Promise<void>, attempt = 1): Promise<void> {
    if (attempt === 1 && this.partTimers.has(part)) return; // already failing: its retry is scheduled
    try {
      await start();
      if (attempt > 1) this.deps.log.warn({ part, attempt }, 'part started after failing');
    } catch (err) {
      const { minMs, maxMs } = this.deps.config.recovery;
      const retryInMs = Math.min(maxMs, minMs * 2 ** Math.min(attempt - 1, 20));
      this.deps.log.error({ err, part, attempt, retryInMs }, 'part failed: the agent goes on without it, and tries again');
      if (this.core) this.record(this.core.newEvent('part-failed', { part, reason: (err as Error).message, attempt, retryInMs }));
      const timer = setTimeout(() => {
        this.partTimers.delete(part);
        if (this.core) void this.startPart(part, start, attempt + 1);
      }, retryInMs);
      this.partTimers.set(part, timer);
    }
  }

  /**
   * A part not needed for 911 failed while running (a store write, a helper that died).
   * Logged and reported as part-failed; repeats within the backoff (doubling from
   * recovery.minMs to recovery.maxMs) are only counted, so a failing disk does not
   * flood the outbox. The part itself retries (its next write, LldpAgent's restart).
   */
  private partFailed(part: string, err: unknown, retryInMs?: number): void {
    const { minMs, maxMs } = this.deps.config.recovery;
    const now = performance.now();
    const f = this.runningFailures.get(part) ?? { attempt: 0, quietUntil: 0, unreported: 0 };
    this.runningFailures.set(part, f);
    // Quiet for a whole maxMs past the last backoff: a new failure starts the backoff again.
    if (now > f.quietUntil + maxMs) f.attempt = 0;
    f.attempt++;
    if (now < f.quietUntil) {
      f.unreported++;
      return;
    }
    const wait = retryInMs ?? Math.min(maxMs, minMs * 2 ** Math.min(f.attempt - 1, 20));
    f.quietUntil = now + wait;
    const since = f.unreported;
    f.unreported = 0;
    this.deps.log.error(
      { err, part, attempt: f.attempt, retryInMs: wait, unreportedSinceLast: since },
      'part failed while running: the agent goes on',
    );
    if (this.core) {
      this.record(
        this.core.newEvent('part-failed', {
          part,
          reason: (err as Error).message,
          attempt: f.attempt,
          retryInMs: wait,
          phase: 'running',
          unreportedSinceLast: since,
        }),
      );
    }
  }

  /** Applies the latest address push; a store error throws (startPart retries it with backoff). */
  private async applyAddressPush(): Promise<void> {
    const payload = this.pendingAddressPush;
    if (payload === null) return;
    const p = this.require();
    const outcome = p.addressBook.handlePush(payload);
    this.pendingAddressPush = null;
    const core = this.core;
    if (outcome.result === 'applied') core?.emergency.setAddress(outcome.address);
    if (outcome.result !== 'rejected') p.link.publishRetained('address/state', addressState(outcome.address, p.store));
    p.drainer.wake();
    // The display and the location report after this turn: mqtt.js writes the state and the
    // address-applied event when the turn ends, and they waited for this work (docs/performance.md).
    if (outcome.result === 'applied')
      setImmediate(() => {
        if (this.parts !== p) return; // stopped meanwhile
        try {
          core?.front.addressChanged(outcome.address);
          p.location.service.addressChanged();
        } catch (err) {
          // Outside startPart now: a store error here is reported, never thrown out of a timer.
          this.partFailed('address', err);
        }
      });
  }

  async stop(): Promise<void> {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    for (const t of this.partTimers.values()) clearTimeout(t);
    this.partTimers.clear();
    const core = this.core;
    const parts = this.parts;
    this.core = null;
    this.parts = null;
    if (!core) return;
    core.notifier.stopping();
    if (parts) await parts.link.stop();
    await core.control.stop();
    if (parts) {
      // A start still under way would spawn its helpers after their stop.
      await this.locationStarting;
      await parts.location.stop();
    }
    if (parts) await parts.locationsVerifier.close();
    if (core.started.front) await core.front.stop();
    // Writes an emergency event still waiting, before the store closes.
    if (core.started.emergency) await core.emergency.stop();
    if (parts) {
      parts.drainer.flushAcks();
      parts.drainer.close();
    }
    // An emergency event whose line is in the begin file is not lost: the next start puts it in the outbox.
    const lost = core.journal.pendingOnlyInMemory + this.held.size;
    if (lost > 0)
      this.deps.log.error(
        { emergencyEvents: core.journal.pendingOnlyInMemory, others: this.held.size },
        'stopping with events the store never took: they are lost',
      );
    this.store?.close();
    this.store = null;
    core.beginFile.close();
    core.notifier.close();
    this.deps.log.info('agent stopped');
  }

  /** Records an event for the server (outbox first, then QoS 1; memory while the store cannot take it). */
  /** Records an event for the server; returns its id. */
  emit(type: EventType, data: Record<string, unknown>): string {
    const core = this.core;
    if (!core) throw new Error('agent is not running');
    const event = core.newEvent(type, data);
    this.record(event);
    return event.id;
  }

  /** Where the phone is: best() is synchronous and does no I/O (for the emergency path). */
  get locationService(): LocationService {
    return this.require().location.service;
  }

  status(): Record<string, unknown> {
    const core = this.core;
    if (!core) throw new Error('agent is not running');
    const p = this.parts;
    const address = p?.addressBook.current() ?? null;
    const held = { emergencyEvents: core.journal.pendingCount, others: this.held.size };
    return {
      deviceId: this.deps.config.deviceId,
      agentVersion: AGENT_VERSION,
      ...(p
        ? {
            link: p.link.state,
            outbox: {
              backlog: p.store.outboxBacklog(),
              inFlight: p.drainer.inFlightCount(),
              delivered: p.drainer.delivered,
              awaitingServer: p.drainer.awaitingServerCount(),
              confirmed: p.drainer.confirmed,
            },
            store: { ...p.store.health(), available: true, held },
          }
        : { link: { state: 'stopped' }, store: { available: false, unavailable: this.storeUnavailable, held } }),
      address: address ? { version: address.version, appliedAt: address.appliedAt, hash: address.hash } : null,
      emergency: core.emergency.status(),
      ...core.front.status(),
      ...(p ? { location: p.location.status() } : {}),
    };
  }

  private require(): Parts {
    if (this.parts) return this.parts;
    if (this.core && this.storeFailure) {
      throw new ControlError('store-unavailable', `the store is unavailable (${this.storeFailure.code}): only emergency calls work now`);
    }
    throw new Error('agent is not running');
  }

  private createEmergency(journal: StoreEmergencyJournal, newEvent: EventFactory): EmergencyService {
    const { config, log } = this.deps;
    let voice: VoiceStack | null;
    let reason: string | undefined;
    if (this.deps.voice !== undefined) {
      voice = this.deps.voice;
      reason = 'no voice stack was given to the agent';
    } else {
      const avail = pjsipAvailability(this.deps.voiceAddonPath ? { addonPath: this.deps.voiceAddonPath } : {});
      voice = avail.available
        ? createPjsipVoiceStack({
            logger: named(log, 'voice'),
            ...(this.deps.voiceAddonPath ? { addonPath: this.deps.voiceAddonPath } : {}),
          })
        : null;
      if (!avail.available) reason = avail.message;
    }
    const { env, host } = this.deps;
    return new EmergencyService({
      voice,
      // Read without ICU's date formatter (hal/timezone.ts): its data would stay resident.
      timeZone: () => systemTimeZone({ env, localtime: host.localtime ?? hostPaths({}).localtime! }),
      ...(reason ? { voiceUnavailableReason: reason } : {}),
      emergency: config.emergency,
      dialPlan: config.dialPlan,
      sip: config.sip,
      deviceId: config.deviceId,
      agentVersion: AGENT_VERSION,
      log: named(log, 'emergency'),
      ...(this.deps.now ? { now: this.deps.now } : {}),
      // Called off the call path (setImmediate): outbox first, then the drain; memory while the store is away.
      emitEvent: (type, data) => this.record(newEvent(type, data)),
      // Each call's event says where the phone was then: the network service's snapshot and
      // LLDP neighbours (built with the store; without it, the interface found at start).
      site: () => {
        const loc = this.parts?.location;
        if (!loc) throw new Error('the network service is not running (the store is unavailable)');
        return networkSite(loc.network.current(), loc.lldp?.neighbors() ?? [], config.sip.bindAddress);
      },
      // The emergency event: committed before the INVITE, completed and synced after.
      journal,
      suppression: {
        load: () => {
          const v = Number(this.store?.getSetting(SUPPRESS_KEY));
          return Number.isFinite(v) && v > 0 ? v : null;
        },
        save: (until) => {
          this.pendingSuppressUntil = until;
          this.saveSuppression();
        },
      },
    });
  }

  /** e911ctl's commands; the emergency ones work without the store. */
  private registerControl(core: Core): void {
    const { control, emergency } = core;
    control.register('status', () => this.status());
    control.register('pidf', () => {
      const pidf = emergency.pidfNow();
      return { pidf, addressMissing: pidf === null };
    });
    // The control server has checked the arguments against the dial schema (digits: a non-empty string).
    control.register('dial', (args) => emergency.dial(args.digits));
    control.register('hangup', () => emergency.hangup());
    control.register('calls', () =>
      emergency.history().map((r) => ({
        callRef: r.callRef,
        kind: r.kind,
        dialed: r.dialed,
        state: r.state,
        startedAt: r.startedAt,
        route: r.attempts.at(-1)?.route ?? null,
        media: r.media ?? null,
      })),
    );
    core.front.registerControl(control);
    registerLocationControl(control, () => this.require().location.service);
    control.register('address', () => {
      const a = this.require().addressBook.current();
      return a && { version: a.version, hash: a.hash, appliedAt: a.appliedAt, receivedAt: a.receivedAt, doc: a.doc };
    });
  }

  private inboundHandlers(): InboundHandlers {
    return {
      addressSet: (payload) => {
        // The latest push wins; a store write that fails is reported and tried again with backoff.
        this.pendingAddressPush = payload;
        void this.startPart('address', () => this.applyAddressPush());
      },
      configSet: (value) => {
        const p = this.require();
        try {
          for (const [key, v] of Object.entries(value.settings)) p.store.setSetting(`server.${key}`, JSON.stringify(v));
        } catch (err) {
          // A full disk: reported; the server's next config/set carries the settings again.
          if (!(err instanceof StoreError)) throw err;
          this.partFailed('config', err);
        }
      },
      command: async (name) => {
        const p = this.require();
        switch (name) {
          case 'ping':
            return { pong: true };
          case 'status':
            return this.status();
          case 'address':
            return p.addressBook.current();
          case 'diag':
            // From the server: the checks only; a test call needs someone at the phone.
            return this.core!.front.runDiagnostics('server', { none: true });
          default:
            throw new Error(`unknown command ${name}`);
        }
      },
      locationsSet: (payload) => {
        // Verified in the worker, stored a part per turn: the link (and the keypad) go on meanwhile.
        void this.require()
          .location.handleLocationsPush(payload)
          .then((outcome) => {
            if (outcome.result === 'rejected') this.reportRejected('locations/set', outcome.reason);
          })
          .catch((err: unknown) => this.deps.log.error({ err }, 'locations push handling failed'));
      },
      rejected: (kind, reason) => this.reportRejected(kind, reason),
    };
  }

  /** Garbage from the broker is reported, but at most once a minute per topic kind. */
  private reportRejected(kind: TopicKind, reason: string): void {
    const core = this.core;
    if (!core) return;
    const now = Date.now();
    const last = this.lastRejectReport.get(kind) ?? -Infinity;
    if (now - last < REJECT_REPORT_INTERVAL_MS) {
      this.suppressedRejects++;
      return;
    }
    this.lastRejectReport.set(kind, now);
    this.record(core.newEvent('payload-rejected', { topic: kind, reason, suppressedSinceLast: this.suppressedRejects }));
    this.suppressedRejects = 0;
  }
}

/** What the phone holds (version 0: nothing), with the floors below which it refuses a push. */
function addressState(a: StoredAddress | null, store: Pick<Store, 'replayFloor'>): AddressStatePayload {
  const floor = { address: store.replayFloor('address'), locations: store.replayFloor('locations') };
  return a
    ? { v: 1, version: a.version, hash: a.hash, appliedAt: a.appliedAt, floor }
    : { v: 1, version: 0, hash: '', appliedAt: null, floor };
}

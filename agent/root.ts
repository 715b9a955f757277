// The composition root: the one place that builds every part of the agent and
// passes collaborators in. Start runs in order; stop runs in reverse.
import type { Logger } from './log.js';
import { named } from './log.js';
import type { AgentConfig } from './config.js';
import type { HostPaths } from '../hal/host.js';
import { Store } from './store/store.js';
import { AddressBook } from './address/address-book.js';
import { eventFactory, type EventFactory } from './events/events.js';
import { OutboxDrainer } from './link/outbox-drainer.js';
import { MqttLink, type InboundHandlers } from './link/link.js';
import { ControlServer } from './control/control-server.js';
import { systemdNotifier, type Notifier } from './systemd.js';
import { ControlError } from './errors.js';
import { publicKeyFromText } from '../provisioning/protocol/signing.js';
import type { EventType, TopicKind } from '../provisioning/protocol/messages.js';
import type { StoredAddress } from './store/store.js';
import { EmergencyService } from './emergency/service.js';
import { StoreEmergencyJournal } from './events/emergency-journal.js';
import type { VoiceStack } from '../hal/voice/types.js';
import { createPjsipVoiceStack, pjsipAvailability } from '../hal/voice/pjsip/index.js';
import { FrontPanel } from './handset/front-panel.js';
import { HostNetworkProbe, serviceNetworkProbe } from './diagnostics/probes.js';
import type { Handset } from '../hal/handset.js';
import { LocationParts } from './location/parts.js';
import type { LocationService } from './location/service.js';
import { registerLocationControl } from './location/control.js';

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
  /** A handset to use instead of the configured backend (tests, the pty simulator). */
  handset?: Handset | null;
}

/** The running parts, built by start(). */
interface Parts {
  store: Store;
  addressBook: AddressBook;
  drainer: OutboxDrainer;
  link: MqttLink;
  control: ControlServer;
  notifier: Notifier;
  newEvent: EventFactory;
  emergency: EmergencyService;
  front: FrontPanel;
  location: LocationParts;
}

const REJECT_REPORT_INTERVAL_MS = 60_000;
const SUPPRESS_KEY = 'emergency.suppressUntil';

export class Agent {
  private parts: Parts | null = null;
  private readonly lastRejectReport = new Map<string, number>();
  private suppressedRejects = 0;

  constructor(private readonly deps: AgentDeps) {}

  get running(): boolean {
    return this.parts !== null;
  }

  async start(): Promise<void> {
    const { config, log, env, host } = this.deps;
    const t0 = performance.now();
    const now = this.deps.now ?? (() => new Date());
    const newEvent = eventFactory(config.deviceId, now);
    const serverKey = publicKeyFromText(config.serverPublicKey);

    const store = new Store({
      dataDir: config.dataDir,
      log: named(log, 'store'),
      now,
      outboxMax: config.outbox.maxEvents,
      ...(this.deps.sqliteBinding ? { nativeBinding: this.deps.sqliteBinding } : {}),
    });
    if (store.incident) store.enqueue(newEvent('store-incident', { ...store.incident }));
    const addressBook = new AddressBook({ store, log: named(log, 'address'), deviceId: config.deviceId, serverKey, newEvent, now });
    const drainer = new OutboxDrainer(store, config.outbox.window, named(log, 'outbox'), config.outbox.serverAckTimeoutMs);
    const link = new MqttLink({ config, log: named(log, 'link'), drainer, handlers: this.inboundHandlers(), agentVersion: AGENT_VERSION });
    const control = new ControlServer(
      config.control.socketPath,
      named(log, 'control'),
      config.control.group ? { name: config.control.group, etcGroup: host.etcGroup } : undefined,
    );
    const notifier = systemdNotifier(env, named(log, 'systemd'), config.watchdogMs);
    const emergency = this.createEmergency(store, drainer, newEvent);
    const front = new FrontPanel({
      handsetConfig: config.handset,
      diagnosticsConfig: config.diagnostics,
      deviceId: config.deviceId,
      agentVersion: AGENT_VERSION,
      serverKey,
      log,
      host,
      store,
      newEvent,
      wake: () => drainer.wake(),
      address: () => addressBook.current(),
      emergency: () => emergency,
      link: () => ({ ...link.state, backlog: store.outboxBacklog(), inFlight: drainer.inFlightCount() }),
      testNumber: config.emergency.numbers.find((n) => n.kind === 'test')?.digits ?? '933',
      ...(this.deps.now ? { now: this.deps.now } : {}),
      ...(this.deps.handset !== undefined ? { handset: this.deps.handset } : {}),
      // Diagnostics read the network service (built just below) at check time.
      network: serviceNetworkProbe(() => location, new HostNetworkProbe(host)),
    });
    const location = new LocationParts({
      config: config.network,
      host,
      log,
      store,
      deviceId: config.deviceId,
      serverKey,
      newEvent,
      wake: () => drainer.wake(),
      publishReport: (p) => link.publishRetained('location', p),
      address: () => addressBook.current(),
      // Looked up at alert time: the handset's display may come up after us.
      alerts: { raise: (a) => front.alerts?.raise(a), clear: (id) => front.alerts?.clear(id) },
    });
    this.parts = { store, addressBook, drainer, link, control, notifier, newEvent, emergency, front, location };

    const address = addressBook.current();
    // Milliseconds each part took to start, in the 'agent ready' line: where start-up goes.
    const phases: Record<string, number> = { build: Math.round(performance.now() - t0) };
    let mark = performance.now();
    const phase = (name: string) => {
      const at = performance.now();
      phases[name] = Math.round(at - mark);
      mark = at;
    };
    // 911 first: the voice stack and the prepared INVITE are up before anything else starts.
    await emergency.start(address);
    phase('emergency');
    // Then the keypad that dials it, and the emergency-services notice.
    await front.start();
    phase('handset');
    // Where the phone is: after the store, before the link (its first report waits in the link).
    // The emergency path prepares its PIDF-LO from the best location whenever that changes.
    // With a disagreement, the other address goes second in the PIDF-LO; the ELIN may be the callback.
    const civicOf = (l: ReturnType<LocationService['best']>) => (l && l.kind === 'civic' && l.civic ? { civic: l.civic, method: l.method, source: l.source } : null);
    const toEmergency = () => {
      const c = location.service.callLocations();
      emergency.setLocation(civicOf(c.first), { alternate: civicOf(c.second), elin: c.elin });
    };
    location.service.onBestChange(toEmergency);
    await location.start();
    phase('location');
    if (address) link.publishRetained('address/state', addressState(address));
    this.registerControl(control);
    await control.start();
    phase('control');
    link.start();
    notifier.ready(address ? `address v${address.version}` : 'no address on file');
    log.info(
      { ms: Math.round(performance.now() - t0), phases, addressVersion: address?.version ?? null, backlog: store.outboxBacklog() },
      'agent ready',
    );
  }

  async stop(): Promise<void> {
    const parts = this.parts;
    if (!parts) return;
    this.parts = null;
    parts.notifier.stopping();
    await parts.link.stop();
    await parts.control.stop();
    await parts.location.stop();
    await parts.front.stop();
    await parts.emergency.stop();
    parts.drainer.flushAcks();
    parts.store.close();
    parts.notifier.close();
    this.deps.log.info('agent stopped');
  }

  /** Records an event for the server (outbox first, then QoS 1). */
  emit(type: EventType, data: Record<string, unknown>): void {
    const p = this.require();
    p.store.enqueue(p.newEvent(type, data));
    p.drainer.wake();
  }

  /** Where the phone is: best() is synchronous and does no I/O (for the emergency path). */
  get locationService(): LocationService {
    return this.require().location.service;
  }

  status(): Record<string, unknown> {
    const p = this.require();
    const address = p.addressBook.current();
    return {
      deviceId: this.deps.config.deviceId,
      agentVersion: AGENT_VERSION,
      link: p.link.state,
      outbox: { backlog: p.store.outboxBacklog(), inFlight: p.drainer.inFlightCount(), delivered: p.drainer.delivered, awaitingServer: p.drainer.awaitingServerCount(), confirmed: p.drainer.confirmed },
      store: p.store.health(),
      address: address ? { version: address.version, appliedAt: address.appliedAt, hash: address.hash } : null,
      emergency: p.emergency.status(),
      ...p.front.status(),
      location: p.location.status(),
    };
  }

  private require(): Parts {
    if (!this.parts) throw new Error('agent is not running');
    return this.parts;
  }

  private createEmergency(store: Store, drainer: OutboxDrainer, newEvent: EventFactory): EmergencyService {
    const { config, log } = this.deps;
    let voice: VoiceStack | null;
    let reason: string | undefined;
    if (this.deps.voice !== undefined) {
      voice = this.deps.voice;
      reason = 'no voice stack was given to the agent';
    } else {
      const avail = pjsipAvailability(this.deps.voiceAddonPath ? { addonPath: this.deps.voiceAddonPath } : {});
      voice = avail.available
        ? createPjsipVoiceStack({ logger: named(log, 'voice'), ...(this.deps.voiceAddonPath ? { addonPath: this.deps.voiceAddonPath } : {}) })
        : null;
      if (!avail.available) reason = avail.message;
    }
    return new EmergencyService({
      voice,
      ...(reason ? { voiceUnavailableReason: reason } : {}),
      emergency: config.emergency,
      dialPlan: config.dialPlan,
      sip: config.sip,
      deviceId: config.deviceId,
      agentVersion: AGENT_VERSION,
      log: named(log, 'emergency'),
      ...(this.deps.now ? { now: this.deps.now } : {}),
      // Called off the call path (setImmediate): outbox first, then the drain.
      emitEvent: (type, data) => {
        store.enqueue(newEvent(type, data));
        drainer.wake();
      },
      // The emergency event: committed before the INVITE, completed and synced after.
      journal: new StoreEmergencyJournal({ store: () => store, drain: () => drainer, newEvent, log: named(log, 'emergency') }),
      suppression: {
        load: () => {
          const v = Number(store.getSetting(SUPPRESS_KEY));
          return Number.isFinite(v) && v > 0 ? v : null;
        },
        save: (until) => void store.setSetting(SUPPRESS_KEY, String(until)),
      },
    });
  }

  private registerControl(control: ControlServer): void {
    control.register('status', () => this.status());
    control.register('pidf', () => {
      const pidf = this.require().emergency.pidfNow();
      return { pidf, addressMissing: pidf === null };
    });
    control.register('dial', (args) => {
      const digits = typeof args.digits === 'string' ? args.digits : '';
      if (!digits) throw new ControlError('usage', 'dial needs digits (0-9 * #) or a service URN');
      return this.require().emergency.dial(digits);
    });
    control.register('hangup', () => this.require().emergency.hangup());
    control.register('calls', () =>
      this.require()
        .emergency.history()
        .map((r) => ({ callRef: r.callRef, kind: r.kind, dialed: r.dialed, state: r.state, startedAt: r.startedAt, route: r.attempts.at(-1)?.route ?? null, media: r.media ?? null })),
    );
    this.require().front.registerControl(control);
    registerLocationControl(control, () => this.require().location.service);
    control.register('address', () => {
      const a = this.require().addressBook.current();
      return a && { version: a.version, hash: a.hash, appliedAt: a.appliedAt, receivedAt: a.receivedAt, doc: a.doc };
    });
  }

  private inboundHandlers(): InboundHandlers {
    return {
      addressSet: (payload) => {
        const p = this.require();
        const outcome = p.addressBook.handlePush(payload);
        if (outcome.result !== 'rejected') p.link.publishRetained('address/state', addressState(outcome.address));
        if (outcome.result === 'applied') {
          p.emergency.setAddress(outcome.address);
          p.front.addressChanged(outcome.address);
          p.location.service.addressChanged();
        }
        p.drainer.wake();
      },
      configSet: (value) => {
        const p = this.require();
        for (const [key, v] of Object.entries(value.settings)) p.store.setSetting(`server.${key}`, JSON.stringify(v));
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
            return p.front.runDiagnostics('server', { none: true });
          default:
            throw new Error(`unknown command ${name}`);
        }
      },
      locationsSet: (payload) => {
        const outcome = this.require().location.handleLocationsPush(payload);
        if (outcome.result === 'rejected') this.reportRejected('locations/set', outcome.reason);
      },
      rejected: (kind, reason) => this.reportRejected(kind, reason),
    };
  }

  /** Garbage from the broker is reported, but at most once a minute per topic kind. */
  private reportRejected(kind: TopicKind, reason: string): void {
    const p = this.require();
    const now = Date.now();
    const last = this.lastRejectReport.get(kind) ?? -Infinity;
    if (now - last < REJECT_REPORT_INTERVAL_MS) {
      this.suppressedRejects++;
      return;
    }
    this.lastRejectReport.set(kind, now);
    p.store.enqueue(p.newEvent('payload-rejected', { topic: kind, reason, suppressedSinceLast: this.suppressedRejects }));
    this.suppressedRejects = 0;
    p.drainer.wake();
  }
}

function addressState(a: StoredAddress) {
  return { v: 1 as const, version: a.version, hash: a.hash, appliedAt: a.appliedAt };
}

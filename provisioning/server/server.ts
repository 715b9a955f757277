// The provisioning server's MQTT side: signs and pushes each phone's address,
// re-pushes phones whose applied version is stale, pushes the locations phones
// use for recommendations, and reads the phones' events (de-duplicated by id),
// status, address state and location reports. What to push and what an event
// means is decided above it (app.ts); this class only speaks the contract.
// Over 400 lines: one method per topic of the contract, each short; together they are
// the server's whole MQTT side.
import { EventEmitter } from 'node:events';
import mqtt, { type MqttClient, type IPublishPacket, type Packet } from 'mqtt';
import type { Logger } from 'pino';
import { createHash, sign, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../protocol/canonical.js';
import {
  decodePayload,
  type EventPayload,
  type SignedAddress,
  type StatusPayload,
  type AddressStatePayload,
  type LocationPayload,
} from '../protocol/messages.js';
import { PHONE_PUBLISHES, topicFilter, topicFor, parseTopic } from '../protocol/topics.js';
import { validateAddress, type AddressDocument } from '../protocol/address.js';
import { signDocument } from '../protocol/signing.js';
import { MAX_LOCATIONS_PAYLOAD_BYTES } from '../protocol/messages.js';
import type { LocationsDocument, SignedLocations } from '../protocol/locations.js';
import { NatsIntake, type NatsIntakeOptions } from './nats-intake.js';
import { InFlight } from './in-flight.js';
import { StoppingError } from './errors.js';

export interface PhoneView {
  deviceId: string;
  online: boolean;
  appliedVersion: number | null;
  appliedHash: string | null;
  lastSeen: string | null;
}

export interface ServerEvents {
  event: [EventPayload];
  duplicate: [EventPayload];
  status: [string, StatusPayload];
  'address-state': [string, AddressStatePayload];
  location: [string, LocationPayload];
  rejected: [string, string];
  connected: [];
}

/** Where the last signed address of each phone is kept, for re-pushes to stale phones. */
export interface DesiredAddressStore {
  get(deviceId: string): Promise<SignedAddress | undefined> | SignedAddress | undefined;
  set(signed: SignedAddress): Promise<void> | void;
  /**
   * The desired and last applied (known from before this process started) versions of many
   * phones in one read, when a store can tell them more cheaply than get(): a push's reports
   * (and an instance's start, with every phone's retained status) reach an instance that did not
   * issue them, and a read or two per report was most of a second instance's work (scale bench).
   */
  versions?(deviceIds: readonly string[]): Promise<Map<string, { desired: number; applied: number | null }>>;
}

class MemoryDesiredStore implements DesiredAddressStore {
  private readonly map = new Map<string, SignedAddress>();
  get(deviceId: string) {
    return this.map.get(deviceId);
  }
  set(signed: SignedAddress) {
    this.map.set(signed.doc.deviceId, signed);
  }
}

export interface ProvisioningServerOptions {
  brokerUrl: string;
  privateKey: KeyObject;
  log: Logger;
  clientId?: string;
  protocolVersion?: 4 | 5;
  username?: string;
  password?: string;
  /** How many event ids to remember for de-duplication. */
  dedupeWindow?: number;
  /** Persistent store of desired addresses; in memory by default. */
  desired?: DesiredAddressStore;
  /**
   * MQTT 5 shared-subscription group: several server instances subscribe as
   * $share/<group>/... and the broker gives each message to one of them.
   */
  shareGroup?: string;
  /** mqtt.js reconnect period; the default suits a server. */
  reconnectPeriodMs?: number;
  /** Delays between tries to store an event before it is left unacknowledged (default 50, 250, 1000 ms). */
  eventRetryMs?: readonly number[];
  /**
   * MQTT over TLS (an mqtts:// URL): the CA that signed the broker's certificate (PEM) when it
   * is not a public one, and a client certificate when the broker asks for one.
   */
  tls?: { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer };
  /**
   * Publish only (the push command): a clean session that subscribes to nothing, so the
   * broker keeps no session for it and queues it none of the phones' events.
   */
  publishOnly?: boolean;
  /**
   * A NATS cluster as the broker: the MQTT link (MQTT 3.1.1, a clean session) only publishes,
   * and the phones' reports come through this NATS queue group instead of MQTT subscriptions.
   */
  nats?: Omit<NatsIntakeOptions, 'log'>;
  /** Several MQTT URLs (the broker's nodes): mqtt.js tries them in turn on reconnect. */
  brokerUrls?: readonly string[];
  /**
   * More MQTT connections, publish only, that share the retained locations pushes, each phone's
   * always on the same one (client ids `<clientId>-r1`...). NATS stores a retained message from the publishing
   * connection's read loop before it reads the next: from one connection a push of the
   * locations list to 100,000 phones took minutes (broker bench: 52 retained QoS 1 messages a
   * second from one connection, 316 from eight). Only where client ids are not bound to the
   * user (NATS): Mosquitto's would take each other's place.
   */
  retainedLinks?: number;
}

/**
 * Stores one event (and plans what it needs) in one transaction. Throws when it
 * could not: the event is then not acknowledged, and the broker sends it again.
 * Returns false for an event stored before.
 */
/** Stores an event; true when it is new. A rejection (or throw) leaves the event unacknowledged. */
export type EventHandler = (e: EventPayload) => boolean | Promise<boolean>;

/** Which of `links` retained links carries a phone's locations lists (FNV-1a of the device id). */
export function retainedLinkOf(deviceId: string, links: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < deviceId.length; i++) h = Math.imul(h ^ deviceId.charCodeAt(i), 0x01000193);
  return (h >>> 0) % links;
}

/** Resolves on the client's first connect; rejects on an error before it. */
function connected(client: MqttClient): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
}

export class ProvisioningServer extends EventEmitter<ServerEvents> {
  private client: MqttClient | null = null;
  /** The retainedLinks' connections. */
  private retainedClients: MqttClient[] = [];
  private readonly desired: DesiredAddressStore;
  /** The version last published to each phone by this process: spares a store read per state report. */
  private readonly desiredVersions = new Map<string, number>();
  /** Phones whose reports came in this turn, to check for a stale address together. */
  private readonly staleChecks = new Set<string>();
  private readonly phones = new Map<string, PhoneView>();
  private readonly seen = new Set<string>();
  private readonly seenOrder: string[] = [];
  private eventHandler: EventHandler | null = null;
  /** Server acks waiting for the end of this turn, by phone. */
  private acks = new Map<string, string[]>();
  /** Events stored but not acknowledged because the store failed (for status and tests). */
  storeFailures = 0;
  private readonly nats: NatsIntake | null;
  /**
   * The QoS of pushes and events/ack: 0 on NATS. A NATS node takes one connection's QoS 1
   * publishes one at a time, each stored in a replicated JetStream stream first: 3,000 pushes
   * took 18.6 s (scale bench). Its phones subscribe at QoS 0 (broker.subscribeQos), so a QoS 1
   * publish bought nothing on the last hop; a push lost with a connection is re-pushed on the
   * phone's next report or heartbeat, an ack on the event's resend.
   */
  private readonly pushQos: 0 | 1;
  /** Set by stopIntake(): the phones' reports are no longer taken (events still are; the link still publishes). */
  private stopping = false;
  /** Set by stop(): events are no longer taken either (left unacknowledged, the phone sends them again). */
  private closing = false;
  /** Reports that came after stopIntake() and were dropped, told once in stop()'s log line. */
  private notTaken = 0;
  /** Events being stored and stale-address checks under way: stopIntake() waits for them. */
  private readonly inFlight = new InFlight();

  private readonly opts: ProvisioningServerOptions;

  constructor(opts: ProvisioningServerOptions) {
    super();
    this.opts = { ...opts };
    this.desired = opts.desired ?? new MemoryDesiredStore();
    if (opts.shareGroup !== undefined && (opts.protocolVersion ?? 4) !== 5) {
      throw new Error('shared subscriptions need MQTT 5 (protocolVersion: 5)');
    }
    if (opts.nats && (opts.protocolVersion ?? 4) !== 4) throw new Error('NATS speaks MQTT 3.1.1 only (protocolVersion: 4)');
    if (opts.nats && opts.shareGroup !== undefined) throw new Error('NATS has no $share: its queue group shares the events');
    this.nats = opts.nats ? new NatsIntake({ ...opts.nats, log: opts.log }) : null;
    this.pushQos = opts.nats ? 0 : 1;
  }

  /**
   * Who stores events. The PUBACK to the broker, the 'seen' mark and the ack to
   * the phone all wait until it returned: an event is acknowledged only once
   * it is stored.
   */
  /** The shared-subscription group, when it is known only after construction (read from the store): call before start(). */
  setShareGroup(group: string): void {
    if ((this.opts.protocolVersion ?? 4) !== 5) throw new Error('shared subscriptions need MQTT 5 (protocolVersion: 5)');
    this.opts.shareGroup = group;
  }

  setEventHandler(handler: EventHandler): void {
    this.eventHandler = handler;
  }

  get connected(): boolean {
    return (this.client?.connected ?? false) && (this.nats === null || this.nats.connected);
  }

  /** Connects; brokerUrl overrides the option (an embedded broker's port is known only once it listens). */
  async start(brokerUrl = this.opts.brokerUrl): Promise<void> {
    // On NATS the MQTT link only publishes: no subscription, so no session worth keeping.
    const publishOnly = this.opts.publishOnly === true || this.nats !== null;
    const clientId = this.opts.clientId ?? 'e911-server-main';
    // A stable id and a persistent session: the broker queues phones' events
    // (QoS 1) while the server is away instead of dropping them.
    const client = mqtt.connect(brokerUrl, this.connectOptions(clientId, publishOnly));
    this.client = client;
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
    // mqtt.js sends the PUBACK when this calls back: events are acknowledged after they are stored.
    client.handleMessage = (packet: Packet, callback: (err?: Error) => void) => {
      if (packet.cmd !== 'publish') return callback();
      const p = packet as IPublishPacket;
      const t = parseTopic(p.topic);
      if (t?.kind !== 'events') return callback();
      this.onEventMessage(client, t.deviceId, Buffer.isBuffer(p.payload) ? p.payload : Buffer.from(p.payload), callback);
    };
    client.on('error', (err) => this.opts.log.warn({ err: err.message }, 'server link error'));
    const share = this.opts.shareGroup;
    // Every kind a phone publishes but command responses: the server sends no commands.
    const filters = PHONE_PUBLISHES.filter((k) => k !== 'response').map((k) =>
      share ? `$share/${share}/${topicFilter(k)}` : topicFilter(k),
    );
    client.on('connect', () => {
      // mqtt.js leaves Nagle on: small QoS 1 packets would wait for delayed ACKs (~40 ms).
      (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
      if (publishOnly) return void this.emit('connected');
      client.subscribe(filters, { qos: 1 }, (err) => {
        if (err) this.opts.log.error({ err: err.message }, 'subscribe failed');
        else this.emit('connected');
      });
    });
    await connected(client);
    this.retainedClients = Array.from({ length: this.opts.retainedLinks ?? 0 }, (_, k) => {
      const c = mqtt.connect(brokerUrl, this.connectOptions(`${clientId}-r${k + 1}`, true));
      c.on('error', (err) => this.opts.log.warn({ err: err.message, link: k + 1 }, 'retained-push link error'));
      c.on('connect', () => (c.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true));
      return c;
    });
    await Promise.all(this.retainedClients.map(connected));
    if (this.nats) await this.nats.start((topic, payload) => this.receive(topic, payload));
  }

  /** mqtt.js's options for a connection of this server's login under `clientId`; clean: no persistent session. */
  private connectOptions(clientId: string, clean: boolean): mqtt.IClientOptions {
    const protocolVersion = this.opts.protocolVersion ?? 4;
    const urls = this.opts.brokerUrls && this.opts.brokerUrls.length > 1 ? this.opts.brokerUrls : null;
    return {
      clientId,
      protocolVersion,
      clean,
      // Each reconnect tries the next node.
      ...(urls
        ? {
            servers: urls.map((u) => {
              const url = new URL(u);
              return { host: url.hostname, port: Number(url.port) || 1883, protocol: url.protocol.replace(':', '') as 'mqtt' | 'mqtts' };
            }),
          }
        : {}),
      ...(protocolVersion === 5 && !clean ? { properties: { sessionExpiryInterval: 7 * 24 * 3600 } } : {}),
      reconnectPeriod: this.opts.reconnectPeriodMs ?? 1000,
      ...(this.opts.username ? { username: this.opts.username } : {}),
      ...(this.opts.password ? { password: this.opts.password } : {}),
      // The broker's certificate is always verified (mqtt.js's default): a CA is given, not switched off.
      ...(this.opts.tls?.ca ? { ca: this.opts.tls.ca } : {}),
      ...(this.opts.tls?.cert ? { cert: this.opts.tls.cert, key: this.opts.tls.key } : {}),
    };
  }

  /**
   * The first step of a stop: the phones' reports are no longer taken (what arrives from now on
   * is dropped, and the phone sends it again to whichever instance takes it next), and what was
   * taken is finished (events being stored, a stale-address check). Over MQTT events are still
   * stored and acknowledged until stop(): a 911 event refused here would wait for the phone's
   * resend (30 s by default). Over NATS the queue group is left now: its events go to the other
   * instances at once. The link still publishes, so the pushes already queued go out.
   */
  async stopIntake(): Promise<void> {
    this.stopping = true;
    await this.nats?.stop();
    await this.inFlight.settled();
  }

  async stop(): Promise<void> {
    await this.stopIntake();
    this.closing = true;
    // Events taken meanwhile are stored and acknowledged over the link before it closes.
    await this.inFlight.settled();
    const client = this.client;
    this.client = null;
    if (client) await client.endAsync();
    // After the pushes under way: endAsync sends what is queued first.
    await Promise.all(this.retainedClients.splice(0).map((c) => c.endAsync()));
    if (this.notTaken > 0) {
      this.opts.log.info({ reports: this.notTaken }, 'phone reports that came while stopping were not taken: the phones send them again');
      this.notTaken = 0;
    }
  }

  /**
   * A phone's report from the NATS queue group. There is no broker acknowledgement to hold
   * back: an event that could not be stored is simply not acknowledged to the phone, whose
   * outbox sends it again.
   */
  private receive(topic: string, payload: Buffer): void {
    const t = parseTopic(topic);
    if (!t) return;
    if (this.stopping) return void this.notTaken++;
    if (t.kind !== 'events') {
      this.onMessage(topic, payload);
      return;
    }
    const client = this.client;
    if (!client) return;
    this.onEventMessage(client, t.deviceId, payload, (err) => {
      if (err) this.opts.log.warn({ deviceId: t.deviceId }, 'event left unacknowledged: the phone sends it again');
    });
  }

  phone(deviceId: string): PhoneView | undefined {
    return this.phones.get(deviceId);
  }

  /** Signs the document and pushes it; remembered so a stale phone gets it again. */
  async pushAddress(doc: AddressDocument): Promise<SignedAddress> {
    const signed = this.signAddress(doc);
    await this.desired.set(signed);
    await this.publishSigned(signed);
    return signed;
  }

  /** Validates and signs, without pushing: callers that batch store then publish. */
  signAddress(doc: AddressDocument): SignedAddress {
    const issues = validateAddress(doc);
    if (issues.length > 0) throw new Error(`invalid address: ${issues.map((i) => `${i.field} ${i.reason}`).join('; ')}`);
    return { v: 1, doc, sig: signDocument(doc, this.opts.privateKey) };
  }

  /** signAddress, and the document's hash (as the phone reports it), from one canonical form. */
  signAddressWithHash(doc: AddressDocument): { signed: SignedAddress; hash: string } {
    const issues = validateAddress(doc);
    if (issues.length > 0) throw new Error(`invalid address: ${issues.map((i) => `${i.field} ${i.reason}`).join('; ')}`);
    const text = Buffer.from(canonicalJson(doc), 'utf8');
    return {
      signed: { v: 1, doc, sig: sign(null, text, this.opts.privateKey).toString('base64url') },
      hash: createHash('sha256').update(text).digest('hex'),
    };
  }

  /** Publishes an already signed (and stored) address. */
  async publishSigned(signed: SignedAddress): Promise<void> {
    this.desiredVersions.set(signed.doc.deviceId, signed.doc.version);
    await this.publishRaw(signed.doc.deviceId, JSON.stringify(signed));
  }

  /** Signs a locations document and publishes it retained: a phone gets the latest when it subscribes. */
  async pushLocations(doc: LocationsDocument): Promise<SignedLocations> {
    const signed: SignedLocations = { v: 1, doc, sig: signDocument(doc, this.opts.privateKey) };
    const text = JSON.stringify(signed);
    if (Buffer.byteLength(text) > MAX_LOCATIONS_PAYLOAD_BYTES) {
      throw new Error(
        `locations push of ${Buffer.byteLength(text)} bytes exceeds the ${MAX_LOCATIONS_PAYLOAD_BYTES}-byte limit phones accept`,
      );
    }
    if (!this.client) throw new Error('server not started');
    // A phone's lists always on the same retained link: one connection keeps their order, and
    // two on different links could leave the older one retained for a phone that connects later.
    const links = this.retainedClients;
    const link = links.length > 0 ? links[retainedLinkOf(doc.deviceId, links.length)]! : this.client;
    await link.publishAsync(topicFor(doc.deviceId, 'locations/set'), text, { qos: 1, retain: true });
    return signed;
  }

  /** Publishes any bytes to a phone's address/set topic: tests use it to forge pushes. */
  async publishRaw(deviceId: string, payload: string | Buffer): Promise<void> {
    if (!this.client) throw new Error('server not started');
    await this.client.publishAsync(topicFor(deviceId, 'address/set'), payload, { qos: this.pushQos });
  }

  private onMessage(topic: string, payload: Buffer): void {
    const t = parseTopic(topic);
    if (!t) return;
    if (t.kind === 'events') {
      return; // handleMessage: stored, then acknowledged
    } else if (this.stopping) {
      this.notTaken++; // dropped: the phone reports again to whichever instance takes it next
    } else if (t.kind === 'status') {
      const d = decodePayload('status', payload);
      if (!d.ok) return void this.emit('rejected', t.deviceId, d.reason);
      const view = this.view(t.deviceId);
      view.online = d.value.state === 'online';
      view.lastSeen = new Date().toISOString();
      this.emit('status', t.deviceId, d.value);
      if (view.online) this.repushSoon(t.deviceId);
    } else if (t.kind === 'location') {
      const d = decodePayload('location', payload);
      if (!d.ok) return void this.emit('rejected', t.deviceId, d.reason);
      this.emit('location', t.deviceId, d.value);
    } else if (t.kind === 'address/state') {
      const d = decodePayload('address/state', payload);
      if (!d.ok) return void this.emit('rejected', t.deviceId, d.reason);
      const view = this.view(t.deviceId);
      view.appliedVersion = d.value.version;
      view.appliedHash = d.value.hash;
      this.emit('address-state', t.deviceId, d.value);
      this.repushSoon(t.deviceId);
    }
  }

  private onEventMessage(client: MqttClient, deviceId: string, payload: Buffer, callback: (err?: Error) => void): void {
    const d = decodePayload('events', payload);
    // Garbage is acknowledged (a redelivery would be the same garbage) and reported; the phone
    // is told too when it has an id, or it would keep it and send it again forever.
    if (!d.ok) {
      this.emit('rejected', deviceId, d.reason);
      this.ackRejected(deviceId, payload);
      callback();
      return;
    }
    if (d.value.deviceId !== deviceId) {
      this.emit('rejected', deviceId, 'event deviceId does not match its topic');
      callback();
      return;
    }
    const e = d.value;
    if (this.seen.has(e.id)) {
      this.emit('duplicate', e);
      this.ackToPhone(e);
      callback();
      return;
    }
    // Not acknowledged (no PUBACK, no ack to the phone): the phone's outbox sends it again.
    if (this.closing) {
      this.notTaken++;
      callback(new StoppingError(`event ${e.id}`));
      return;
    }
    const retries = this.opts.eventRetryMs ?? [50, 250, 1000];
    // Settles once the event is stored or given up: stopIntake() waits for it, retries included.
    let handled!: () => void;
    this.inFlight.add(new Promise<void>((resolve) => (handled = resolve)));
    // No retry once the stop began: left unacknowledged, the event comes again from the phone.
    const giveUp = (err: Error) => {
      this.notTaken++;
      callback(err);
      handled();
    };
    const attempt = async (n: number): Promise<void> => {
      if (n > 0 && this.closing) return giveUp(new StoppingError(`event ${e.id}`));
      let isNew: boolean;
      try {
        isNew = this.eventHandler ? await this.eventHandler(e) : true;
      } catch (err) {
        this.storeFailures++;
        if (this.closing) {
          this.opts.log.warn(
            { err, eventId: e.id, type: e.type },
            'event not stored while stopping: left unacknowledged, the phone sends it again',
          );
          return giveUp(err as Error);
        }
        if (n < retries.length) {
          this.opts.log.warn({ err, eventId: e.id, attempt: n + 1 }, 'event not stored; trying again');
          setTimeout(() => void attempt(n + 1), retries[n]);
          return;
        }
        // Not acknowledged: a new connection makes the broker send it again (persistent session).
        this.opts.log.error(
          { err, eventId: e.id, type: e.type },
          'event not stored: left unacknowledged, reconnecting so the broker sends it again',
        );
        callback(err as Error);
        // Over NATS nothing is redelivered by reconnecting: the phone's resend brings it back.
        if (client === this.client && !this.nats) setTimeout(() => client.stream?.destroy(), retries.at(-1) ?? 1000).unref();
        return handled();
      }
      this.remember(e.id);
      this.ackToPhone(e);
      callback();
      handled();
      this.emit(isNew ? 'event' : 'duplicate', e);
    };
    void attempt(0);
  }

  /** An event this server will never store (invalid): its id, if it has one, is acknowledged to the phone. */
  private ackRejected(deviceId: string, payload: Buffer): void {
    let id: unknown;
    try {
      id = (JSON.parse(payload.toString('utf8')) as { id?: unknown }).id;
    } catch {
      return;
    }
    if (typeof id === 'string' && id.length > 0 && id.length <= 128) this.ackToPhone({ deviceId, id } as EventPayload);
  }

  /** Tells the phone its event is stored: only then does it drop it from its outbox. Batched per turn. */
  private ackToPhone(e: EventPayload): void {
    const ids = this.acks.get(e.deviceId);
    if (ids) return void ids.push(e.id);
    this.acks.set(e.deviceId, [e.id]);
    if (this.acks.size === 1) setImmediate(() => this.flushAcks());
  }

  private flushAcks(): void {
    const acks = this.acks;
    this.acks = new Map();
    const client = this.client;
    if (!client) return;
    for (const [deviceId, ids] of acks) {
      for (let i = 0; i < ids.length; i += 1000) {
        // Lost with a connection: the phone sends the event again, and gets its ack then.
        client.publish(
          topicFor(deviceId, 'events/ack'),
          JSON.stringify({ v: 1, ids: ids.slice(i, i + 1000) }),
          { qos: this.pushQos },
          (err) => {
            if (err) this.opts.log.warn({ err: err.message, deviceId }, 'event ack to the phone not sent');
          },
        );
      }
    }
  }

  /** Checked with the other phones reported in this turn of the event loop. */
  private repushSoon(deviceId: string): void {
    this.staleChecks.add(deviceId);
    if (this.staleChecks.size === 1) this.inFlight.add(new Promise((r) => setImmediate(r)).then(() => this.repushStale()));
  }

  private async repushStale(): Promise<void> {
    const ids = [...this.staleChecks].filter((id) => this.phones.get(id)?.online);
    this.staleChecks.clear();
    // What this process issued it knows; the others' versions in one read, when the store can.
    const unknown = ids.filter((id) => !this.desiredVersions.has(id));
    let stored: Map<string, { desired: number; applied: number | null }> | null = null;
    try {
      if (unknown.length > 0 && this.desired.versions) stored = await this.desired.versions(unknown);
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message, phones: unknown.length }, 're-push check failed');
      return;
    }
    for (const deviceId of ids)
      await this.repushIfStale(deviceId, stored?.get(deviceId)).catch((err: Error) =>
        this.opts.log.warn({ err: err.message, deviceId }, 're-push failed'),
      );
  }

  /** `stored`: the store's versions for the phone, when it has versions(); else get() tells. */
  private async repushIfStale(deviceId: string, stored?: { desired: number; applied: number | null }): Promise<void> {
    const view = this.phones.get(deviceId);
    if (!view?.online) return;
    // Every state report lands here: decide on versions first, read the document only to re-push it.
    const wantVersion =
      this.desiredVersions.get(deviceId) ?? (this.desired.versions ? stored?.desired : (await this.desired.get(deviceId))?.doc.version);
    if (wantVersion === undefined) return;
    // Not reported to this process yet (a restart): what the phone reported before counts.
    const applied = view.appliedVersion ?? stored?.applied ?? null;
    if (applied !== null && applied >= wantVersion) return;
    const want = await this.desired.get(deviceId);
    if (!want) return;
    await this.publishSigned(want);
  }

  private view(deviceId: string): PhoneView {
    let v = this.phones.get(deviceId);
    if (!v) {
      v = { deviceId, online: false, appliedVersion: null, appliedHash: null, lastSeen: null };
      this.phones.set(deviceId, v);
    }
    return v;
  }

  /** True the first time an id is seen. */
  private remember(id: string): boolean {
    if (this.seen.has(id)) return false;
    this.seen.add(id);
    this.seenOrder.push(id);
    const max = this.opts.dedupeWindow ?? 100_000;
    while (this.seenOrder.length > max) this.seen.delete(this.seenOrder.shift()!);
    return true;
  }
}

// The phone's MQTT link to the provisioning server. One mqtt.js client per
// connection, so no hidden in-memory queue re-sends anything behind the outbox's
// back; reconnects with exponential backoff and jitter across the broker URLs.
// Over 400 lines: connecting, subscribing (and asking again for refused ones),
// inbound decoding and the large push's stream to the worker share one client's
// lifetime and its callbacks; split, each part would need the client's state.
import { readFileSync } from 'node:fs';
import type { Duplex, Writable } from 'node:stream';
import mqtt, { type IClientOptions, type MqttClient, type IPublishPacket } from 'mqtt';
import type { Logger } from '../../provisioning/common/log.js';
import type { AgentConfig } from '../config.js';
import type { OutboxDrainer } from './outbox-drainer.js';
import { PublishFramer, PublishFramerStream } from './publish-framer.js';
import type { PayloadStream, StreamedPayload } from '../location/locations-verifier.js';
import {
  decodePayload,
  MAX_LOCATIONS_PAYLOAD_BYTES,
  type PayloadOf,
  type TopicKind,
  type StatusPayload,
} from '../../provisioning/protocol/messages.js';
import { SERVER_PUBLISHES, parseTopic, topicFor, topicFilter } from '../../provisioning/protocol/topics.js';

export type LinkState = 'stopped' | 'connecting' | 'online' | 'offline';

export interface LinkStatus {
  state: LinkState;
  url: string | null;
  connectedAt: string | null;
  connects: number;
  lastError: string | null;
  /** Locations pushes whose body went from the socket to the worker as it arrived (publish-framer.ts). */
  streamed: number;
}

/** What the link does with a message the server sent; the composition root wires these. */
export interface InboundHandlers {
  addressSet(payload: Buffer): void;
  configSet(value: PayloadOf<'config/set'>): void;
  /**
   * The account's locations for recommendations (signed; verified by the handler). A large one
   * comes streamed into `largePayloads` (never assembled on this thread).
   */
  locationsSet?(payload: Buffer | StreamedPayload): void;
  command(name: string, value: PayloadOf<'cmd'>): Promise<unknown>;
  rejected(kind: TopicKind, reason: string): void;
}

export interface LinkDeps {
  config: AgentConfig;
  log: Logger;
  drainer: OutboxDrainer;
  handlers: InboundHandlers;
  agentVersion: string;
  random?: () => number;
  /**
   * Where the body of a large locations push goes as it arrives off the socket (the locations
   * verifier's worker). Without it, mqtt.js assembles every message as before.
   */
  largePayloads?: { openStream(length: number): PayloadStream };
}

/** A locations PUBLISH over this (its remaining length: topic, properties and body) is streamed to largePayloads; smaller ones come whole. */
export const STREAM_PAYLOAD_OVER = 64 * 1024;

const RETAINED_KINDS = ['address/state', 'location'] as const;
type RetainedKind = (typeof RETAINED_KINDS)[number];

export class MqttLink {
  private client: MqttClient | null = null;
  private stopped = true;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private resubscribeTimer: NodeJS.Timeout | null = null;
  private corked = false;
  /** Waiting for the first subscribe of a connection (or for stop): see whenSubscribed(). */
  private subscribedWaiters: (() => void)[] = [];
  private subscribedOnce = false;
  private readonly retained = new Map<RetainedKind, string>();
  private readonly tls: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  private readonly random: () => number;
  private readonly status: LinkStatus = {
    state: 'stopped',
    url: null,
    connectedAt: null,
    connects: 0,
    lastError: null,
    streamed: 0,
  };
  /** The framer of the current connection (null without largePayloads). */
  private framer: PublishFramer<StreamedPayload> | null = null;
  /** Large pushes streamed (checked at each packet): the benchmark's A/B turns it off. */
  streamLargePushes = true;
  /** Options of every publish, at broker.publishQos: mqtt.js copies them, never changes them. */
  private readonly publishOpts: { qos: 0 | 1 };
  private readonly retainOpts: { qos: 0 | 1; retain: boolean };

  constructor(private readonly deps: LinkDeps) {
    this.random = deps.random ?? Math.random;
    this.publishOpts = { qos: deps.config.broker.publishQos };
    this.retainOpts = { qos: deps.config.broker.publishQos, retain: deps.config.broker.retain };
    const t = deps.config.broker.tls;
    // Read once at start: nothing on the reconnect path touches the disk.
    this.tls = {
      ...(t?.ca ? { ca: readFileSync(t.ca) } : {}),
      ...(t?.cert ? { cert: readFileSync(t.cert) } : {}),
      ...(t?.key ? { key: readFileSync(t.key) } : {}),
    };
  }

  get state(): LinkStatus {
    return { ...this.status };
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  /**
   * Resolves once the link has been up and subscribed (at once if it has been), or when it
   * stops: for work that should not compete with the first connect for the CPU.
   */
  whenSubscribed(): Promise<void> {
    if (this.subscribedOnce || this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.subscribedWaiters.push(resolve));
  }

  private settleSubscribed(): void {
    this.subscribedOnce = true;
    for (const resolve of this.subscribedWaiters.splice(0)) resolve();
  }

  /** Publishes offline, then disconnects. Bounded by timeoutMs. */
  async stop(timeoutMs = 2000): Promise<void> {
    this.stopped = true;
    for (const resolve of this.subscribedWaiters.splice(0)) resolve();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.stopHeartbeat();
    this.clearResubscribe();
    const client = this.client;
    this.client = null;
    this.deps.drainer.detach();
    this.status.state = 'stopped';
    if (!client) return;
    const goodbye = new Promise<void>((resolve) => {
      if (!client.connected) return resolve();
      client.publish(this.topic('status'), JSON.stringify(this.statusPayload('offline')), this.retainOpts, () => resolve());
    });
    await withTimeout(goodbye, timeoutMs / 2);
    await withTimeout(new Promise<void>((resolve) => client.end(false, {}, () => resolve())), timeoutMs / 2);
    client.end(true);
  }

  /** Latest value of a retained topic: kept and republished on every connect. */
  publishRetained<K extends RetainedKind>(kind: K, value: PayloadOf<K>): void {
    const text = JSON.stringify(value);
    if (this.retained.get(kind) === text) return;
    this.retained.set(kind, text);
    if (this.client?.connected) this.client.publish(this.topic(kind), text, this.retainOpts);
  }

  private topic(kind: TopicKind, name?: string): string {
    return topicFor(this.deps.config.deviceId, kind, name);
  }

  private statusPayload(state: 'online' | 'offline'): StatusPayload {
    return state === 'online'
      ? { v: 1, state, deviceId: this.deps.config.deviceId, ts: new Date().toISOString(), agentVersion: this.deps.agentVersion }
      : { v: 1, state, deviceId: this.deps.config.deviceId };
  }

  private connect(): void {
    const { config, log } = this.deps;
    const urls = config.broker.urls;
    const url = urls[this.attempt % urls.length]!;
    this.status.state = 'connecting';
    this.status.url = url;
    const options: IClientOptions = {
      // The device id: brokers bind a login's client id to its user name (the device id).
      clientId: config.deviceId,
      protocolVersion: config.broker.protocolVersion,
      clean: true,
      keepalive: config.broker.keepaliveSec,
      connectTimeout: 10_000,
      reconnectPeriod: 0, // we reconnect ourselves, with backoff and jitter
      resubscribe: false,
      queueQoSZero: false,
      // mqtt-packet would otherwise pre-build 65,536 two-byte Buffers on the first
      // connect: about 60 ms of start-up and several MB of heap on a phone.
      writeCache: false,
      // MQTT 5: the broker must not send this phone a packet larger than the biggest payload
      // it accepts (a locations push) plus room for the topic and properties. A larger one
      // would be buffered whole before the size check could refuse it (memory on a phone);
      // the broker drops it instead (and logs it). Between the two bounds it still arrives,
      // and is refused and reported as too large.
      ...(config.broker.protocolVersion === 5 ? { properties: { maximumPacketSize: MAX_LOCATIONS_PAYLOAD_BYTES + 64 * 1024 } } : {}),
      will: { topic: this.topic('status'), payload: Buffer.from(JSON.stringify(this.statusPayload('offline'))), ...this.retainOpts },
      ...(config.broker.username !== undefined ? { username: config.broker.username } : {}),
      ...(config.broker.password !== undefined ? { password: config.broker.password } : {}),
      ...this.tls,
      ...(config.broker.tls ? { rejectUnauthorized: config.broker.tls.rejectUnauthorized } : {}),
    };
    // Built without connecting, so its stream can be wrapped first (below).
    const client = mqtt.connect(url, { ...options, manualConnect: true });
    const framer = this.deps.largePayloads ? this.newFramer() : null;
    if (framer) {
      // mqtt.js's own builder (TCP or TLS for this URL), its output wrapped. Typed private, public in fact.
      const c = client as unknown as { streamBuilder: (client: MqttClient) => Duplex };
      const build = c.streamBuilder;
      c.streamBuilder = (cl) => framedStream(build(cl), framer);
    }
    this.framer = framer;
    this.client = client;
    let up = false;

    client.on('connect', () => {
      if (client !== this.client) return;
      // mqtt.js leaves Nagle on: small QoS 1 packets would wait for delayed ACKs (~40 ms).
      (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
      up = true;
      this.attempt = 0;
      this.status.state = 'online';
      this.status.connectedAt = new Date().toISOString();
      this.status.connects++;
      this.status.lastError = null;
      log.info({ url }, 'link up');
      // SUBSCRIBE is written before any event, without waiting for its SUBACK: the broker
      // handles a client's packets in order, so events/ack is subscribed before the first
      // event arrives and the server's confirmation cannot be lost (it was, without this,
      // and the event waited resendMs to go again).
      this.subscribe(
        client,
        SERVER_PUBLISHES.map((k) => topicFilter(k, config.deviceId)),
        0,
        () => {
          this.settleSubscribed();
          // "online" is said once the phone can hear the server: a push sent on it is not lost.
          client.publish(this.topic('status'), JSON.stringify(this.statusPayload('online')), this.retainOpts);
          for (const [kind, text] of this.retained) client.publish(this.topic(kind), text, this.retainOpts);
          this.startHeartbeat(client);
        },
      );
      // Then events: the outbox waits for nothing else.
      const eventsTopic = this.topic('events');
      // mqtt.js's callback goes to the drainer as it is: no promise or closure more per event.
      this.deps.drainer.attach((row, done) => this.publishEvent(client, eventsTopic, row.payload, done));
    });
    client.on('message', (topic, payload, packet) => this.onMessage(client, topic, payload, packet));
    client.on('error', (err) => {
      this.status.lastError = err.message;
      log.warn({ err: err.message, url }, 'link error');
    });
    client.on('close', () => {
      // Bodies still arriving are dropped, and stand-ins mqtt.js will not deliver released.
      framer?.close();
      if (client !== this.client) return;
      if (up) log.warn({ url }, 'link down');
      up = false;
      this.stopHeartbeat();
      this.clearResubscribe();
      this.deps.drainer.detach();
      client.end(true);
      this.client = null;
      if (!this.stopped) this.scheduleReconnect();
    });
    client.connect();
  }

  private newFramer(): PublishFramer<StreamedPayload> {
    const { config } = this.deps;
    const sink = this.deps.largePayloads!;
    return new PublishFramer<StreamedPayload>({
      topic: this.topic('locations/set'),
      protocolVersion: config.broker.protocolVersion,
      threshold: STREAM_PAYLOAD_OVER,
      maxBody: MAX_LOCATIONS_PAYLOAD_BYTES,
      sink: { open: (length) => sink.openStream(length), discard: (h) => h.release() },
      enabled: () => this.streamLargePushes,
    });
  }

  /**
   * SUBSCRIBEs the filters; those the broker refuses (granted 0x80) are asked for again with
   * backoff while this connection lasts. A NATS node refuses a QoS 1 subscription while
   * JetStream, after another node's loss, cannot create its consumer in time: without a retry
   * the phone stayed connected but never heard events/ack or a push (failover-cluster.test.ts).
   * `then` runs after the first answer, whatever it was.
   */
  private subscribe(client: MqttClient, filters: string[], attempt: number, then?: () => void): void {
    // broker.subscribeQos (1 by default; 0 on NATS, where each QoS 1 subscription is a
    // replicated JetStream consumer): a message lost with the connection is lost at either QoS
    // on a clean session, and the server's re-push and the outbox's resend cover it.
    client.subscribe(filters, { qos: this.deps.config.broker.subscribeQos }, (err, _granted, packet) => {
      if (client !== this.client) return;
      const granted = packet?.granted;
      // Without a SUBACK to read (a protocol error), every filter is asked for again.
      const refused = err ? filters.filter((_f, i) => granted === undefined || ((granted[i] as number | undefined) ?? 0x80) >= 0x80) : [];
      if (refused.length > 0) {
        const { reconnectMinMs, reconnectMaxMs } = this.deps.config.broker;
        const delay = Math.min(reconnectMaxMs, reconnectMinMs * 2 ** Math.min(attempt, 16));
        this.deps.log.warn(
          { err: err?.message, filters: refused, attempt: attempt + 1, retryInMs: delay },
          'subscribe refused: asking again',
        );
        this.clearResubscribe();
        this.resubscribeTimer = setTimeout(() => {
          this.resubscribeTimer = null;
          if (client === this.client && client.connected) this.subscribe(client, refused, attempt + 1);
        }, delay);
        this.resubscribeTimer.unref?.();
      }
      then?.();
    });
  }

  private clearResubscribe(): void {
    if (this.resubscribeTimer) clearTimeout(this.resubscribeTimer);
    this.resubscribeTimer = null;
  }

  /** The retained "online" again every heartbeatSec: the server's last-seen sweep sees the phone alive. */
  private startHeartbeat(client: MqttClient): void {
    this.stopHeartbeat();
    const sec = this.deps.config.broker.heartbeatSec;
    if (!sec) return;
    this.heartbeatTimer = setInterval(() => {
      if (client !== this.client || !client.connected) return;
      client.publish(this.topic('status'), JSON.stringify(this.statusPayload('online')), this.retainOpts);
    }, sec * 1000);
    this.heartbeatTimer.unref();
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  private scheduleReconnect(): void {
    const { reconnectMinMs, reconnectMaxMs } = this.deps.config.broker;
    const cap = Math.min(reconnectMaxMs, reconnectMinMs * 2 ** Math.min(this.attempt, 16));
    // Half fixed, half random: a site's phones don't all come back in the same instant.
    const delay = Math.round(cap / 2 + (this.random() * cap) / 2);
    this.attempt++;
    this.status.state = 'offline';
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.stopped) this.connect();
    }, delay);
    this.reconnectTimer.unref?.();
  }

  private publishEvent(client: MqttClient, topic: string, payload: string, done: (err?: Error) => void): void {
    this.corkForThisTick(client);
    client.publish(topic, payload, this.publishOpts, done);
  }

  /** Publishes made in one turn of the event loop leave in one write, not one each. */
  private corkForThisTick(client: MqttClient): void {
    const stream = client.stream as { cork?: () => void; uncork?: () => void } | undefined;
    if (this.corked || !stream?.cork || !stream.uncork) return;
    this.corked = true;
    stream.cork();
    process.nextTick(() => {
      this.corked = false;
      stream.uncork!();
    });
  }

  private onMessage(client: MqttClient, topic: string, payload: Buffer, packet: IPublishPacket): void {
    const { handlers, log } = this.deps;
    const parsed = parseTopic(topic);
    if (!parsed || parsed.deviceId !== this.deps.config.deviceId) {
      log.warn({ topic }, 'message on an unexpected topic ignored');
      return;
    }
    try {
      switch (parsed.kind) {
        case 'address/set':
          handlers.addressSet(payload);
          return;
        case 'locations/set': {
          // Retained is fine: it is state, and a replay of an older version is refused by version.
          const standIn = this.framer?.take(payload) ?? null;
          if (standIn?.kind === 'too-large') {
            // Its body was dropped as it arrived: refused as the decoder refuses a payload over the bound.
            const reason = `payload of ${standIn.length} bytes exceeds ${MAX_LOCATIONS_PAYLOAD_BYTES}`;
            log.warn({ code: 'too-large', reason }, 'locations push rejected; the stored locations are kept');
            handlers.rejected('locations/set', reason);
            return;
          }
          if (standIn) this.status.streamed++;
          handlers.locationsSet?.(standIn ? standIn.handle : payload);
          return;
        }
        case 'config/set': {
          if (packet.retain) {
            log.warn({ topic }, 'retained config/set ignored');
            return;
          }
          const d = decodePayload('config/set', payload);
          if (!d.ok) {
            handlers.rejected('config/set', d.reason);
            return;
          }
          handlers.configSet(d.value);
          return;
        }
        case 'events/ack': {
          // The server stored these events: the outbox may let them go.
          const d = decodePayload('events/ack', payload);
          if (!d.ok) {
            handlers.rejected('events/ack', d.reason);
            return;
          }
          this.deps.drainer.serverAck(d.value.ids);
          return;
        }
        case 'cmd': {
          // A retained command would run again on every reconnect.
          if (packet.retain) {
            log.warn({ topic }, 'retained command ignored');
            return;
          }
          const d = decodePayload('cmd', payload);
          if (!d.ok) {
            handlers.rejected('cmd', d.reason);
            return;
          }
          this.runCommand(client, parsed.name!, d.value);
          return;
        }
        default:
          log.warn({ topic }, 'message on a phone-to-server topic ignored');
      }
    } catch (err) {
      // A handler bug must not take the link (and with it the outbox) down.
      log.error({ err, topic }, 'inbound message handler failed');
    }
  }

  private runCommand(client: MqttClient, name: string, cmd: PayloadOf<'cmd'>): void {
    const reply = (body: { ok: boolean; result?: unknown; error?: string }) => {
      if (client.connected) {
        client.publish(this.topic('response', name), JSON.stringify({ v: 1, correlationId: cmd.correlationId, ...body }), this.publishOpts);
      }
    };
    this.deps.handlers.command(name, cmd).then(
      (result) => reply({ ok: true, result }),
      (err: Error) => reply({ ok: false, error: err.message }),
    );
  }
}

/**
 * The broker's stream as mqtt.js builds it (TCP or TLS, for each URL), with its readable side
 * passed through the framer: mqtt.js reads a stream only by piping it into its parser, so
 * `pipe` is the one thing changed. Writes, cork, setNoDelay, end, destroy and the socket's
 * events are the socket's own.
 */
function framedStream(socket: Duplex, framer: PublishFramer<StreamedPayload>): Duplex {
  const stage = new PublishFramerStream(framer);
  const pipe = socket.pipe.bind(socket);
  socket.pipe = (<T extends NodeJS.WritableStream>(dest: T, opts?: { end?: boolean }) => {
    pipe(stage);
    return stage.pipe(dest as unknown as Writable, opts) as unknown as T;
  }) as typeof socket.pipe;
  return socket;
}

async function withTimeout(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

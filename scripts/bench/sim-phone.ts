// The simulated phone the server benchmarks push to (server.bench.ts part 1, scale.bench.ts):
// one raw MQTT socket per phone, mqtt-packet framing, the agent's checks on each push and
// its retained address/state report. Light enough for 100,000 of them over a few processes.
import net from 'node:net';
import mqttPacket from 'mqtt-packet';
import { type publicKeyFromText, verifyDocument, documentHash } from '../../provisioning/protocol/signing.js';
import { validateAddress, type AddressDocument } from '../../provisioning/protocol/address.js';

export class SimPhoneError extends Error {
  override name = 'SimPhoneError';
}

export interface SimPhoneConnect {
  port: number;
  host?: string;
  /** 5 against Mosquitto; 4 against the embedded aedes broker, which has no MQTT 5. */
  protocolVersion?: 4 | 5;
  /** The source address: one address has only ~28,000 ephemeral ports. */
  localAddress?: string;
  /** The agent's `broker.subscribeQos`: 1 (Mosquitto), 0 on NATS, where each QoS 1 subscription is a replicated consumer. */
  subscribeQos?: 0 | 1;
  /** The agent's `broker.publishQos`: the QoS of the phone's own publishes (status, reports, events); 1, or 0 on NATS. */
  publishQos?: 0 | 1;
  /** The agent's `broker.retain`: status and state reports retained (true), or not (false, on NATS). */
  retain?: boolean;
}

/** No CONNACK and SUBACK within this: the attempt fails. */
const CONNECT_TIMEOUT_MS = 30_000;

/** A phone as small as it can be: one socket, mqtt-packet framing, real signature checks. */
export class SimPhone {
  private sock!: net.Socket;
  private parser!: ReturnType<typeof mqttPacket.parser>;
  private version: 4 | 5 = 5;
  private nextId = 1;
  private publishQos: 0 | 1 = 1;
  private retainReports = true;
  applied = 0;
  configSeen = 0;
  /** Times the broker closed this phone's connection after it was up. */
  drops = 0;
  /** Called when the broker closes the connection after it was up: the worker connects again, as an agent does. */
  onDrop: (() => void) | null = null;
  verify: boolean;

  constructor(
    readonly id: string,
    private readonly password: string,
    private readonly key: ReturnType<typeof publicKeyFromText>,
    private readonly onApplied: (p: SimPhone, version: number) => void,
    private readonly onConfig: (p: SimPhone) => void,
    verify: boolean,
  ) {
    this.verify = verify;
  }

  connect(target: number | SimPhoneConnect): Promise<void> {
    const t = typeof target === 'number' ? { port: target } : target;
    this.version = t.protocolVersion ?? 5;
    this.publishQos = t.publishQos ?? 1;
    this.retainReports = t.retain ?? true;
    // This attempt's own socket and parser: a late packet of an abandoned attempt must not reach the next one's.
    const parser = mqttPacket.parser({ protocolVersion: this.version });
    const sock = net.connect({
      port: t.port,
      host: t.host ?? '127.0.0.1',
      ...(t.localAddress ? { localAddress: t.localAddress } : {}),
    });
    this.parser = parser;
    this.sock = sock;
    return new Promise<void>((resolveOk, rejectErr) => {
      let up = false;
      // A broker that never answers (a NATS node still making its MQTT streams) fails the attempt, not the run.
      const timer = setTimeout(
        () => reject(new SimPhoneError(`${this.id}: no CONNACK and SUBACK within ${CONNECT_TIMEOUT_MS} ms`)),
        CONNECT_TIMEOUT_MS,
      );
      const reject = (err: Error) => {
        clearTimeout(timer);
        sock.destroy();
        rejectErr(err);
      };
      sock.setNoDelay(true);
      sock.on('error', reject);
      sock.on('data', (d) => parser.parse(d));
      sock.once('close', () => {
        // Closed by the broker: before the handshake ended (a login it timed out, say) the attempt
        // fails now; after it, the phone was dropped.
        if (!up) return reject(new SimPhoneError(`${this.id}: closed before CONNACK and SUBACK`));
        if (sock !== this.sock) return;
        this.drops++;
        this.onDrop?.();
      });
      parser.on('packet', (p) => {
        if (p.cmd === 'connack') {
          // MQTT 5 says reasonCode, 3.1.1 returnCode.
          const code = (p as { reasonCode?: number }).reasonCode ?? (p as { returnCode?: number }).returnCode;
          if (code) return reject(new SimPhoneError(`${this.id}: connack ${code}`));
          const qos = t.subscribeQos ?? 1;
          this.send({
            cmd: 'subscribe',
            messageId: this.nextId++,
            subscriptions: [
              { topic: `e911/v1/${this.id}/address/set`, qos },
              { topic: `e911/v1/${this.id}/config/set`, qos },
            ],
          });
          this.publish(`e911/v1/${this.id}/status`, JSON.stringify({ v: 1, state: 'online', deviceId: this.id }), this.retainReports);
        } else if (p.cmd === 'suback') {
          // A refused filter (0x80) would leave the phone deaf to its pushes: the round would never end.
          const granted = (p as mqttPacket.ISubackPacket).granted as number[];
          if (granted.some((g) => g >= 0x80)) reject(new SimPhoneError(`${this.id}: subscription refused (${granted.join(', ')})`));
          else {
            up = true;
            clearTimeout(timer);
            resolveOk();
          }
        } else if (p.cmd === 'publish') this.onPublish(p as mqttPacket.IPublishPacket);
      });
      this.send({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: this.version,
        clientId: this.id,
        clean: true,
        keepalive: 0,
        username: this.id,
        password: Buffer.from(this.password),
      });
    });
  }

  /** A publish under this phone's login (its events, its reports), at its publishQos. */
  publish(topic: string, payload: string, retain = false): void {
    if (this.publishQos === 0) {
      this.send({ cmd: 'publish', topic, payload, qos: 0, retain });
      return;
    }
    this.send({ cmd: 'publish', topic, payload, qos: 1, retain, messageId: this.nextId++ });
    // Packet ids are 16-bit and never 0.
    if (this.nextId > 0xffff) this.nextId = 1;
  }

  private send(p: Record<string, unknown>): void {
    this.sock.write(mqttPacket.generate(p as unknown as mqttPacket.Packet, { protocolVersion: this.version }));
  }

  private onPublish(p: mqttPacket.IPublishPacket): void {
    if (p.qos === 1) this.send({ cmd: 'puback', messageId: p.messageId });
    if (p.topic.endsWith('/config/set')) {
      this.configSeen++;
      this.onConfig(this);
      return;
    }
    if (!p.topic.endsWith('/address/set')) return;
    // What the agent does with a push: decode, verify, validate, then report the state.
    const { doc, sig } = JSON.parse(p.payload.toString()) as { doc: AddressDocument; sig: string };
    if (
      doc.deviceId !== this.id ||
      typeof sig !== 'string' ||
      (this.verify && (!verifyDocument(doc, sig, this.key) || validateAddress(doc).length > 0))
    ) {
      throw new SimPhoneError(`${this.id}: bad push`);
    }
    if (doc.version <= this.applied) return;
    this.applied = doc.version;
    const state = { v: 1, version: doc.version, hash: documentHash(doc), appliedAt: new Date().toISOString() };
    this.publish(`e911/v1/${this.id}/address/state`, JSON.stringify(state), this.retainReports);
    this.onApplied(this, doc.version);
  }

  close(): void {
    this.onDrop = null;
    this.sock?.destroy();
  }
}

/**
 * Connects phone `i` as an agent would: a failed attempt is tried again on the next of `ports`
 * (a cluster's nodes) until `retryForMs` has passed since the first. Resolves with the retries.
 */
export async function connectRetrying(
  phone: SimPhone,
  i: number,
  ports: readonly number[],
  opts: Omit<SimPhoneConnect, 'port'>,
  retryForMs: number,
): Promise<number> {
  const deadline = Date.now() + retryForMs;
  for (let attempt = 0; ; attempt++) {
    try {
      await phone.connect({ ...opts, port: ports[(i + attempt) % ports.length]! });
      return attempt;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      // As an agent's backoff: an attempt closed at once is not repeated at once.
      await new Promise((r) => setTimeout(r, 500 + Math.random() * 1000));
    }
  }
}

/** Runs fn over items with at most n at a time (a burst of connects overruns the listen backlog). */
export async function windowed<T>(items: readonly T[], n: number, fn: (x: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (i < items.length) await fn(items[i++]!);
    }),
  );
}

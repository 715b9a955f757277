// Phones' reports through a NATS queue group, for a NATS cluster as the broker: NATS's MQTT
// layer has no $share, and a persistent MQTT session does not reliably outlive its node
// (docs/scale.md). Every server instance joins one queue group on the subjects the phones'
// MQTT topics map to, and NATS gives each message to one member. A core queue group is at
// most once: an event in flight to an instance that dies is lost to the server, and the
// phone's outbox sends it again until the server's events/ack (sent over MQTT) arrives.
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { PHONE_PUBLISHES, topicFilter } from '../protocol/topics.js';
import { natsSubject, topicOfSubject } from './broker-auth.js';

export interface NatsIntakeOptions {
  /** nats://host:port of each node (the client fails over between them). */
  servers: readonly string[];
  /** The queue group every instance of one deployment joins. */
  queue: string;
  user?: string;
  pass?: string;
  /** The connection's name, seen in NATS's monitoring (the instance's broker user). */
  name?: string;
  log: Logger;
}

/** The subjects the server takes: every kind a phone publishes but command responses (it sends no commands). */
export function intakeSubjects(): string[] {
  return PHONE_PUBLISHES.filter((k) => k !== 'response').map((k) => natsSubject(topicFilter(k)));
}

export class NatsIntake {
  private nc: NatsConnection | null = null;
  private subs: Subscription[] = [];

  constructor(private readonly opts: NatsIntakeOptions) {}

  get connected(): boolean {
    return this.nc !== null && !this.nc.isClosed();
  }

  /** Connects and subscribes; each message is handed on as its MQTT topic and payload. */
  async start(onMessage: (topic: string, payload: Buffer) => void): Promise<void> {
    const { opts } = this;
    const nc = await connect({
      servers: [...opts.servers],
      ...(opts.user ? { user: opts.user, pass: opts.pass ?? '' } : {}),
      ...(opts.name ? { name: opts.name } : {}),
      // A server never gives up on its broker: it reconnects to whichever node answers.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
    });
    this.nc = nc;
    for (const subject of intakeSubjects()) {
      this.subs.push(
        nc.subscribe(subject, {
          queue: opts.queue,
          callback: (err, m) => {
            if (err) return void opts.log.error({ err: err.message, subject }, 'NATS subscription failed');
            onMessage(topicOfSubject(m.subject), Buffer.from(m.data));
          },
        }),
      );
    }
    await nc.flush();
    void (async () => {
      for await (const s of nc.status()) opts.log.info({ type: s.type }, 'NATS link status');
    })().catch((err: Error) => opts.log.warn({ err: err.message }, 'NATS status stream ended'));
  }

  /** Leaves the queue group first (drain: what was delivered is handled), then closes. */
  async stop(): Promise<void> {
    const nc = this.nc;
    this.nc = null;
    this.subs = [];
    if (nc && !nc.isClosed()) await nc.drain();
  }
}

// The agent's configuration: one zod schema, a JSON file, environment overrides.
// Every bad key is named in one ConfigError, with where its value came from.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { isValidDeviceId } from '../provisioning/protocol/topics.js';
import { dialPlanSchema, emergencySchema, sipSchema } from './emergency/config.js';
import { diagnosticsSchema, handsetSchema } from './handset/config.js';
import { networkSchema } from './location/config.js';

const brokerUrl = z.string().regex(/^(mqtts?|wss?|tcp|tls):\/\/[^\s]+$/, 'must be a URL like mqtt://host:1883 or mqtts://host:8883');

const configFields = z.strictObject({
  deviceId: z.string().refine(isValidDeviceId, 'must be 1-64 of letters, digits, dot, dash, underscore'),
  dataDir: z.string().min(1).default('/var/lib/e911-agent'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** base64url raw Ed25519 public key of the provisioning server. */
  serverPublicKey: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'must be 43 base64url characters (a raw Ed25519 key)'),
  broker: z
    .strictObject({
      /** Tried in turn on each reconnect, for a broker cluster. */
      urls: z.array(brokerUrl).min(1),
      protocolVersion: z.union([z.literal(4), z.literal(5)]).default(5),
      /**
       * QoS the phone asks for on its subscriptions. 0 for NATS: there each QoS 1 subscription
       * is a replicated JetStream consumer (a Raft group per subscription, per phone): ~10x the
       * CPU and memory per node, 8x the time to connect 3,000 phones (docs/scale.md). The clean
       * session, the server's re-push of a stale address and the outbox's resend until
       * events/ack already cover a message lost with the connection.
       */
      subscribeQos: z.union([z.literal(0), z.literal(1)], { message: 'must be 0 or 1' }).default(1),
      /**
       * QoS of everything the phone publishes (events, reports, status, will). 0 for NATS: a
       * node writes each QoS 1 publish to a replicated stream before its PUBACK, which nobody
       * reads (the server reads phones through a core queue group); under a push's 45,000
       * reports those writes time out and the node drops the phones (docs/scale.md). Needs
       * outbox.serverConfirms 'all': events/ack is then what says an event arrived.
       */
      publishQos: z.union([z.literal(0), z.literal(1)], { message: 'must be 0 or 1' }).default(1),
      /**
       * Status, will and reports published retained (true). false for NATS: the servers read the
       * phones through a core queue group, which never gets a retained message, and a node writes
       * each retained one to a replicated stream: one write per phone per push, read by nobody.
       */
      retain: z.boolean().default(true),
      username: z.string().optional(),
      password: z.string().optional(),
      tls: z
        .strictObject({
          ca: z.string().optional(),
          cert: z.string().optional(),
          key: z.string().optional(),
          rejectUnauthorized: z.boolean().default(true),
        })
        .optional(),
      keepaliveSec: z.number().int().min(5).max(600).default(30),
      reconnectMinMs: z.number().int().min(50).default(500),
      reconnectMaxMs: z.number().int().min(100).default(30_000),
      /**
       * Says "online" again this often while connected (0: only on connect). For a clustered
       * broker (NATS), which does not publish a phone's will when its node dies: the server
       * marks a phone offline after a silence longer than this (its offlineAfterMs).
       */
      heartbeatSec: z.number().int().min(0).max(86_400).default(0),
    })
    .refine((b) => !b.tls || !b.tls.cert === !b.tls.key, { message: 'tls.cert and tls.key go together', path: ['tls'] }),
  control: z
    .strictObject({
      socketPath: z.string().min(1).default('/run/e911-agent/control.sock'),
      /** Group allowed to use e911ctl besides root; the socket is made 0660 for it. */
      group: z.string().optional(),
    })
    .default({ socketPath: '/run/e911-agent/control.sock' }),
  outbox: z
    .strictObject({
      /** Bound on queued events; emergency and test-call events are never evicted. */
      maxEvents: z.number().int().min(100).max(1_000_000).default(10_000),
      /** QoS 1 publishes in flight at once while draining. */
      window: z.number().int().min(1).max(1000).default(64),
      /** An emergency or test-call event the server has not confirmed storing (events/ack) is sent again after this. */
      serverAckTimeoutMs: z.number().int().min(50).max(3_600_000).default(30_000),
      /**
       * Which events stay in the outbox until the server confirms storing them (events/ack):
       * 'all', or 'emergency' (emergency and test-call only, the rest leave on the broker's
       * PUBACK) for a server older than events/ack for every event.
       */
      serverConfirms: z.enum(['all', 'emergency']).default('all'),
    })
    .default({ maxEvents: 10_000, window: 64, serverAckTimeoutMs: 30_000, serverConfirms: 'all' }),
  /**
   * While the store cannot be opened (permission, full disk, busy) or written, the agent
   * places 911 calls, holds events in memory and tries again; a part not needed for 911 that
   * fails to start (control socket, location) is tried again too: the wait doubles from minMs to maxMs.
   */
  recovery: z
    .strictObject({
      minMs: z.number().int().min(10).max(600_000).default(1000),
      maxMs: z.number().int().min(10).max(3_600_000).default(60_000),
    })
    .default({ minMs: 1000, maxMs: 60_000 }),
  /** systemd watchdog interval override; by default half of WATCHDOG_USEC. */
  watchdogMs: z.number().int().positive().optional(),
  /** Emergency numbers, routes, failover, suppression window, location (agent/emergency/config.ts). */
  emergency: emergencySchema,
  dialPlan: dialPlanSchema,
  /** SIP transport, bound/public address, account (agent/emergency/config.ts). */
  sip: sipSchema,
  /** Keypad, display and LEDs: the MCU's serial port, or the console (agent/handset/config.ts). */
  handset: handsetSchema,
  /** 933 diagnostics thresholds and the system inventory delay. */
  diagnostics: diagnosticsSchema,
  /** Network watching, LLDP-MED, DHCP hand-over, HELD, location checks (agent/location/config.ts). */
  network: networkSchema,
});

export const configSchema = configFields.refine((c) => c.broker.publishQos === 1 || c.outbox.serverConfirms === 'all', {
  message: "0 needs outbox.serverConfirms 'all': at QoS 0 only the server's events/ack says an event arrived",
  path: ['broker', 'publishQos'],
});

export type AgentConfig = z.infer<typeof configSchema>;

type EnvParser = (raw: string) => unknown;
const text: EnvParser = (s) => s;
const list: EnvParser = (s) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
const int: EnvParser = (s) => (/^-?\d+$/.test(s.trim()) ? Number(s) : s);
/** 'null', one ALSA name for both directions, or "capture,playback". */
const sound: EnvParser = (s) => {
  const t = s.trim();
  if (t === 'null') return t;
  const [capture, playback = capture] = t.split(',').map((x) => x.trim());
  return { capture, playback };
};
const bool: EnvParser = (s) => (/^(1|true|on|yes)$/i.test(s.trim()) ? true : /^(0|false|off|no)$/i.test(s.trim()) ? false : s);

/** Environment variables that override the file, and the key each sets. */
export const ENV_OVERRIDES: Record<string, { path: string[]; parse: EnvParser }> = {
  E911_DEVICE_ID: { path: ['deviceId'], parse: text },
  E911_DATA_DIR: { path: ['dataDir'], parse: text },
  E911_LOG_LEVEL: { path: ['logLevel'], parse: text },
  E911_SERVER_PUBLIC_KEY: { path: ['serverPublicKey'], parse: text },
  E911_BROKER_URLS: { path: ['broker', 'urls'], parse: list },
  E911_MQTT_VERSION: { path: ['broker', 'protocolVersion'], parse: int },
  E911_MQTT_SUBSCRIBE_QOS: { path: ['broker', 'subscribeQos'], parse: int },
  E911_MQTT_PUBLISH_QOS: { path: ['broker', 'publishQos'], parse: int },
  E911_MQTT_RETAIN: { path: ['broker', 'retain'], parse: bool },
  E911_BROKER_USERNAME: { path: ['broker', 'username'], parse: text },
  E911_BROKER_PASSWORD: { path: ['broker', 'password'], parse: text },
  E911_TLS_CA: { path: ['broker', 'tls', 'ca'], parse: text },
  E911_TLS_CERT: { path: ['broker', 'tls', 'cert'], parse: text },
  E911_TLS_KEY: { path: ['broker', 'tls', 'key'], parse: text },
  E911_CONTROL_SOCKET: { path: ['control', 'socketPath'], parse: text },
  E911_CONTROL_GROUP: { path: ['control', 'group'], parse: text },
  E911_SIP_BIND: { path: ['sip', 'bindAddress'], parse: text },
  E911_SIP_PUBLIC: { path: ['sip', 'publicAddress'], parse: text },
  E911_SIP_PORT: { path: ['sip', 'port'], parse: int },
  E911_SOUND: { path: ['sip', 'sound'], parse: sound },
  E911_NET_BACKEND: { path: ['network', 'backend'], parse: text },
  E911_NET_INTERFACES: { path: ['network', 'interfaces'], parse: list },
  E911_LLDP: { path: ['network', 'lldp', 'enabled'], parse: bool },
  E911_LLDP_SOCKET: { path: ['network', 'lldp', 'socketPath'], parse: text },
  E911_HELD_URL: { path: ['network', 'held', 'url'], parse: text },
  E911_HANDSET: { path: ['handset', 'backend'], parse: text },
  E911_MCU_PORT: { path: ['handset', 'path'], parse: text },
  E911_MCU_BAUD: { path: ['handset', 'baudRate'], parse: int },
  E911_EMERGENCY_PRIMARY: { path: ['emergency', 'routes', 'primary'], parse: text },
  E911_EMERGENCY_SECONDARY: { path: ['emergency', 'routes', 'secondary'], parse: text },
  E911_EMERGENCY_FALLBACK: { path: ['emergency', 'routes', 'fallback'], parse: text },
};

function setPath(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let cur = obj;
  for (const key of path.slice(0, -1)) {
    const next = cur[key];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) cur[key] = {};
    cur = cur[key] as Record<string, unknown>;
  }
  cur[path[path.length - 1]!] = value;
}

/** Validates raw config (file contents already parsed) with env overrides applied. */
export function parseConfig(raw: unknown, env: NodeJS.ProcessEnv = {}): AgentConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError([{ key: '(file)', reason: 'must be a JSON object' }]);
  }
  const merged = structuredClone(raw) as Record<string, unknown>;
  const fromEnv = new Map<string, string>();
  for (const [name, { path, parse }] of Object.entries(ENV_OVERRIDES)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    setPath(merged, path, parse(value));
    fromEnv.set(path.join('.'), name);
  }
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => {
        const key = issue.path.join('.') || '(root)';
        const envName = [...fromEnv].find(([p]) => key === p || key.startsWith(`${p}.`))?.[1];
        return { key: envName ? `${key} (from ${envName})` : key, reason: issue.message };
      }),
    );
  }
  return result.data;
}

export function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv): AgentConfig {
  let raw: unknown = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError([{ key: '(file)', reason: `cannot read ${file}: ${(err as Error).message}` }]);
    }
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new ConfigError([{ key: '(file)', reason: `${file} is not valid JSON: ${(err as Error).message}` }]);
    }
  }
  return parseConfig(raw, env);
}

// The options of `e911-server run` (flags, with environment fallbacks) checked by one zod
// schema: every bad key is named in one ConfigError, with the flag or variable it came from.
import { z } from 'zod';
import { ConfigError } from '../common/errors.js';

const port = z.coerce
  .number({ error: 'must be a port number' })
  .int('must be a whole port number')
  .min(0, 'must be 0..65535')
  .max(65535, 'must be 0..65535');
const nonEmpty = z.string().min(1, 'must not be empty');
const list = z.string().transform((s) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean),
);

export const runConfigSchema = z
  .strictObject({
    // One URL, or several comma-separated (a cluster's nodes: the link fails over between them).
    broker: list
      .pipe(
        z.array(z.string().regex(/^(mqtts?|wss?):\/\//, 'must be mqtt://, mqtts://, ws:// or wss:// URLs')).min(1, 'must name a broker'),
      )
      .optional(),
    nats: list
      .pipe(z.array(z.string().regex(/^(nats|tls):\/\//, 'must be nats:// or tls:// URLs')).min(1, 'must name a NATS node'))
      .optional(),
    offlineAfterSec: z.coerce.number({ error: 'must be a number of seconds' }).int().min(0).optional(),
    resendAfterSec: z.coerce.number({ error: 'must be a number of seconds' }).int().min(0).optional(),
    mqttPort: port,
    mqttHost: nonEmpty,
    mqttVersion: z
      .enum(['4', '5'], { error: 'must be 4 or 5' })
      .transform((v): 4 | 5 => (v === '4' ? 4 : 5))
      .optional(),
    mqttTlsPort: port.optional(),
    mqttTlsHost: nonEmpty.optional(),
    mqttTlsCert: nonEmpty.optional(),
    mqttTlsKey: nonEmpty.optional(),
    mqttTlsCa: nonEmpty.optional(),
    httpPort: port,
    httpHost: nonEmpty,
    tlsCert: nonEmpty.optional(),
    tlsKey: nonEmpty.optional(),
    brokerUsername: nonEmpty.optional(),
    brokerCert: nonEmpty.optional(),
    brokerKey: nonEmpty.optional(),
    allowedOrigins: list.optional(),
    allowNotifyTargets: list.optional(),
    sipHost: nonEmpty.optional(),
    sipPublicHost: nonEmpty.optional(),
    sipPort: port.optional(),
    rtpPort: port.optional(),
  })
  .superRefine((c, ctx) => {
    // Pairs that only work together: name the missing half.
    const pair = (a: keyof typeof c, b: keyof typeof c) => {
      if (c[a] !== undefined && c[b] === undefined) ctx.addIssue({ code: 'custom', path: [b], message: `required with ${String(a)}` });
      if (c[b] !== undefined && c[a] === undefined) ctx.addIssue({ code: 'custom', path: [a], message: `required with ${String(b)}` });
    };
    pair('tlsCert', 'tlsKey');
    if (c.nats !== undefined && c.broker === undefined)
      ctx.addIssue({ code: 'custom', path: ['broker'], message: "required with --nats (the nodes' MQTT URLs)" });
    pair('brokerCert', 'brokerKey');
    if (c.mqttTlsPort !== undefined) {
      for (const k of ['mqttTlsCert', 'mqttTlsKey'] as const) {
        if (c[k] === undefined) ctx.addIssue({ code: 'custom', path: [k], message: 'required with mqttTlsPort' });
      }
    }
  });

export type RunConfig = z.infer<typeof runConfigSchema>;

type Flags = Partial<Record<string, string | boolean>>;

/** Each key: the flag, then the environment variable it falls back to, then the default. */
const SOURCES: Record<keyof RunConfig, { flag: string; env?: string; def?: string }> = {
  broker: { flag: 'broker' },
  nats: { flag: 'nats', env: 'E911_NATS_SERVERS' },
  offlineAfterSec: { flag: 'offline-after', env: 'E911_OFFLINE_AFTER_SEC' },
  resendAfterSec: { flag: 'resend-after', env: 'E911_RESEND_AFTER_SEC' },
  mqttPort: { flag: 'port', env: 'E911_MQTT_PORT', def: '1883' },
  mqttHost: { flag: 'host', def: '127.0.0.1' },
  mqttVersion: { flag: 'mqtt-version' },
  mqttTlsPort: { flag: 'mqtt-tls-port' },
  mqttTlsHost: { flag: 'mqtt-tls-host' },
  mqttTlsCert: { flag: 'mqtt-tls-cert' },
  mqttTlsKey: { flag: 'mqtt-tls-key' },
  mqttTlsCa: { flag: 'mqtt-tls-ca' },
  httpPort: { flag: 'http-port', env: 'E911_HTTP_PORT', def: '8080' },
  httpHost: { flag: 'http-host', def: '127.0.0.1' },
  tlsCert: { flag: 'tls-cert' },
  tlsKey: { flag: 'tls-key' },
  brokerUsername: { flag: 'broker-username' },
  brokerCert: { flag: 'broker-cert' },
  brokerKey: { flag: 'broker-key' },
  allowedOrigins: { flag: 'allowed-origin' },
  allowNotifyTargets: { flag: 'allow-notify-target' },
  sipHost: { flag: 'sip-host' },
  sipPublicHost: { flag: 'sip-public-host' },
  sipPort: { flag: 'sip-port' },
  rtpPort: { flag: 'rtp-port' },
};

/** The run options from flags and environment, or a ConfigError naming every bad one. */
export function parseRunConfig(flags: Flags, env: NodeJS.ProcessEnv): RunConfig {
  const raw: Record<string, unknown> = {};
  const origin: Record<string, string> = {};
  for (const [key, s] of Object.entries(SOURCES)) {
    const f = flags[s.flag];
    if (f !== undefined) {
      raw[key] = f;
      origin[key] = `--${s.flag}`;
    } else if (s.env && env[s.env] !== undefined) {
      raw[key] = env[s.env];
      origin[key] = s.env;
    } else if (s.def !== undefined) {
      raw[key] = s.def;
      origin[key] = `--${s.flag}`;
    }
  }
  const r = runConfigSchema.safeParse(raw);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => {
    const key = String(i.path[0] ?? '(options)');
    const where = origin[key] ?? (key in SOURCES ? `--${SOURCES[key as keyof RunConfig].flag}` : key);
    return { key: where, reason: i.message };
  });
  throw new ConfigError(problems);
}

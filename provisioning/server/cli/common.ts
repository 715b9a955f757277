// What the command line's parts share: its flags, usage errors and the parsing of option values.
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../../common/atomic-file.js';
import type { MosquittoListener } from '../broker-auth.js';
import type { OPTIONS } from './options.js';

export type Flags = Partial<Record<keyof typeof OPTIONS, string | boolean>>;

export class UsageError extends Error {}

export function need(v: string | boolean | undefined, what: string): string {
  if (typeof v !== 'string' || v === '') throw new UsageError(`missing ${what}`);
  return v;
}

export function list(v: string | boolean | undefined): string[] {
  return typeof v === 'string'
    ? v
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean)
    : [];
}

/** `--listen 1883,127.0.0.1:8883` as Mosquitto listeners (default: port 1883 on every address). */
export function listeners(v: string | boolean | undefined): { port: number; host?: string }[] | undefined {
  const items = list(v);
  if (items.length === 0) return undefined;
  return items.map((item) => {
    const m = /^(?:(.+):)?(\d{1,5})$/.exec(item);
    if (!m || Number(m[2]) > 65535) throw new UsageError(`--listen ${item}: give [HOST:]PORT`);
    return { port: Number(m[2]), ...(m[1] ? { host: m[1].replace(/^\[|\]$/g, '') } : {}) };
  });
}

/** --broker-ca/--broker-cert/--broker-key: PEM files for an mqtts:// broker. */
export function brokerTls(f: Flags): { ca?: Buffer; cert?: Buffer; key?: Buffer } | undefined {
  if (!f['broker-ca'] && !f['broker-cert'] && !f['broker-key']) return undefined;
  if (!f['broker-cert'] !== !f['broker-key']) throw new UsageError('--broker-cert and --broker-key go together');
  return {
    ...(f['broker-ca'] ? { ca: readFileSync(need(f['broker-ca'], '--broker-ca FILE')) } : {}),
    ...(f['broker-cert']
      ? { cert: readFileSync(need(f['broker-cert'], '--broker-cert FILE')), key: readFileSync(need(f['broker-key'], '--broker-key FILE')) }
      : {}),
  };
}

/** --tls-listen [HOST:]PORT,... with the broker's certificate files: Mosquitto TLS listeners. */
export function tlsListeners(f: Flags): MosquittoListener[] {
  const ports = listeners(f['tls-listen']) ?? [];
  if (ports.length === 0) return [];
  const tls = {
    certfile: need(f['tls-certfile'], '--tls-certfile FILE (as the broker reads it)'),
    keyfile: need(f['tls-keyfile'], '--tls-keyfile FILE'),
    cafile: need(f['tls-cafile'], '--tls-cafile FILE'),
    ...(f['require-client-cert'] ? { requireCertificate: true } : {}),
  };
  return ports.map((l) => ({ ...l, tls }));
}

export function readJson(file: string | boolean | undefined): unknown {
  return JSON.parse(readFileSync(need(file, '--file FILE (JSON)'), 'utf8'));
}

export function writePrivate(file: string, text: string): void {
  writeFileAtomic(file, text, 0o600);
}

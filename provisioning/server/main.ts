#!/usr/bin/env node
// e911-server: the reference provisioning server's command line.
//
//   e911-server run [--data DIR] [--port 1883] [--http-port 8080] [--broker URL ...]   the server (embedded broker by default)
//   e911-server keygen | token create|list|revoke | broker-config --out DIR             local, on the data folder
//   e911-server <resource> <verb> ...                                                    the admin API, over HTTP
//   e911-server push --broker URL --address FILE                                        push one raw address document (as e911-server-cli)
//
// `e911-server help` lists every command.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { writeFileAtomic } from '../common/atomic-file.js';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseRunConfig } from './run-config.js';
import { ConfigError } from '../common/errors.js';
import { pino } from 'pino';
import { loadOrCreateKeyPair } from './keys.js';
import type { Repo } from './db/repo.js';
import { privateKeyFromText } from '../protocol/signing.js';
import type { AddressDocument } from '../protocol/address.js';
import type { MosquittoListener } from './broker-auth.js';
import { isMain } from '../common/is-main.js';

// The server's parts load only for the commands that need them: an API call starts fast.
const serverParts = () => import('./app.js');

const HELP = `usage: e911-server <command> [options]

Server (local):
  run [--data DIR] [--port N] [--host H] [--http-port N] [--http-host H]
      [--broker URL [--mqtt-version 4|5] [--share-group NAME] [--instance NAME] [--broker-username U --broker-password P]
                    [--broker-ca FILE] [--broker-cert FILE --broker-key FILE]]   mqtts://: the broker's CA, a client certificate
      [--allow-anonymous] [--seed FILE]        start the server; without --broker an embedded broker listens on --port
      [--mqtt-tls-port N [--mqtt-tls-host H] --mqtt-tls-cert F --mqtt-tls-key F [--mqtt-tls-ca F --require-client-cert]]
                                               the embedded broker's TLS listener for phones (plain stays on --host)
      [--portal-dir DIR | --no-portal]         the admin portal at http://HOST:PORT/ (built into dist/portal)
      [--tls-cert FILE --tls-key FILE]         serve the API and portal over HTTPS (session cookies Secure)
      [--secure-cookies] [--allowed-origin URL,...]  behind a TLS proxy: Secure cookies, the proxy's public origin
      [--allow-notify-target HOST|CIDR,...]    SMS/webhook targets allowed although loopback, link-local or private
  keygen                                       print the signing public key (phones' serverPublicKey)
  token create NAME | list | revoke ID         admin API tokens (a new token is printed once)
  broker-config --out DIR [--dir /etc/mosquitto/e911] [--instance NAME,...] [--listen [HOST:]PORT,...]
                [--tls-listen [HOST:]PORT,... --tls-certfile F --tls-keyfile F --tls-cafile F [--require-client-cert]]
                                               write Mosquitto passwd, acl and mosquitto.conf (listeners bind
                                               client id to user) for the phones and every server instance
  push --broker URL --address FILE [--instance NAME] [--mqtt-version 4|5]
                                               sign and push one raw address document, logged in as the
                                               broker user e911-server-cli (or e911-server-NAME) from DIR

Admin API (over HTTP: --url URL, default http://127.0.0.1:8080; --token T or E911_SERVER_TOKEN or DIR/admin-token):
  account show | set [--name N] [--contact-email E] [--recommendations on|off] [--policy all|app-only|app-then-email-sms]
                [--location-policy network-first|provisioned-first|ask-user] [--elin-callback on|off]
  e911 enable | disable
  notifications show | set --file F | test --channel email|sms|webhook [--to X]
  locations list | show ID | create --file F | update ID --file F | delete ID | validate --file F
  users list [--location ID] | show ID | create --file F | update ID --file F | delete ID
  phones list | show DEVICE | credentials DEVICE | push DEVICE | delete DEVICE
  bulk-emails --emails a@x,b@y (--all | --location ID | --users 1,2,3) [--wait]
  jobs list | show ID [--wait]
  csv export [--out FILE] | validate FILE | apply UPLOAD_ID [--wait]
  events [--type emergency-call,test-call] [--device ID] [--limit N] | event ID
  audit [--entity E] [--entity-id ID] [--limit N]
  openapi                                      print the OpenAPI document
`;

const OPTIONS = {
  data: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  'http-port': { type: 'string' },
  'http-host': { type: 'string' },
  'portal-dir': { type: 'string' },
  'no-portal': { type: 'boolean' },
  broker: { type: 'string' },
  'mqtt-version': { type: 'string' },
  'share-group': { type: 'string' },
  instance: { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'secure-cookies': { type: 'boolean' },
  'allowed-origin': { type: 'string' },
  'allow-notify-target': { type: 'string' },
  listen: { type: 'string' },
  'broker-ca': { type: 'string' },
  'broker-cert': { type: 'string' },
  'broker-key': { type: 'string' },
  'tls-listen': { type: 'string' },
  'mqtt-tls-port': { type: 'string' },
  'mqtt-tls-host': { type: 'string' },
  'mqtt-tls-cert': { type: 'string' },
  'mqtt-tls-key': { type: 'string' },
  'mqtt-tls-ca': { type: 'string' },
  'tls-cafile': { type: 'string' },
  'tls-certfile': { type: 'string' },
  'tls-keyfile': { type: 'string' },
  'require-client-cert': { type: 'boolean' },
  'broker-username': { type: 'string' },
  'broker-password': { type: 'string' },
  'allow-anonymous': { type: 'boolean' },
  seed: { type: 'string' },
  address: { type: 'string' },
  out: { type: 'string' },
  dir: { type: 'string' },
  url: { type: 'string' },
  token: { type: 'string' },
  file: { type: 'string' },
  name: { type: 'string' },
  'contact-email': { type: 'string' },
  recommendations: { type: 'string' },
  policy: { type: 'string' },
  'location-policy': { type: 'string' },
  'elin-callback': { type: 'string' },
  channel: { type: 'string' },
  to: { type: 'string' },
  location: { type: 'string' },
  emails: { type: 'string' },
  all: { type: 'boolean' },
  users: { type: 'string' },
  wait: { type: 'boolean' },
  type: { type: 'string' },
  device: { type: 'string' },
  limit: { type: 'string' },
  entity: { type: 'string' },
  'entity-id': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Flags = Partial<Record<keyof typeof OPTIONS, string | boolean>>;

class UsageError extends Error {}

function need(v: string | boolean | undefined, what: string): string {
  if (typeof v !== 'string' || v === '') throw new UsageError(`missing ${what}`);
  return v;
}

function list(v: string | boolean | undefined): string[] {
  return typeof v === 'string' ? v.split(',').map((x) => x.trim()).filter(Boolean) : [];
}

/** `--listen 1883,127.0.0.1:8883` as Mosquitto listeners (default: port 1883 on every address). */
function listeners(v: string | boolean | undefined): { port: number; host?: string }[] | undefined {
  const items = list(v);
  if (items.length === 0) return undefined;
  return items.map((item) => {
    const m = /^(?:(.+):)?(\d{1,5})$/.exec(item);
    if (!m || Number(m[2]) > 65535) throw new UsageError(`--listen ${item}: give [HOST:]PORT`);
    return { port: Number(m[2]), ...(m[1] ? { host: m[1].replace(/^\[|\]$/g, '') } : {}) };
  });
}

/** --broker-ca/--broker-cert/--broker-key: PEM files for an mqtts:// broker. */
function brokerTls(f: Flags): { ca?: Buffer; cert?: Buffer; key?: Buffer } | undefined {
  if (!f['broker-ca'] && !f['broker-cert'] && !f['broker-key']) return undefined;
  if (!f['broker-cert'] !== !f['broker-key']) throw new UsageError('--broker-cert and --broker-key go together');
  return {
    ...(f['broker-ca'] ? { ca: readFileSync(need(f['broker-ca'], '--broker-ca FILE')) } : {}),
    ...(f['broker-cert'] ? { cert: readFileSync(need(f['broker-cert'], '--broker-cert FILE')), key: readFileSync(need(f['broker-key'], '--broker-key FILE')) } : {}),
  };
}

/** --tls-listen [HOST:]PORT,... with the broker's certificate files: Mosquitto TLS listeners. */
function tlsListeners(f: Flags): MosquittoListener[] {
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

function readJson(file: string | boolean | undefined): unknown {
  return JSON.parse(readFileSync(need(file, '--file FILE (JSON)'), 'utf8'));
}

function writePrivate(file: string, text: string): void {
  writeFileAtomic(file, text, 0o600);
}

export async function main(argv: string[], env: NodeJS.ProcessEnv, out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  const flags = values as Flags;
  const [verb, sub, arg] = positionals;
  if (!verb || verb === 'help' || flags.help) {
    out(HELP);
    return verb ? 0 : 2;
  }
  const dataDir = (flags.data as string | undefined) ?? env.E911_SERVER_DATA ?? './data/server';
  const log = pino({ level: env.E911_LOG_LEVEL ?? 'info', base: { app: 'e911-server' } });

  switch (verb) {
    case 'run':
      await run(flags, dataDir, log, env);
      return -1; // keeps running
    case 'keygen': {
      const { pair, created } = loadOrCreateKeyPair(path.join(dataDir, 'signing-key.json'));
      if (created) log.info('signing key pair created');
      out(`${pair.publicKey}\n`);
      return 0;
    }
    case 'push': {
      const { pair } = loadOrCreateKeyPair(path.join(dataDir, 'signing-key.json'));
      const { ProvisioningServer } = await import('./server.js');
      const { loadOrCreateServerCredentials, CLI_INSTANCE } = await serverParts();
      const brokerUrl = need(flags.broker, '--broker URL');
      const mqttVersion = flags['mqtt-version'] ? Number(flags['mqtt-version']) : 4;
      if (mqttVersion !== 4 && mqttVersion !== 5) throw new UsageError('--mqtt-version must be 4 or 5');
      // Its own broker user (the broker binds client id to user name): a running instance's
      // would take over that instance's session and kick it off.
      const creds = flags['broker-username']
        ? { username: flags['broker-username'] as string, password: (flags['broker-password'] as string | undefined) ?? env.E911_BROKER_PASSWORD ?? '' }
        : withRepo(dataDir, await openRepo(), (repo) => loadOrCreateServerCredentials(dataDir, (flags.instance as string | undefined) ?? CLI_INSTANCE, repo));
      const server = new ProvisioningServer({ brokerUrl, privateKey: privateKeyFromText(pair), log, clientId: creds.username, username: creds.username, password: creds.password, protocolVersion: mqttVersion, publishOnly: true, ...(brokerTls(flags) ? { tls: brokerTls(flags)! } : {}) });
      try {
        await server.start();
      } catch (err) {
        await server.stop();
        throw new Error(
          `the broker at ${brokerUrl} refused ${creds.username}: ${(err as Error).message} (Mosquitto: render its files with \`e911-server broker-config\`, which includes this user, and reload it)`,
        );
      }
      try {
        const signed = await server.pushAddress(JSON.parse(readFileSync(need(flags.address, '--address FILE'), 'utf8')) as AddressDocument);
        log.info({ deviceId: signed.doc.deviceId, version: signed.doc.version, as: creds.username }, 'address pushed');
      } finally {
        await server.stop();
      }
      return 0;
    }
    case 'token':
      return withRepo(dataDir, await openRepo(), (repo) => tokenCommand(repo, sub, arg, out));
    case 'broker-config': {
      const dir = need(flags.out, '--out DIR');
      const { loadOrCreateServerCredentials, renderBrokerConfig, CLI_INSTANCE } = await serverParts();
      const files = withRepo(dataDir, await openRepo(), (repo) => {
        // Each named instance gets its broker user now, so the broker knows it before it starts.
        // The push command's user too, so `push` works against the broker these files configure.
        for (const name of [CLI_INSTANCE, ...list(flags.instance)]) loadOrCreateServerCredentials(dataDir, name, repo);
        const tls = tlsListeners(flags);
        const plain = listeners(flags.listen) ?? (tls.length ? [] : undefined);
        return renderBrokerConfig(repo, (flags.dir as string | undefined) ?? path.resolve(dir), plain === undefined ? undefined : [...plain, ...tls]);
      });
      mkdirSync(dir, { recursive: true });
      writePrivate(path.join(dir, 'passwd'), files.passwd);
      writeFileAtomic(path.join(dir, 'acl'), files.acl);
      writeFileAtomic(path.join(dir, 'mosquitto.conf'), files.conf);
      out(`wrote ${dir}/passwd, acl, mosquitto.conf (include the last from your mosquitto.conf; send mosquitto SIGHUP to reload)\n`);
      return 0;
    }
    default:
      return apiCommand(verb, sub, arg, flags, dataDir, env, out);
  }
}

async function openRepo(): Promise<typeof Repo> {
  return (await import('./db/repo.js')).Repo;
}

function withRepo<T>(dataDir: string, RepoClass: typeof Repo, fn: (repo: Repo) => T): T {
  const repo = new RepoClass({ dataDir });
  try {
    return fn(repo);
  } finally {
    repo.close();
  }
}

function tokenCommand(repo: Repo, sub: string | undefined, arg: string | undefined, out: (s: string) => void): number {
  switch (sub) {
    case 'create': {
      const token = newToken(repo, need(arg, 'a token NAME'));
      out(`${token}\n`);
      return 0;
    }
    case 'list':
      out(`${JSON.stringify(repo.tokens(), null, 2)}\n`);
      return 0;
    case 'revoke':
      if (!repo.revokeToken(Number(need(arg, 'a token ID')))) throw new UsageError(`no active token ${arg}`);
      repo.audit('local', 'token.revoke', 'token', arg ?? null);
      return 0;
    default:
      throw new UsageError('token create NAME | list | revoke ID');
  }
}

function newToken(repo: Repo, name: string): string {
  const token = `e911_${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url')}`;
  repo.createToken(name, token);
  repo.audit('local', 'token.create', 'token', null, { name });
  return token;
}

async function run(flags: Flags, dataDir: string, log: pino.Logger, env: NodeJS.ProcessEnv): Promise<void> {
  const { pair, created } = loadOrCreateKeyPair(path.join(dataDir, 'signing-key.json'));
  if (created) log.info('signing key pair created');
  const c = parseRunConfig(flags, env);
  const { ServerApp } = await serverParts();
  const { mountPortal, defaultPortalDir } = await import('./portal/serve.js');
  const app = new ServerApp({
    dataDir,
    log,
    keyPair: pair,
    broker: {
      ...(c.broker ? { url: c.broker } : {}),
      embeddedPort: c.mqttPort,
      embeddedHost: c.mqttHost,
      ...(flags['allow-anonymous'] ? { allowAnonymous: true } : {}),
      ...(c.mqttTlsPort !== undefined
        ? {
            embeddedTls: {
              port: c.mqttTlsPort,
              ...(c.mqttTlsHost ? { host: c.mqttTlsHost } : {}),
              cert: readFileSync(need(c.mqttTlsCert, '--mqtt-tls-cert FILE')),
              key: readFileSync(need(c.mqttTlsKey, '--mqtt-tls-key FILE')),
              ...(c.mqttTlsCa ? { ca: readFileSync(c.mqttTlsCa) } : {}),
              ...(flags['require-client-cert'] ? { requireCertificate: true } : {}),
            },
          }
        : {}),
      ...(c.mqttVersion ? { protocolVersion: c.mqttVersion } : {}),
      ...(flags['share-group'] ? { shareGroup: flags['share-group'] as string } : {}),
      ...(flags.instance ? { instance: flags.instance as string } : {}),
      ...(flags['broker-username'] ? { username: flags['broker-username'] as string, password: (flags['broker-password'] as string | undefined) ?? env.E911_BROKER_PASSWORD ?? '' } : {}),
      ...(brokerTls(flags) ? { tls: brokerTls(flags)! } : {}),
    },
    ...(c.allowNotifyTargets ? { notify: { allowTargets: c.allowNotifyTargets } } : {}),
    http: {
      port: c.httpPort,
      host: c.httpHost,
      ...(c.tlsCert || c.tlsKey ? { tls: { cert: readFileSync(need(c.tlsCert, '--tls-cert FILE')), key: readFileSync(need(c.tlsKey, '--tls-key FILE')) } } : {}),
      ...(flags['secure-cookies'] ? { secureCookies: true } : {}),
      ...(c.allowedOrigins ? { allowedOrigins: c.allowedOrigins } : {}),
      extend: flags['no-portal'] ? undefined : (api) => void mountPortal(api, { dir: (flags['portal-dir'] as string | undefined) ?? defaultPortalDir(), log: log.child({ ns: 'portal' }) }),
    },
  });
  // The first start leaves a token for the administrator, readable only by the server's user.
  if (app.repo.tokens().length === 0) {
    const file = path.join(dataDir, 'admin-token');
    writePrivate(file, `${newToken(app.repo, 'admin')}\n`);
    log.info({ file }, 'first start: an admin API token was written to this file');
  }
  await app.start();
  if (flags.seed) {
    for (const doc of JSON.parse(readFileSync(flags.seed as string, 'utf8')) as AddressDocument[]) await app.link.pushAddress(doc);
  }
  // The CLI on this machine finds the API here without --url.
  writeFileSync(path.join(dataDir, 'api-url'), `${app.httpUrl}\n`);
  log.info({ publicKey: pair.publicKey, api: app.httpUrl, broker: app.brokerUrl }, 'provisioning server ready');
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(1), 10_000).unref();
    app.stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

// ---- the admin API over HTTP ----

interface HttpCall {
  method: string;
  path: string;
  body?: unknown;
  csv?: Buffer;
  /** Print the body as text, not JSON. */
  raw?: boolean;
}

function ids(list: string): number[] {
  return list.split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`${s} is not a user id`);
    return n;
  });
}

function onOff(v: string | boolean | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  if (v === 'on' || v === 'true') return true;
  if (v === 'off' || v === 'false') return false;
  throw new UsageError('use on or off');
}

function query(params: Record<string, string | boolean | undefined>): string {
  const q = Object.entries(params).filter((e): e is [string, string] => typeof e[1] === 'string');
  return q.length ? `?${new URLSearchParams(q).toString()}` : '';
}

function route(verb: string, sub: string | undefined, arg: string | undefined, f: Flags): HttpCall {
  const id = () => encodeURIComponent(need(arg, 'an ID'));
  switch (`${verb} ${sub ?? ''}`.trim()) {
    case 'account':
    case 'account show':
      return { method: 'GET', path: '/api/account' };
    case 'account set':
      return {
        method: 'PATCH',
        path: '/api/account',
        body: {
          name: f.name,
          contactEmail: f['contact-email'],
          recommendations: onOff(f.recommendations),
          notificationPolicy: f.policy,
          locationPolicy: f['location-policy'],
          elinCallback: onOff(f['elin-callback']),
        },
      };
    case 'e911 enable':
    case 'e911 disable':
      return { method: 'POST', path: '/api/account/e911', body: { enabled: sub === 'enable' } };
    case 'notifications':
    case 'notifications show':
      return { method: 'GET', path: '/api/account/notifications' };
    case 'notifications set':
      return { method: 'PUT', path: '/api/account/notifications', body: readJson(f.file) };
    case 'notifications test':
      return { method: 'POST', path: '/api/account/notifications/test', body: { channel: need(f.channel, '--channel'), to: f.to } };
    case 'locations':
    case 'locations list':
      return { method: 'GET', path: '/api/locations' };
    case 'locations show':
      return { method: 'GET', path: `/api/locations/${id()}` };
    case 'locations create':
      return { method: 'POST', path: '/api/locations', body: readJson(f.file) };
    case 'locations update':
      return { method: 'PATCH', path: `/api/locations/${id()}`, body: readJson(f.file) };
    case 'locations delete':
      return { method: 'DELETE', path: `/api/locations/${id()}` };
    case 'locations validate':
      return { method: 'POST', path: '/api/locations/validate', body: readJson(f.file) };
    case 'users':
    case 'users list':
      return { method: 'GET', path: `/api/users${query({ locationId: f.location, limit: f.limit })}` };
    case 'users show':
      return { method: 'GET', path: `/api/users/${id()}` };
    case 'users create':
      return { method: 'POST', path: '/api/users', body: readJson(f.file) };
    case 'users update':
      return { method: 'PATCH', path: `/api/users/${id()}`, body: readJson(f.file) };
    case 'users delete':
      return { method: 'DELETE', path: `/api/users/${id()}` };
    case 'phones':
    case 'phones list':
      return { method: 'GET', path: '/api/phones' };
    case 'phones show':
      return { method: 'GET', path: `/api/phones/${id()}` };
    case 'phones credentials':
      return { method: 'POST', path: `/api/phones/${id()}/credentials` };
    case 'phones push':
      return { method: 'POST', path: `/api/phones/${id()}/push` };
    case 'phones delete':
      return { method: 'DELETE', path: `/api/phones/${id()}` };
    case 'bulk-emails': {
      const target = f.all ? { all: true } : f.location ? { locationId: Number(f.location) } : f.users ? { userIds: ids(f.users as string) } : null;
      if (!target) throw new UsageError('say whom: --all, --location ID or --users 1,2,3');
      const emails = typeof f.emails === 'string' ? f.emails.split(',').map((e) => e.trim()).filter(Boolean) : [];
      return { method: 'POST', path: '/api/bulk/emails', body: { emails, target } };
    }
    case 'jobs':
    case 'jobs list':
      return { method: 'GET', path: '/api/jobs' };
    case 'jobs show':
      return { method: 'GET', path: `/api/jobs/${id()}` };
    case 'csv export':
      return { method: 'GET', path: '/api/csv/users', raw: true };
    case 'csv validate':
      return { method: 'POST', path: '/api/csv/users/validate', csv: readFileSync(need(arg, 'the CSV FILE')) };
    case 'csv apply':
      return { method: 'POST', path: `/api/csv/uploads/${id()}/apply` };
    case 'events':
      return { method: 'GET', path: `/api/events${query({ type: f.type, deviceId: f.device, limit: f.limit })}` };
    case 'event':
      return { method: 'GET', path: `/api/events/${encodeURIComponent(need(sub, 'an event ID'))}` };
    case 'audit':
      return { method: 'GET', path: `/api/audit${query({ entity: f.entity, entityId: f['entity-id'], limit: f.limit })}` };
    case 'openapi':
      return { method: 'GET', path: '/api/openapi.json' };
    default:
      throw new UsageError(`unknown command: ${[verb, sub].filter(Boolean).join(' ')} (see e911-server help)`);
  }
}

async function apiCommand(verb: string, sub: string | undefined, arg: string | undefined, f: Flags, dataDir: string, env: NodeJS.ProcessEnv, out: (s: string) => void): Promise<number> {
  const call = route(verb, sub, arg, f);
  const urlFile = path.join(dataDir, 'api-url');
  const base = ((f.url as string | undefined) ?? env.E911_SERVER_URL ?? (existsSync(urlFile) ? readFileSync(urlFile, 'utf8').trim() : 'http://127.0.0.1:8080')).replace(/\/$/, '');
  const tokenFile = path.join(dataDir, 'admin-token');
  const token = (f.token as string | undefined) ?? env.E911_SERVER_TOKEN ?? (existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() : undefined);
  // The OpenAPI document is public (PUBLIC_ROUTE): printing it needs no token.
  if (!token && verb !== 'openapi') throw new UsageError(`no API token: pass --token, set E911_SERVER_TOKEN, or run where ${tokenFile} is readable`);
  const request = async (method: string, p: string, body?: unknown, csv?: Buffer) => {
    const res = await fetch(`${base}${p}`, {
      signal: AbortSignal.timeout(60_000),
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(csv ? { 'content-type': 'text/csv' } : body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(csv ? { body: csv } : body !== undefined ? { body: JSON.stringify(body) } : {}),
    }).catch((err: Error & { cause?: { code?: string } }) => {
      throw new Error(`cannot reach the server at ${base}: ${err.cause?.code ?? err.message} (is it running? --url sets where)`);
    });
    const text = await res.text();
    return { status: res.status, text, json: (() => { try { return JSON.parse(text) as unknown; } catch { return undefined; } })() };
  };
  let res = await request(call.method, call.path, call.body, call.csv);
  // --wait: follow a job until it finishes.
  const job = res.json as { id?: number; status?: string; kind?: string } | undefined;
  if (f.wait && res.status < 300 && job?.id !== undefined && job.kind !== undefined) {
    while (job && res.status < 300 && !['done', 'failed'].includes((res.json as { status: string }).status)) {
      await new Promise((r) => setTimeout(r, 200));
      res = await request('GET', `/api/jobs/${job.id}`);
    }
  }
  if (call.raw && res.status < 300) {
    if (f.out) writeFileSync(f.out as string, res.text);
    else out(res.text);
  } else if (res.status !== 204) out(`${res.json !== undefined ? JSON.stringify(res.json, null, 2) : res.text}\n`);
  if (res.status >= 400) return res.status === 401 ? 3 : res.status === 404 ? 4 : 1;
  return (res.json as { status?: string } | undefined)?.status === 'failed' ? 1 : 0;
}

if (isMain(import.meta.url)) {
  main(process.argv.slice(2), process.env).then(
    (code) => {
      if (code >= 0) process.exit(code);
    },
    (err) => {
      process.stderr.write(`e911-server: ${(err as Error).message}\n`);
      // A bad option is a usage error whether parseArgs or the run-config schema found it.
      const usage = err instanceof UsageError || err instanceof ConfigError;
      if (usage || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) process.stderr.write('see: e911-server help\n');
      process.exit(usage ? 2 : 1);
    },
  );
}

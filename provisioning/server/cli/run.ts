// `e911-server run`: start the server (broker link or embedded broker, HTTP API, portal) until a signal.
import path from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import type { AddressDocument } from '../../protocol/address.js';
import type { pino } from 'pino';
import { loadOrCreateKeyPair } from '../keys.js';
import { type Flags, UsageError, need, list, brokerTls, writePrivate } from './common.js';
import { newToken } from './admin.js';

export async function run(flags: Flags, dataDir: string, log: pino.Logger, env: NodeJS.ProcessEnv): Promise<void> {
  const { pair, created } = loadOrCreateKeyPair(path.join(dataDir, 'signing-key.json'));
  if (created) log.info('signing key pair created');
  const { ServerApp } = await import('../app.js');
  const { mountPortal, defaultPortalDir } = await import('../portal/serve.js');
  const mqttVersion = flags['mqtt-version'] ? Number(flags['mqtt-version']) : undefined;
  if (mqttVersion !== undefined && mqttVersion !== 4 && mqttVersion !== 5) throw new UsageError('--mqtt-version must be 4 or 5');
  const app = new ServerApp({
    dataDir,
    log,
    keyPair: pair,
    broker: {
      ...(flags.broker ? { url: flags.broker as string } : {}),
      embeddedPort: Number(flags.port ?? env.E911_MQTT_PORT ?? 1883),
      embeddedHost: (flags.host as string | undefined) ?? '127.0.0.1',
      ...(flags['allow-anonymous'] ? { allowAnonymous: true } : {}),
      ...(flags['mqtt-tls-port']
        ? {
            embeddedTls: {
              port: Number(flags['mqtt-tls-port']),
              ...(flags['mqtt-tls-host'] ? { host: flags['mqtt-tls-host'] as string } : {}),
              cert: readFileSync(need(flags['mqtt-tls-cert'], '--mqtt-tls-cert FILE')),
              key: readFileSync(need(flags['mqtt-tls-key'], '--mqtt-tls-key FILE')),
              ...(flags['mqtt-tls-ca'] ? { ca: readFileSync(flags['mqtt-tls-ca'] as string) } : {}),
              ...(flags['require-client-cert'] ? { requireCertificate: true } : {}),
            },
          }
        : {}),
      ...(mqttVersion ? { protocolVersion: mqttVersion } : {}),
      ...(flags['share-group'] ? { shareGroup: flags['share-group'] as string } : {}),
      ...(flags.instance ? { instance: flags.instance as string } : {}),
      ...(flags['broker-username'] ? { username: flags['broker-username'] as string, password: (flags['broker-password'] as string | undefined) ?? env.E911_BROKER_PASSWORD ?? '' } : {}),
      ...(brokerTls(flags) ? { tls: brokerTls(flags)! } : {}),
    },
    ...(flags['allow-notify-target'] ? { notify: { allowTargets: list(flags['allow-notify-target']) } } : {}),
    http: {
      port: Number(flags['http-port'] ?? env.E911_HTTP_PORT ?? 8080),
      host: (flags['http-host'] as string | undefined) ?? '127.0.0.1',
      ...(flags['tls-cert'] || flags['tls-key'] ? { tls: { cert: readFileSync(need(flags['tls-cert'], '--tls-cert FILE')), key: readFileSync(need(flags['tls-key'], '--tls-key FILE')) } } : {}),
      ...(flags['secure-cookies'] ? { secureCookies: true } : {}),
      ...(flags['allowed-origin'] ? { allowedOrigins: list(flags['allowed-origin']) } : {}),
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


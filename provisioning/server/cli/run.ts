// `e911-server run`: start the server (broker link or embedded broker, HTTP API, portal) until a signal.
import path from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import type { AddressDocument } from '../../protocol/address.js';
import type { pino } from 'pino';
import { loadOrCreateKeyPair } from '../keys.js';
import { type Flags, need, brokerTls, writePrivate } from './common.js';
import { newToken } from './admin.js';
import { parseRunConfig } from '../run-config.js';

export async function run(flags: Flags, dataDir: string, log: pino.Logger, env: NodeJS.ProcessEnv): Promise<void> {
  const { pair, created } = loadOrCreateKeyPair(path.join(dataDir, 'signing-key.json'));
  if (created) log.info('signing key pair created');
  const c = parseRunConfig(flags, env);
  const { ServerApp } = await import('../app.js');
  const { mountPortal, defaultPortalDir } = await import('../portal/serve.js');
  // --store or E911_STORE: a PostgreSQL URL (the password is better in the environment than in ps).
  const store = (flags.store as string | undefined) ?? env.E911_STORE;
  const app = new ServerApp({
    dataDir,
    ...(store ? { store } : {}),
    log,
    keyPair: pair,
    broker: {
      ...(c.broker ? { url: c.broker[0]!, urls: c.broker } : {}),
      ...(c.nats ? { nats: { servers: c.nats } } : {}),
      ...(c.offlineAfterSec ? { offlineAfterMs: c.offlineAfterSec * 1000 } : {}),
      ...(c.resendAfterSec !== undefined ? { resendAfterMs: c.resendAfterSec * 1000 } : {}),
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
      ...(flags['broker-username']
        ? {
            username: flags['broker-username'] as string,
            password: (flags['broker-password'] as string | undefined) ?? env.E911_BROKER_PASSWORD ?? '',
          }
        : {}),
      ...(brokerTls(flags) ? { tls: brokerTls(flags)! } : {}),
    },
    notify: {
      ...(c.allowNotifyTargets ? { allowTargets: c.allowNotifyTargets } : {}),
      sip: {
        ...(c.sipHost ? { host: c.sipHost } : {}),
        ...(c.sipPublicHost ? { publicHost: c.sipPublicHost } : {}),
        ...(c.sipPort ? { port: c.sipPort } : {}),
        ...(c.rtpPort ? { rtpPort: c.rtpPort } : {}),
      },
    },
    http: {
      port: c.httpPort,
      host: c.httpHost,
      ...(c.tlsCert || c.tlsKey
        ? { tls: { cert: readFileSync(need(c.tlsCert, '--tls-cert FILE')), key: readFileSync(need(c.tlsKey, '--tls-key FILE')) } }
        : {}),
      ...(flags['secure-cookies'] ? { secureCookies: true } : {}),
      ...(c.allowedOrigins ? { allowedOrigins: c.allowedOrigins } : {}),
      extend: flags['no-portal']
        ? undefined
        : (api) =>
            void mountPortal(api, {
              dir: (flags['portal-dir'] as string | undefined) ?? defaultPortalDir(),
              log: log.child({ ns: 'portal' }),
            }),
    },
  });
  // The first start leaves a token for the administrator, readable only by the server's user:
  // the default account's, a provider's (the one who runs the server may create accounts).
  if ((await app.repo.tokens()).length === 0) {
    const file = path.join(dataDir, 'admin-token');
    writePrivate(file, `${await newToken(app.repo, 'admin', { provider: true })}\n`);
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

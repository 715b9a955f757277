// Starts the whole system on one machine with embedded defaults:
// - the reference provisioning server: embedded MQTT broker on 127.0.0.1:1883,
//   admin API and portal on http://127.0.0.1:8080 (token in data/server/admin-token);
// - a local mail sink standing in for the site's SMTP relay: every Kari's Law
//   notice is logged and written to data/mail/;
// - one phone agent (phone-1), provisioned on first start with a sample
//   location, user and callback number, E911 enabled.
// Ctrl-C stops everything. The data folder survives; a second start reuses it.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { loadOrCreateKeyPair } from '../../provisioning/server/keys.js';
import { ServerApp } from '../../provisioning/server/app.js';
import { defaultPortalDir, mountPortal } from '../../provisioning/server/portal/serve.js';
import { startSmtpSink, type SmtpSink } from '../../test/helpers/smtp-sink.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.resolve(here, '../..');
const dataDir = path.resolve(process.env.E911_DEMO_DATA ?? 'data');
const mqttPort = Number(process.env.E911_DEMO_PORT ?? 1883);
const httpPort = Number(process.env.E911_DEMO_HTTP_PORT ?? 8080);
const smtpPort = Number(process.env.E911_DEMO_SMTP_PORT ?? 2525);
const psapPort = Number(process.env.E911_DEMO_PSAP_PORT ?? 5070);
const phoneSipPort = Number(process.env.E911_DEMO_SIP_PORT ?? 5062);
const deviceId = 'phone-1';
const log = pino({ base: { app: 'start-all' } });
const serverDir = path.join(dataDir, 'server');
const mailDir = path.join(dataDir, 'mail');
const agentDir = path.join(dataDir, 'agent');
for (const d of [serverDir, mailDir, agentDir]) mkdirSync(d, { recursive: true, mode: 0o700 });

const mail = await startMailSink();
const { pair } = loadOrCreateKeyPair(path.join(serverDir, 'signing-key.json'));
const app = new ServerApp({
  dataDir: serverDir,
  log: pino({ base: { app: 'e911-server' } }),
  keyPair: pair,
  broker: { embeddedPort: mqttPort, embeddedHost: '127.0.0.1' },
  http: { port: httpPort, host: '127.0.0.1', extend: (api) => void mountPortal(api, { dir: defaultPortalDir(), log }) },
});
await app.start();
writeFileSync(path.join(serverDir, 'api-url'), `${app.httpUrl}\n`);

const tokenFile = path.join(serverDir, 'admin-token');
if (!existsSync(tokenFile)) writeFileSync(tokenFile, `${await app.createToken('admin')}\n`, { mode: 0o600 });
const configFile = path.join(agentDir, 'config.json');
await provision();
const psap = startPsap();

const agent = spawn(process.execPath, [path.join(dist, 'agent', 'main.js'), '--config', configFile], { stdio: 'inherit' });
const socketPath = path.join(agentDir, 'control.sock');
log.info(
  { portal: `${app.httpUrl}/`, tokenFile, broker: app.brokerUrl, mail: mailDir, psap: `sip:127.0.0.1:${psapPort}` },
  `system up. Portal: ${app.httpUrl}/ (log in with the token in ${tokenFile}). ` +
    `Phone: E911_CONTROL_SOCKET=${socketPath} node ${path.join(dist, 'agent/cli/e911ctl.js')} status (or: dial 933)`,
);

/**
 * A location, a user with phone-1, mail to the sink, E911 on (each made once, on first
 * start); then a fresh broker login for the phone and its config.
 */
async function provision(): Promise<void> {
  const { service } = app;
  const actor = 'start-all';
  await service.updateAccount(actor, { name: 'Example Corp (demo)', contactEmail: 'it@example.com' });
  await service.setNotificationSettings(actor, { smtp: { host: '127.0.0.1', port: smtpPort, security: 'none', from: 'e911@example.com' } });
  const locationId =
    (await service.locations()).find((l) => l.code === 'SJC-A')?.id ??
    (
      await service.createLocation(actor, {
        code: 'SJC-A',
        name: 'Example Corp',
        address: { country: 'US', houseNumber: '100', street: 'Main St', city: 'San Jose', state: 'CA', postalCode: '95110' },
        building: 'A',
        floor: '2',
        room: '210',
        timeZone: 'America/Los_Angeles',
        adminEmails: ['security@example.com'],
      })
    ).id;
  if (!(await service.users()).users.some((u) => u.deviceIds.includes(deviceId))) {
    await service.createUser(actor, {
      username: 'frontdesk',
      displayName: 'Front Desk',
      extension: '100',
      locationId,
      callback: '+14085550100',
      emails: ['frontdesk@example.com'],
      deviceIds: [deviceId],
    });
  }
  const creds = await service.issueCredentials(actor, deviceId);
  if (!(await service.account()).e911Enabled) await service.setE911(actor, true);
  writeFileSync(
    configFile,
    `${JSON.stringify(
      {
        deviceId,
        dataDir: path.join(agentDir, 'db'),
        serverPublicKey: pair.publicKey,
        // The embedded broker (aedes) speaks MQTT 3.1.1 only.
        broker: { urls: [app.brokerUrl], protocolVersion: 4, username: creds.username, password: creds.password },
        control: { socketPath: path.join(agentDir, 'control.sock') },
        // Calls stay on this machine: SIP on loopback, 911 and 933 to the demo PSAP.
        // The demo machine has no handset audio: the null sound device (a phone uses ALSA's).
        sip: { bindAddress: '127.0.0.1', publicAddress: '127.0.0.1', port: phoneSipPort, sound: 'null' },
        emergency: { routes: { primary: `sip:127.0.0.1:${psapPort}` } },
        logLevel: 'info',
      },
      null,
      2,
    )}\n`,
    { mode: 0o600 },
  );
}

/** A stand-in PSAP: SIPp answering every call (Debian sip-tester), when it is installed. */
function startPsap() {
  const scenario = path.resolve(dist, '../test/fixtures/sipp/uas-answer.xml');
  const child = spawn(
    process.env.E911_SIPP ?? 'sipp',
    ['-sf', scenario, '-i', '127.0.0.1', '-p', String(psapPort), '-t', 'u1', '-m', '1000000', '-nostdin'],
    { stdio: 'ignore' },
  );
  child.on('error', (err) =>
    log.warn(
      { err: err.message },
      'no demo PSAP (sipp not installed): 911 and 933 calls will fail to connect, their events still reach the server',
    ),
  );
  return child;
}

/** The stand-in for the site's mail relay: notices land in data/mail/ as .eml files. */
async function startMailSink(): Promise<SmtpSink> {
  let n = 0;
  return startSmtpSink({
    port: smtpPort,
    onMail(m) {
      const file = path.join(mailDir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${++n}.eml`);
      writeFileSync(file, m.raw);
      log.warn({ to: m.to, subject: m.subject, file }, 'notification email delivered to the local mail sink');
    },
  });
}

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  agent.kill('SIGTERM');
  await new Promise((resolve) => agent.once('exit', resolve));
  psap.kill('SIGTERM');
  await app.stop();
  await mail.close();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
agent.on('exit', (code) => {
  if (!stopping) {
    log.error({ code }, 'agent exited');
    void stop();
  }
});

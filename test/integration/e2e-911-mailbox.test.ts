// The path users care about, end to end, every part real: the provisioning
// server (its rendered Mosquitto password file and ACL) pushes a signed address
// to the whole agent (dist/agent/main.js) whose phone is simulated on a socat
// pty pair; 911 typed on that keypad, with the emergency notice still on the
// display and NOT acknowledged, goes through PJSIP to a SIPp PSAP that refuses
// any INVITE without location and callback; the agent's emergency-call event
// goes over Mosquitto to the server, which mails the Kari's Law notice to a
// real SMTP sink. The mail is checked against what the PSAP received: the same
// address, the same callback number, the same SIP Call-ID. No event payload is
// built by hand anywhere here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startPtyPair, type PtyPair } from '../../hal/sim/pty-pair.js';
import { McuSimulator } from '../../hal/sim/mcu-simulator.js';
import { nativePortFactory, SerialTransport } from '../../hal/mcu/transport/serial.js';
import { ServerApp } from '../../provisioning/server/app.js';
import { generateSigningKeyPair } from '../../provisioning/protocol/signing.js';
import { civicFromPidf } from '../../provisioning/server/notify/message.js';
import { formatAddressLines } from '../../provisioning/protocol/address.js';
import type { StoredEvent } from '../../provisioning/server/db/repo.js';
import { agentConfig, spawnAgent, waitFor, type AgentProcess } from '../helpers/agent.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { startSipp } from '../helpers/sip.js';
import { startSmtpSink, type SmtpSink, type SunkMail } from '../helpers/smtp-sink.js';
import { e911ctl, hdr, multipartParts, receivedInvites, staleBuild } from '../helpers/emergency.js';
import { HQ } from '../helpers/server-app.js';
import { freePort } from '../helpers/ports.js';
import { silentLog } from '../helpers/log.js';
import { requires } from '../helpers/require.js';

const PSAP = path.resolve(import.meta.dirname, '..', 'fixtures', 'emergency', 'psap.xml');
const SOCAT = ['/usr/bin/socat', '/usr/local/bin/socat'].find((p) => existsSync(p));

const gate = requires('the end-to-end 911-to-mailbox test', ['voice', 'sipp', 'broker', 'socat']);
const stale = staleBuild([
  'agent/main.ts',
  'agent/root.ts',
  'agent/emergency/service.ts',
  'agent/handset/handset-ui.ts',
  'agent/cli/e911ctl.ts',
]);

/** One "Label: value" row of the notice's text part. */
function row(mail: SunkMail, label: string): string | undefined {
  const m = new RegExp(`^${label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\s+(.*)$`, 'm').exec(mail.text);
  return m?.[1]?.trim();
}

describe.skipIf(gate.skip)('911 from the keypad to the mailbox, every component real', () => {
  let dir: string;
  let smtp: SmtpSink;
  let broker: Mosquitto;
  let server: ServerApp;
  let pair: PtyPair;
  let sim: McuSimulator;
  let agent: AgentProcess;
  let socketPath: string;
  let psapPort: number;
  const serverEvents: StoredEvent[] = [];
  const keys = generateSigningKeyPair();

  const screen = () => sim.screen.lines.join('\n');
  const why = () =>
    `screen:\n${screen()}\nserver events: ${serverEvents.map((e) => e.type).join(', ')}\nagent output:\n${agent?.output().slice(-4000)}`;

  beforeAll(async () => {
    if (stale) throw new Error(stale);
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-e2e-'));
    smtp = await startSmtpSink();
    const brokerPort = await freePort();
    server = new ServerApp({
      dataDir: path.join(dir, 'server'),
      log: silentLog(),
      keyPair: keys,
      broker: { url: `mqtt://127.0.0.1:${brokerPort}`, protocolVersion: 5 },
      http: { port: await freePort() },
      notify: { retry: { baseMs: 100, maxMs: 400, maxAttempts: 20 } },
    });
    const { service } = server;
    await service.updateAccount('test', { name: 'Example Corp', contactEmail: 'it@example.com' });
    await service.setNotificationSettings('test', {
      smtp: { host: '127.0.0.1', port: smtp.port, security: 'none', from: 'e911@example.com' },
    });
    const hq = await service.createLocation('test', HQ);
    await service.createUser('test', {
      username: 'alice',
      displayName: 'Alice Front Desk',
      locationId: hq.id,
      callback: '+14085550100',
      deviceIds: ['phone-1'],
      emails: ['alice@example.com'],
    });
    const creds = await service.issueCredentials('test', 'phone-1');
    await service.setE911('test', true);
    // Mosquitto as the server renders it for production: password file and ACL.
    const conf = path.join(dir, 'mosquitto');
    mkdirSync(conf);
    const files = await server.brokerConfig(conf, [{ port: brokerPort, host: '127.0.0.1' }]);
    writeFileSync(path.join(conf, 'passwd'), files.passwd, { mode: 0o600 });
    writeFileSync(path.join(conf, 'acl'), files.acl);
    broker = await startMosquitto({ port: brokerPort, listener: false, extraConfig: files.conf.split('\n') });
    server.bus.on('event', (e) => serverEvents.push(e));
    await server.start();

    pair = await startPtyPair(path.join(dir, 'pty'), SOCAT);
    psapPort = await freePort();
    const setup = agentConfig(
      path.join(dir, 'agent'),
      { deviceId: 'phone-1', brokerUrl: broker.url, serverPublicKey: keys.publicKey },
      {
        broker: {
          urls: [broker.url],
          protocolVersion: 5,
          username: creds.username,
          password: creds.password,
          reconnectMinMs: 100,
          reconnectMaxMs: 1000,
        },
        handset: { backend: 'serial', path: pair.agent },
        sip: { bindAddress: '127.0.0.1', publicAddress: '127.0.0.1', port: await freePort(), rtpPort: await freePort(), sound: 'null' },
        emergency: { routes: { primary: `sip:127.0.0.1:${psapPort}` } },
      },
    );
    socketPath = setup.socketPath;
    const log = silentLog();
    sim = new McuSimulator({
      transport: new SerialTransport({
        path: pair.mcu,
        openPort: await nativePortFactory(pair.mcu, 115200),
        log,
        backoffMinMs: 20,
        backoffMaxMs: 200,
      }),
      log,
      rows: 4,
      cols: 24,
    });
    sim.start();
    agent = await spawnAgent(setup);
  }, 60_000);

  afterAll(async () => {
    if (agent) {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
    await sim?.stop();
    await pair?.stop();
    await server?.stop();
    await broker?.close();
    await smtp?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the server pushes the address; the phone shows the notice and waits for its acknowledgement', async () => {
    await waitFor(
      async () => {
        const d = await server.repo.device('phone-1');
        return d !== null && d.issuedVersion > 0 && d.appliedVersion === d.issuedVersion;
      },
      15_000,
      () => `phone-1 never applied its address\n${why()}`,
    );
    await waitFor(() => screen().includes('EMERGENCY 911 NOTICE'), 10_000, why);
    const status = await e911ctl(socketPath, 'status');
    expect(status.json.result.notice).toMatchObject({ acknowledgedAt: null });
    expect(status.json.result.notice.addressVersion).toBe((await server.repo.device('phone-1'))!.issuedVersion);
  });

  it('911 on the keypad, notice NOT acknowledged: the PSAP answers it, and the mail says what the PSAP received', async () => {
    // Nothing acknowledged the notice: not the phone, not the server.
    expect((await e911ctl(socketPath, 'status')).json.result.notice.acknowledgedAt).toBeNull();
    expect(serverEvents.some((e) => e.type === 'notice-acknowledged')).toBe(false);
    expect(screen()).toContain('EMERGENCY 911 NOTICE');

    const psap = await startSipp({ scenario: PSAP, port: psapPort, timeoutSec: 20 });
    let psapLog: string;
    try {
      sim.setHook(true);
      sim.type('911');
      await waitFor(
        () => /ACK /.test(psap.messages()),
        10_000,
        () => `no ACK at the PSAP\n${psap.messages()}\n${why()}`,
      );
      await waitFor(() => screen().includes('CALLING 911'), 5000, why);
      sim.setHook(false); // the caller hangs up: BYE to the PSAP
      // 0: the PSAP accepted the call (location, civic elements and callback present) and took the BYE.
      expect((await psap.exited).code, psap.messages()).toBe(0);
      psapLog = psap.messages();
    } finally {
      await psap.close();
    }

    // What the PSAP received.
    const invites = receivedInvites(psapLog);
    expect(invites).toHaveLength(1);
    const invite = invites[0]!;
    const callId = hdr(invite, 'Call-ID')!;
    const pai = hdr(invite, 'P-Asserted-Identity')!;
    const psapCallback = /tel:(\+\d+)/.exec(pai)?.[1];
    const pidf = multipartParts(invite).find((p) => p.headers.some((h) => /application\/pidf\+xml/i.test(h.value)))!.body;
    const psapCivic = civicFromPidf(pidf);
    expect(callId).toMatch(/^\S+$/);
    expect(psapCallback).toBe('+14085550100');
    expect(psapCivic).toMatchObject({ country: 'US', A1: 'CA', A3: 'San Jose', HNO: '100', PC: '95110-1234' });

    // The mail: the server heard the agent's own event, over Mosquitto.
    await waitFor(
      () => smtp.mails.some((m) => m.subject.startsWith('EMERGENCY: 911') && m.to.includes('alice@example.com')),
      15_000,
      () => `no 911 mail; mails: ${smtp.mails.map((m) => m.subject).join(' | ')}\n${why()}`,
    );
    const mail = smtp.mails.find((m) => m.subject.startsWith('EMERGENCY: 911') && m.to.includes('alice@example.com'))!;
    expect(row(mail, 'Dispatchable address')).toBe(formatAddressLines(psapCivic!).join(', '));
    expect(row(mail, 'Callback number')).toBe(psapCallback);
    expect(row(mail, 'SIP Call-ID')).toBe(callId);
    expect(row(mail, 'Number dialed')).toBe('911');
    expect(row(mail, 'Call placed')).toBe('yes');
    expect(row(mail, 'Address source')).toMatch(/^as sent to the PSAP/);
    // The event that made it is the emergency service's own, as stored by the server.
    const ev = await server.repo.event(mail.headers['x-e911-event-id']!);
    expect(ev).toMatchObject({ type: 'emergency-call', deviceId: 'phone-1' });
    expect(ev!.data).toMatchObject({ sipCallId: callId, callback: psapCallback, numberDialed: '911', placed: true });
    // The location admin is mailed the same notice.
    await waitFor(
      () => smtp.mails.some((m) => m.subject.startsWith('EMERGENCY: 911') && m.to.includes('security@example.com')),
      15_000,
      why,
    );

    // Still not acknowledged: the call never needed it.
    expect((await e911ctl(socketPath, 'status')).json.result.notice.acknowledgedAt).toBeNull();
    expect(serverEvents.some((e) => e.type === 'notice-acknowledged')).toBe(false);
  });

  it('OK afterwards acknowledges the notice, and the server hears of it after the 911 call', async () => {
    await waitFor(() => screen().includes('EMERGENCY 911 NOTICE'), 10_000, why);
    sim.press('ok');
    await waitFor(() => serverEvents.some((e) => e.type === 'notice-acknowledged'), 10_000, why);
    const order = serverEvents.map((e) => e.type).filter((t) => t === 'emergency-call' || t === 'notice-acknowledged');
    expect(order).toEqual(['emergency-call', 'notice-acknowledged']);
    expect((await e911ctl(socketPath, 'status')).json.result.notice.acknowledgedAt).not.toBeNull();
  });
});

// The security desk is called, not only mailed: a reported 911 makes the server
// call the location's on-site numbers through its own PJSIP stack, play the
// spoken notice (espeak-ng) until someone presses 1, and record the answer.
// SIPp plays the desk: it presses 1 as RFC 4733 telephone-events (a capture the
// test writes) or by SIP INFO, or never; or it is busy, or does not exist.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Notification } from '../../provisioning/server/db/types.js';
import { readWav } from '../../provisioning/server/notify/speech.js';
import { freePort } from '../helpers/ports.js';
import { writeDtmfPcap, writeRtpPcap } from '../helpers/audio.js';
import { refuseScenario, startKamailio, startSipp, type Kamailio, type Sipp } from '../helpers/sip.js';
import { HQ, startTestServer, type TestServer } from '../helpers/server-app.js';
import { requires } from '../helpers/require.js';
import { startPortal, type PortalHarness } from '../helpers/portal.js';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';

const FIXTURES = path.resolve(import.meta.dirname, '..', 'fixtures', 'sipp');
const gate = requires('security-desk calls', ['voice', 'sipp', 'espeak']);
const pbxGate = requires('security-desk calls through a PBX that challenges', ['voice', 'sipp', 'espeak', 'kamailio']);
const browserGate = requires('security-desk calls on the portal', ['voice', 'sipp', 'espeak', 'browser']);

/** pjsua offers telephone-event/8000 under this payload type (pjmedia's PJMEDIA_RTP_PT_TELEPHONE_EVENTS). */
const TE_PT = 120;

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, ms: number, why: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`${why}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.skipIf(gate.skip)('security-desk calls', () => {
  let srv: TestServer;
  let dir: string;
  let espeakLog: string;
  const sipps: Sipp[] = [];
  let n = 0;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-desk-'));
    // espeak-ng behind a wrapper that logs each invocation: which voice spoke which message.
    espeakLog = path.join(dir, 'espeak.log');
    const espeak = path.join(dir, 'espeak-ng');
    writeFileSync(espeak, `#!/bin/sh\necho "$@" >> ${espeakLog}\nexec espeak-ng "$@"\n`, { mode: 0o755 });
    srv = await startTestServer({
      notify: {
        retry: { baseMs: 300, maxMs: 1200, maxAttempts: 50 },
        allowTargets: ['127.0.0.1'],
        sendTimeoutMs: 5_000,
        sip: { host: '127.0.0.1', port: await freePort(), rtpPort: 20000 + Math.floor(Math.random() * 20000) * 2 },
        // Fast speech: the unacknowledged case waits for whole plays of the message.
        speech: { wordsPerMinute: 450, command: espeak },
      },
    });
    await srv.app.service.updateAccount('test', { name: 'Example Corp', contactEmail: 'it@example.com' });
  });

  afterAll(async () => {
    for (const s of sipps) await s.close();
    await srv?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function configure(call: Record<string, unknown>) {
    await srv.app.service.setNotificationSettings('test', {
      call: { from: 'sip:e911@127.0.0.1', repeats: 4, ringSeconds: 10, maxAttempts: 3, ...call },
    });
  }

  /** A location calling `numbers`, a user with a phone there, and a 911 from that phone: the event id. */
  async function report911(numbers: string[], language = 'en'): Promise<string> {
    n++;
    const loc = await srv.app.service.createLocation('test', {
      ...HQ,
      code: `DESK-${n}`,
      adminEmails: [],
      smsNumbers: [],
      callNumbers: numbers,
      language,
    });
    await srv.app.service.createUser('test', {
      username: `caller${n}`,
      displayName: 'Ann Lee',
      locationId: loc.id,
      callback: '+14085550100',
      deviceIds: [`desk-phone-${n}`],
    });
    const id = `desk-evt-${n}`;
    await srv.app.intake.handleEvent({
      v: 1,
      id,
      type: 'emergency-call',
      deviceId: `desk-phone-${n}`,
      ts: new Date().toISOString(),
      data: {
        numberDialed: '911',
        callback: '+14085550100',
        displayName: 'Ann Lee',
        location: { source: 'provisioned', civic: { country: 'US', A1: 'CA', A3: 'San Jose', RD: 'Main St', HNO: '100', PC: '95110' } },
      },
    } as Parameters<TestServer['app']['intake']['handleEvent']>[0]);
    return id;
  }

  const callRows = async (eventId: string) =>
    (await srv.api.get<Notification[]>(`/api/notifications?eventId=${eventId}`)).filter((r) => r.channel === 'call');

  async function desk(scenario: string, keys: Record<string, string | number> = {}, calls = 1): Promise<Sipp> {
    const s = await startSipp({ scenario, keys, calls, timeoutSec: 60 });
    sipps.push(s);
    return s;
  }

  /** A copy of a desk scenario with its placeholders filled (SIPp takes no -key in a pause or a pcap path). */
  function deskScenario(template: string, ackAfterMs: number, pcap = ''): string {
    const file = path.join(dir, `${path.basename(template, '.xml')}-${++n}.xml`);
    const xml = readFileSync(path.join(FIXTURES, template), 'utf8')
      .replaceAll('ACK_AFTER_MS', String(ackAfterMs))
      .replaceAll('DTMF_PCAP', pcap);
    writeFileSync(file, xml);
    return file;
  }

  it('calls the desk, plays the spoken notice, and records the 1 pressed (RFC 4733) beside the event', async () => {
    await configure({});
    const pcap = path.join(dir, 'press1.pcap');
    writeDtmfPcap(pcap, { digit: '1', pt: TE_PT, leadMs: 400 });
    const sipp = await desk(deskScenario('uas-desk.xml', 1500, pcap));
    const t0 = Date.now();
    const eventId = await report911([`sip:desk@127.0.0.1:${sipp.port}`]);

    const [row] = await until(
      () => callRows(eventId),
      (r) => r[0]?.status === 'sent',
      30_000,
      'the call was not acknowledged',
    );
    expect(row!.acknowledgedAt).not.toBeNull();
    expect(row!.ackMethod).toBe('rfc2833');
    expect(row!.attempts).toBe(1);
    // The 1 came about 2 s in, long before the first play of the message ended.
    expect(row!.plays).toBe(0);
    expect(Date.parse(row!.acknowledgedAt!) - t0).toBeLessThan(10_000);
    expect((await sipp.exited).code).toBe(0);

    const msgs = sipp.messages();
    expect(msgs).toMatch(/INVITE sip:desk@127\.0\.0\.1/);
    expect(msgs).toMatch(/^From: <?sip:e911@127\.0\.0\.1/m);
    // The server hung up once acknowledged: the BYE is the server's, and the Call-ID is the row's.
    expect(msgs).toMatch(/BYE sip:desk@/);
    expect(msgs).toContain(`Call-ID: ${row!.providerId}`);
    expect(msgs).toMatch(new RegExp(`a=rtpmap:${TE_PT} telephone-event/8000`));

    // The notice as a 16 kHz mono WAV made by espeak-ng, a few seconds of speech.
    const wavs = readdirSync(path.join(srv.dir, 'speech')).filter((f) => f.endsWith('.wav'));
    expect(wavs).toHaveLength(1);
    const wav = readWav(readFileSync(path.join(srv.dir, 'speech', wavs[0]!)));
    expect(wav.rate).toBe(16000);
    expect(wav.samples.length / wav.rate).toBeGreaterThan(2);
  });

  it("speaks a Spanish site's message in Spanish, with espeak-ng's Latin American voice, and is acknowledged", async () => {
    await configure({});
    const pcap = path.join(dir, 'press1-es.pcap');
    writeDtmfPcap(pcap, { digit: '1', pt: TE_PT, leadMs: 400 });
    const sipp = await desk(deskScenario('uas-desk.xml', 1500, pcap));
    const eventId = await report911([`sip:desk@127.0.0.1:${sipp.port}`], 'es-US');
    const [row] = await until(
      () => callRows(eventId),
      (r) => r[0]?.status === 'sent',
      30_000,
      'the Spanish call was not acknowledged',
    );
    expect(row!.ackMethod).toBe('rfc2833');
    expect((await sipp.exited).code).toBe(0);

    const speech = path.join(srv.dir, 'speech');
    const texts = readdirSync(speech)
      .filter((f) => f.endsWith('.txt'))
      .map((f) => ({ key: f.slice(0, -4), text: readFileSync(path.join(speech, f), 'utf8') }));
    const es = texts.find((t) => t.text.startsWith('Emergencia.'));
    expect(es, JSON.stringify(texts)).toBeDefined();
    expect(es!.text).toContain('Llamada al 9 1 1 de Ann Lee, en 100 Main St');
    expect(es!.text).toContain('Número para devolver la llamada: 4 0 8, 5 5 5, 0 1 0 0.');
    expect(es!.text).toMatch(/Presione 1 para confirmar\.$/);
    // Its WAV (same key) was made by the Latin American Spanish voice.
    expect(readWav(readFileSync(path.join(speech, `${es!.key}.wav`))).rate).toBe(16000);
    const runs = readFileSync(espeakLog, 'utf8').split('\n');
    expect(runs.find((l) => l.includes(`${es!.key}.txt`))).toMatch(/^-v es-419 /);
  });

  it('takes a 1 sent by SIP INFO (application/dtmf-relay)', async () => {
    await configure({});
    const sipp = await desk(deskScenario('uas-desk-info.xml', 1000));
    const eventId = await report911([`sip:desk@127.0.0.1:${sipp.port}`]);
    const [row] = await until(
      () => callRows(eventId),
      (r) => r[0]?.status === 'sent',
      30_000,
      'the INFO 1 was not taken',
    );
    expect(row!.ackMethod).toBe('info');
    expect((await sipp.exited).code).toBe(0);
  });

  it('records a call answered but never acknowledged after the message played `repeats` times, and calls no more', async () => {
    await configure({ repeats: 2 });
    const pcap = path.join(dir, 'silence.pcap');
    writeRtpPcap(pcap, new Int16Array(8000 * 2));
    const sipp = await desk(deskScenario('uas-desk.xml', 200, pcap));
    const eventId = await report911([`sip:desk@127.0.0.1:${sipp.port}`]);
    const [row] = await until(
      () => callRows(eventId),
      (r) => r[0]?.status === 'unacknowledged',
      45_000,
      'not recorded unacknowledged',
    );
    expect(row!.plays).toBe(2);
    expect(row!.acknowledgedAt).toBeNull();
    expect(row!.lastError).toMatch(/played 2 times, not acknowledged/);
    expect(row!.attempts).toBe(1);
    expect((await sipp.exited).code).toBe(0);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await callRows(eventId))[0]!.attempts).toBe(1);
  });

  it('calls a busy desk again with backoff, maxAttempts times at most', async () => {
    await configure({ maxAttempts: 3 });
    const sipp = await desk(refuseScenario(dir, 486, 'Busy Here'), {}, 3);
    const eventId = await report911([`sip:desk@127.0.0.1:${sipp.port}`]);
    const [row] = await until(
      () => callRows(eventId),
      (r) => r[0]?.status === 'failed',
      30_000,
      'busy desk never gave up',
    );
    expect(row!.attempts).toBe(3);
    expect(row!.lastError).toMatch(/486 Busy Here/);
    const invites = [...sipp.messages().matchAll(/^INVITE sip:desk@/gm)].length;
    expect(invites).toBe(3);
    // Backoff: the three INVITEs were spread out, not sent back to back (base 300 ms, doubling).
    const stamps = [...sipp.messages().matchAll(/^-+ (\d{4}-\d\d-\d\d\s+[\d:.]+)[^\n]*\n[^\n]*\n\nINVITE/gm)];
    expect(stamps).toHaveLength(3);
    const ms = stamps.map((m) => Date.parse(m[1]!.replace(/\s+/, 'T')));
    // First retry after 150-300 ms, the second after 300-600 ms (half of each random).
    expect(ms[1]! - ms[0]!).toBeGreaterThanOrEqual(150);
    expect(ms[2]! - ms[1]!).toBeGreaterThanOrEqual(300);
  });

  it.skipIf(pbxGate.skip)(
    'calls through a PBX that wants registration and digest auth: refused without credentials, registered and acknowledged with them',
    async () => {
      const pcap = path.join(dir, 'press1-pbx.pcap');
      writeDtmfPcap(pcap, { digit: '1', pt: TE_PT, leadMs: 400 });
      const sipp = await desk(deskScenario('uas-desk.xml', 1500, pcap));
      // Kamailio challenges REGISTER (401) and INVITE (407) and sends every call on to the desk.
      let pbx: Kamailio | undefined;
      try {
        pbx = await startKamailio({
          cfg: path.resolve(import.meta.dirname, '..', 'fixtures', 'kamailio', 'registrar.cfg'),
          defines: {
            WITH_AUTH: true,
            WITH_PROXY_AUTH: true,
            AUTH_PASSWORD: '"desk-pass-6Tz"',
            DESK_URI: `"sip:127.0.0.1:${sipp.port}"`,
          },
        });
        const gateway = `sip:127.0.0.1:${pbx.port}`;
        const registrar = gateway;

        // No credentials: the INVITE is challenged and cannot be answered; once is enough.
        await configure({ gateway, maxAttempts: 3 });
        const refused = await report911(['+14085550199']);
        const [r1] = await until(
          () => callRows(refused),
          (r) => r[0]?.status === 'failed',
          20_000,
          'the unauthenticated call did not fail',
        );
        expect(r1!.lastError).toMatch(/407 Proxy Authentication Required/);
        // The 407 ends it: not retried up to maxAttempts (an earlier attempt may have failed otherwise on a loaded machine).
        expect(r1!.attempts).toBeLessThan(3);

        // A wrong password: the registrar challenges again, the call fails before any INVITE.
        await configure({ gateway, maxAttempts: 3, username: 'e911', password: 'wrong', realm: '127.0.0.1', registrar });
        const wrong = await report911(['+14085550199']);
        const [r2] = await until(
          () => callRows(wrong),
          (r) => r[0]?.status === 'failed',
          20_000,
          'the wrong password did not fail',
        );
        expect(r2!.lastError).toMatch(new RegExp(`registration at ${registrar}: 401`));
        expect(r2!.attempts).toBe(1);
        expect(sipp.messages()).not.toMatch(/INVITE/);

        // The right one: registered, the INVITE answers its 407, the desk rings and presses 1.
        await configure({ gateway, username: 'e911', password: 'desk-pass-6Tz', realm: '127.0.0.1', registrar });
        const ok = await report911(['+14085550199']);
        const [r3] = await until(
          () => callRows(ok),
          (r) => r[0]?.status === 'sent',
          30_000,
          'the authenticated call was not acknowledged',
        );
        expect(r3!.ackMethod).toBe('rfc2833');
        expect(r3!.attempts).toBe(1);
        expect((await sipp.exited).code).toBe(0);
        expect(pbx.log()).toMatch(/REGISTER sip:e911@127\.0\.0\.1 /);
        expect(pbx.log()).toMatch(/INVITE sip:\+14085550199@127\.0\.0\.1:\d+ authenticated as e911/);
        // The desk got it through the PBX (its Record-Route), as the number at the gateway.
        const msgs = sipp.messages();
        expect(msgs).toMatch(/INVITE sip:\+14085550199@127\.0\.0\.1/);
        expect(msgs).toMatch(new RegExp(`^Record-Route: <sip:127\\.0\\.0\\.1:${pbx.port};lr`, 'm'));
        expect(msgs).toContain(`Call-ID: ${r3!.providerId}`);
        // The stored password never comes back out.
        const shown = await srv.api.get<{ call: Record<string, unknown> }>('/api/account/notifications');
        expect(shown.call).toMatchObject({ username: 'e911', registrar, realm: '127.0.0.1', passwordSet: true });
        expect(JSON.stringify(shown)).not.toContain('desk-pass-6Tz');
      } finally {
        await pbx?.close();
      }
    },
  );

  it('does not call again a number that does not exist (404)', async () => {
    await configure({ maxAttempts: 3 });
    const sipp = await desk(refuseScenario(dir, 404, 'Not Found'), {}, 3);
    const eventId = await report911([`sip:desk@127.0.0.1:${sipp.port}`]);
    const [row] = await until(
      () => callRows(eventId),
      (r) => r[0]?.status === 'failed',
      30_000,
      'never failed',
    );
    expect(row!.lastError).toMatch(/404 Not Found/);
    // The 404 ends it: not tried again up to maxAttempts. (Under CI load an attempt before it
    // has failed otherwise, retryable, while the stack was still ending the previous test's call.)
    expect(row!.attempts, JSON.stringify(row)).toBeLessThan(3);
    await new Promise((r) => setTimeout(r, 1500)); // past the retry backoff (300-1200 ms)
    expect((await callRows(eventId))[0]).toMatchObject({ status: 'failed', attempts: row!.attempts });
  });
});

// pjsua is one per process: this server's stack starts only once the one above has stopped.
describe.skipIf(browserGate.skip)('security-desk calls on the portal', () => {
  let h: PortalHarness;
  let smtp: SmtpSink;
  let sipp: Sipp | undefined;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-desk-portal-'));
    smtp = await startSmtpSink();
    h = await startPortal({
      notify: {
        retry: { baseMs: 300, maxMs: 1200, maxAttempts: 50 },
        sendTimeoutMs: 5_000,
        sip: { host: '127.0.0.1', port: await freePort(), rtpPort: 20000 + Math.floor(Math.random() * 20000) * 2 },
      },
    });
    await h.srv.app.service.setNotificationSettings('test', {
      smtp: { host: '127.0.0.1', port: smtp.port, security: 'none', from: 'e911@example.com' },
      call: { from: 'sip:e911@127.0.0.1', repeats: 4, ringSeconds: 10, maxAttempts: 3 },
    });
    await h.login();
  });

  afterAll(async () => {
    await sipp?.close();
    await smtp?.close();
    await h?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("shows the desk's acknowledgement in the call's deliveries, beside the email", async () => {
    const pcap = path.join(dir, 'press1.pcap');
    writeDtmfPcap(pcap, { digit: '1', pt: TE_PT, leadMs: 400 });
    const scenario = path.join(dir, 'uas-desk.xml');
    writeFileSync(
      scenario,
      readFileSync(path.join(FIXTURES, 'uas-desk.xml'), 'utf8').replaceAll('ACK_AFTER_MS', '1000').replaceAll('DTMF_PCAP', pcap),
    );
    sipp = await startSipp({ scenario, timeoutSec: 60 });
    const desk = `sip:desk@127.0.0.1:${sipp.port}`;
    const { service } = h.srv.app;
    const loc = await service.createLocation('test', {
      ...HQ,
      code: 'DESK-P',
      adminEmails: ['security@example.com'],
      smsNumbers: [],
      callNumbers: [desk],
    });
    await service.createUser('test', {
      username: 'ann',
      displayName: 'Ann Lee',
      locationId: loc.id,
      callback: '+14085550100',
      deviceIds: ['desk-phone-p'],
    });
    await h.srv.app.intake.handleEvent({
      v: 1,
      id: 'desk-portal-1',
      type: 'emergency-call',
      deviceId: 'desk-phone-p',
      ts: new Date().toISOString(),
      data: { numberDialed: '911', callback: '+14085550100', displayName: 'Ann Lee' },
    } as Parameters<TestServer['app']['intake']['handleEvent']>[0]);

    const { page } = h;
    await page.getByRole('link', { name: 'Emergency calls', exact: true }).click();
    const row = page.locator('table.call-log tbody tr.emergency');
    await row.getByRole('link', { name: '911 emergency' }).click();
    const recipient = (r: string) => page.locator(`table.deliveries tr[data-recipient="${r}"]`);
    await expect.poll(() => recipient(desk).getAttribute('data-status'), { timeout: 20_000 }).toBe('sent');
    await expect
      .poll(() => recipient(desk).getByTestId('call-ack').textContent(), { timeout: 5_000 })
      .toMatch(/^acknowledged .+ \(keypad\)$/);
    expect(await recipient(desk).textContent()).toContain('phone call');
    await expect.poll(() => recipient('security@example.com').getAttribute('data-status'), { timeout: 10_000 }).toBe('sent');
    await expect.poll(() => page.getByTestId('delivery-summary').textContent()).toBe('2 sent');
    await h.shot('desk-call-acknowledged');
  });
});

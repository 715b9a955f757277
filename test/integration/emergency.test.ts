// The emergency path end to end: real agents (dist/agent/main.js) with the PJSIP
// addon, driven by e911ctl; SIPp as the PSAP (it answers 424 when location,
// civic elements or callback are missing), Kamailio as registrar and proxy,
// Mosquitto receiving the notification events. All on loopback.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { Store } from '../../agent/store/store.js';
import { documentHash } from '../../provisioning/protocol/signing.js';
import type { AddressDocument } from '../../provisioning/protocol/address.js';
import type { EventPayload } from '../../provisioning/protocol/messages.js';
import { agentConfig, spawnAgent, waitFor, type AgentProcess } from '../helpers/agent.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { startKamailio, startSipp, type Kamailio } from '../helpers/sip.js';
import { freePort } from '../helpers/ports.js';
import { testKeys } from '../helpers/address.js';
import { silentLog } from '../helpers/log.js';
import { requires } from '../helpers/require.js';
import { checkPidfTexts } from '../helpers/pidf-check.js';
import {
  e911ctl,
  hdr,
  multipartParts,
  parseSippLog,
  rawRegister,
  receivedInvites,
  silentUdp,
  staleBuild,
  type SipMessage,
} from '../helpers/emergency.js';

const FIX = path.resolve(import.meta.dirname, '..', 'fixtures');
const PSAP = path.join(FIX, 'emergency', 'psap.xml');
const PSAP_ANY = path.join(FIX, 'emergency', 'psap-any.xml');
const CALLEE = path.join(FIX, 'emergency', 'callee-held.xml');
const KAMAILIO_CFG = path.join(FIX, 'kamailio', 'registrar.cfg');

const gate = requires('emergency integration tests', ['voice', 'sipp', 'kamailio', 'broker', 'xmllint']);
// A stale dist/ is not a missing component: it fails (npm test builds first).
const stale = staleBuild(['agent/main.ts', 'agent/root.ts', 'agent/emergency/service.ts', 'agent/cli/e911ctl.ts']);

const ADDRESS: AddressDocument = {
  v: 1,
  deviceId: 'x',
  version: 7,
  issuedAt: '2026-11-22T07:00:00.000Z',
  civic: { country: 'US', A1: 'CA', A3: 'San Jose', RD: 'Main & 1st', STS: 'St', HNO: '100', FLR: '2', BLD: 'A', ROOM: '210', PC: '95110' },
  callback: '+14085550100',
  displayName: 'Front Desk',
  locationCode: 'SJ-HQ',
};

describe.skipIf(gate.skip)('emergency calls through the real agent, SIPp, Kamailio and Mosquitto', () => {
  const keys = testKeys();
  let dir: string;
  let broker: Mosquitto;
  const events: EventPayload[] = [];
  let sub: mqtt.MqttClient;
  let k1: Kamailio; // registrar + proxy, urn:service:sos to the PSAP
  let k2: Kamailio; // registrar that refuses our password
  let psapPort: number;
  const agents: AgentProcess[] = [];

  async function startAgent(
    name: string,
    o: { address: boolean; doc?: Partial<AddressDocument>; sip?: Record<string, unknown>; emergency: Record<string, unknown> },
  ) {
    const deviceId = `phone-${name}`;
    const setup = agentConfig(
      path.join(dir, name),
      { deviceId, brokerUrl: broker.url, serverPublicKey: keys.pair.publicKey },
      {
        sip: {
          bindAddress: '127.0.0.1',
          publicAddress: '127.0.0.1',
          port: await freePort(),
          rtpPort: await freePort(),
          sound: 'null',
          ...o.sip,
        },
        emergency: { extraHeaders: [{ name: 'X-E911-Site', value: 'HQ' }], ...o.emergency },
      },
    );
    if (o.address) {
      const doc = { ...ADDRESS, ...o.doc, deviceId };
      const store = new Store({ dataDir: setup.raw.dataDir as string, log: silentLog() });
      store.applyAddress(
        { doc, version: doc.version, hash: documentHash(doc), signature: 'seeded-by-test', receivedAt: doc.issuedAt },
        { v: 1, id: `seed-${deviceId}`, type: 'address-applied', deviceId, ts: doc.issuedAt, data: {} },
      );
      store.close();
    }
    const proc = await spawnAgent(setup);
    agents.push(proc);
    return { ...setup, deviceId, proc };
  }
  type A = Awaited<ReturnType<typeof startAgent>>;
  let a: A; // address, registered at k1, routes: primary = PSAP (number form)
  let b: A; // address, registration refused by k2, urn form via k1
  let d: A; // address, primary silent, secondary = PSAP; a sound device that does not exist
  let e: A; // no address: fallback route
  let silent: Awaited<ReturnType<typeof silentUdp>>;
  let fallbackPort: number;

  beforeAll(async () => {
    if (stale) throw new Error(stale);
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-emergency-'));
    broker = await startMosquitto();
    sub = mqtt.connect(broker.url, { protocolVersion: 5 });
    sub.on('message', (_t, payload) => events.push(JSON.parse(payload.toString()) as EventPayload));
    await new Promise<void>((resolve, reject) => sub.subscribe('e911/v1/+/events', { qos: 1 }, (err) => (err ? reject(err) : resolve())));
    psapPort = await freePort();
    fallbackPort = await freePort();
    const silentPort = await freePort();
    silent = await silentUdp(silentPort);
    [k1, k2] = await Promise.all([
      startKamailio({ cfg: KAMAILIO_CFG, defines: { PSAP_URI: `"sip:127.0.0.1:${psapPort}"` } }),
      startKamailio({ cfg: KAMAILIO_CFG, defines: { WITH_AUTH: true, AUTH_PASSWORD: '"right-password"' } }),
    ]);
    [a, b, d, e] = await Promise.all([
      startAgent('a', {
        address: true,
        doc: { language: 'es' },
        sip: { account: { uri: 'sip:1001@127.0.0.1', registrar: `sip:127.0.0.1:${k1.port}` } },
        emergency: { routes: { primary: `sip:127.0.0.1:${psapPort}` } },
      }),
      startAgent('b', {
        address: true,
        sip: {
          account: { uri: 'sip:1002@127.0.0.1', registrar: `sip:127.0.0.1:${k2.port}`, username: '1002', password: 'wrong-password' },
        },
        emergency: { routes: { primary: `sip:127.0.0.1:${k1.port}` }, targetForm: 'urn' },
      }),
      startAgent('d', {
        address: true,
        sip: { sound: { capture: 'e911-test-missing', playback: 'e911-test-missing' } },
        emergency: { routes: { primary: `sip:127.0.0.1:${silentPort}`, secondary: `sip:127.0.0.1:${psapPort}` }, failoverMs: 1000 },
      }),
      startAgent('e', {
        address: false,
        emergency: { routes: { primary: `sip:127.0.0.1:${psapPort}`, fallback: `sip:127.0.0.1:${fallbackPort}` } },
      }),
    ]);
  }, 60_000);

  afterAll(async () => {
    for (const p of agents) {
      p.child.kill('SIGTERM');
      await p.exited;
    }
    sub?.end(true);
    await Promise.all([k1?.close(), k2?.close(), silent?.close(), broker?.close()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Dials on an agent with e911ctl, lets the answering SIPp take the call, hangs up; returns what SIPp received. */
  async function callThrough(agent: A, digits: string, scenario: string, port: number, extra?: () => Promise<void>) {
    const sipp = await startSipp({ scenario, port, timeoutSec: 20 });
    try {
      const r = await e911ctl(agent.socketPath, 'dial', digits);
      expect(r.json.ok, JSON.stringify(r.json)).toBe(true);
      // Answered: the ACK reached the answering point.
      await waitFor(
        () => /ACK /.test(sipp.messages()),
        10_000,
        () => `no ACK at the PSAP.\n${sipp.messages()}\n${agent.proc.output()}`,
      );
      await extra?.();
      const h = await e911ctl(agent.socketPath, 'hangup');
      expect(h.code).toBe(0);
      const exit = await sipp.exited;
      const invites = receivedInvites(sipp.messages());
      return { dial: r.json.result, exit, invites, sippLog: sipp.messages() + sipp.logs() };
    } finally {
      await sipp.close();
    }
  }

  async function eventFor(type: string, pred: (ev: EventPayload) => boolean): Promise<EventPayload> {
    await waitFor(
      () => events.some((ev) => ev.type === type && pred(ev)),
      10_000,
      () => `no ${type} event: ${JSON.stringify(events.map((x) => [x.type, x.data.numberDialed ?? x.data.phase]))}`,
    );
    return events.find((ev) => ev.type === type && pred(ev))!;
  }

  /** The SDP offer: the last part of a multipart body, else the body. */
  function sdpOf(invite: SipMessage): string {
    const part = multipartParts(invite).find((p) =>
      /application\/sdp/.test(p.headers.find((h) => h.name.toLowerCase() === 'content-type')?.value ?? ''),
    );
    return part ? part.body : invite.body;
  }

  /** The attribute lines of the SDP's audio m-line section. */
  function audioAttributes(sdp: string): string[] {
    const sections = sdp.split(/\r?\n(?=m=)/);
    const audio = sections.find((s) => s.startsWith('m=audio'));
    expect(audio, `an audio m-line in:\n${sdp}`).toBeDefined();
    return audio!.split(/\r?\n/).filter((l) => l.startsWith('a='));
  }

  function pidfPart(invite: SipMessage): { cid: string; body: string } {
    const part = multipartParts(invite).find((p) =>
      /application\/pidf\+xml/.test(p.headers.find((h) => h.name.toLowerCase() === 'content-type')?.value ?? ''),
    );
    expect(part, 'the INVITE has a PIDF-LO part').toBeDefined();
    return { cid: part!.headers.find((h) => h.name.toLowerCase() === 'content-id')!.value, body: part!.body };
  }

  it('911 direct: the PSAP accepts it; Geolocation points at a PIDF-LO that validates; the event carries what was sent', async () => {
    const pidfNow = await e911ctl(a.socketPath, 'pidf');
    expect(checkPidfTexts([pidfNow.json.result.pidf])[0]!.ok).toBe(true);

    const { dial, exit, invites } = await callThrough(a, '911', PSAP, psapPort);
    expect(dial).toMatchObject({ kind: 'emergency', placed: true, route: 'primary' });
    expect(exit.code).toBe(0); // the PSAP found location, civic elements and callback
    expect(invites).toHaveLength(1);
    const inv = invites[0]!;
    expect(inv.startLine).toBe(`INVITE sip:911@127.0.0.1:${psapPort} SIP/2.0`);
    expect(hdr(inv, 'Priority')).toBe('emergency');
    expect(hdr(inv, 'Geolocation-Routing')).toBe('yes');
    expect(hdr(inv, 'P-Asserted-Identity')).toContain('<tel:+14085550100>');
    expect(hdr(inv, 'X-E911-Site')).toBe('HQ');
    expect(hdr(inv, 'Content-Type')).toMatch(/^multipart\/mixed/);
    const { cid, body } = pidfPart(inv);
    expect(hdr(inv, 'Geolocation')).toBe(`<cid:${cid.replace(/^<|>$/g, '')}>`);
    const [check] = checkPidfTexts([body]);
    expect(check!.ok, check!.schemaErrors + check!.namespaceErrors.join()).toBe(true);
    expect(body).toContain('<ca:RD>Main &amp; 1st</ca:RD>');
    // RFC 8373: the user's language (Spanish here) on the audio stream, both ways, once each.
    const attrs = audioAttributes(sdpOf(inv));
    expect(attrs.filter((l) => l.startsWith('a=hlang-'))).toEqual(['a=hlang-send:es', 'a=hlang-recv:es']);

    const ev = await eventFor('emergency-call', (x) => x.deviceId === a.deviceId && x.data.numberDialed === '911');
    expect(ev.data).toMatchObject({
      sipCallId: hdr(inv, 'Call-ID'),
      placed: true,
      route: { name: 'primary' },
      callback: '+14085550100',
      displayName: 'Front Desk',
      language: 'es',
      addressMissing: false,
      device: { ip: '127.0.0.1' },
    });
    const loc = ev.data.location as { pidf: string; civic: Record<string, string> };
    expect(loc.pidf).toBe(body); // exactly as sent
    expect(loc.civic).toMatchObject({ RD: 'Main & 1st', HNO: '100', ROOM: '210', FLR: '2' });
    expect((ev.data.time as { utc: string; local: string }).utc).toMatch(/Z$/);

    // The call-ended event carries the call's RTP figures (the PSAP sends no RTP; the phone always does: no VAD).
    const ended = await eventFor('emergency-call-progress', (x) => x.data.callRef === ev.data.callRef && x.data.phase === 'ended');
    const media = ended.data.media as { rtpSent: number; rtpReceived: number; rtpLost: number; jitterMs: number };
    expect(media.rtpSent).toBeGreaterThan(0);
    expect(media.rtpReceived).toBe(0);
    expect(ended.data.by).toBe('caller');
    // ... and e911ctl shows them.
    const calls = await e911ctl(a.socketPath, 'calls');
    expect(calls.json.result.find((c: { callRef: string }) => c.callRef === ev.data.callRef)).toMatchObject({
      state: 'ended',
      media: { rtpSent: media.rtpSent },
    });
  });

  it('9911 (outside-line prefix): sent as 911, never rewritten', async () => {
    const { dial, exit, invites } = await callThrough(a, '9911', PSAP, psapPort);
    expect(dial).toMatchObject({ placed: true, dialed: '9911', number: '911' });
    expect(exit.code).toBe(0);
    expect(invites[0]!.startLine).toBe(`INVITE sip:911@127.0.0.1:${psapPort} SIP/2.0`);
    await eventFor('emergency-call', (x) => x.deviceId === a.deviceId && x.data.numberDialed === '9911');
  });

  it('933: a test call with a test-call event', async () => {
    const { dial, exit, invites } = await callThrough(a, '933', PSAP, psapPort);
    expect(dial).toMatchObject({ kind: 'test', placed: true });
    expect(exit.code).toBe(0);
    expect(invites[0]!.startLine).toBe(`INVITE sip:933@127.0.0.1:${psapPort} SIP/2.0`);
    const ev = await eventFor('test-call', (x) => x.deviceId === a.deviceId);
    expect(ev.data).toMatchObject({ numberDialed: '933', placed: true });
  });

  it('an active call is held when 911 goes out', async () => {
    const calleePort = await freePort();
    const callee = await startSipp({ scenario: CALLEE, port: calleePort, timeoutSec: 25 });
    try {
      expect(await rawRegister(k1.port, '2000', `sip:callee@127.0.0.1:${calleePort}`)).toBe(200);
      const status = await e911ctl(a.socketPath, 'status');
      expect(status.json.result.emergency.registration).toMatchObject({ registered: true });
      const ord = await e911ctl(a.socketPath, 'dial', '2000#');
      expect(ord.json.result).toMatchObject({ kind: 'ordinary', placed: true });
      await waitFor(
        () => /ACK sip:callee/.test(callee.messages()),
        10_000,
        () => callee.messages(),
      );

      const { exit, invites } = await callThrough(a, '911', PSAP, psapPort, async () => {
        await waitFor(
          () => /held: a=(sendonly|inactive)/.test(callee.logs()),
          10_000,
          () => `no hold at the callee:\n${callee.messages()}`,
        );
      });
      expect(exit.code).toBe(0);
      expect(invites).toHaveLength(1);
      expect((await callee.exited).code).toBe(0); // held, then BYE
      const ev = await eventFor(
        'emergency-call',
        (x) => x.deviceId === a.deviceId && (x.data.otherCalls as { held: unknown[] }).held.length === 1,
      );
      expect(ev.data.placed).toBe(true);
    } finally {
      await callee.close();
    }
  });

  it('unregistered (Kamailio refused the password): 911 goes out anyway', async () => {
    // Wait until the registrar has refused us (401/403), then dial.
    let reg: { registered: boolean; code: number } | undefined;
    for (const end = Date.now() + 10_000; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) {
      reg = (await e911ctl(b.socketPath, 'status')).json.result.emergency.registration;
      if (reg && reg.code >= 400) break;
    }
    expect(reg).toMatchObject({ registered: false });
    expect(reg!.code).toBeGreaterThanOrEqual(400);
    const { dial, exit, invites } = await callThrough(b, '911', PSAP, psapPort);
    expect(dial).toMatchObject({ placed: true });
    expect(exit.code).toBe(0);
    expect(invites).toHaveLength(1);
    const ev = await eventFor('emergency-call', (x) => x.deviceId === b.deviceId && x.data.numberDialed === '911');
    expect(ev.data.registered).toBe(false);
  });

  it('the urn form: <urn:service:sos> through Kamailio as proxy to the PSAP, the dialog keeping its To tag', async () => {
    const { dial, exit, invites, sippLog } = await callThrough(b, 'urn:service:sos', PSAP, psapPort);
    expect(dial).toMatchObject({ placed: true, target: '<urn:service:sos>' });
    expect(exit.code).toBe(0);
    const inv = invites[0]!;
    expect(inv.startLine).toBe('INVITE urn:service:sos SIP/2.0');
    expect(hdr(inv, 'To')).toContain('<urn:service:sos>');
    expect(hdr(inv, 'Record-Route')).toContain(`127.0.0.1:${k1.port}`); // came through the proxy
    // pjsip keeps the To tag only when the URN target is bracketed (docs/voice.md: a bare URN loses the 200's To tag): ACK and BYE carry it.
    const inDialog = parseSippLog(sippLog).filter((m) => m.direction === 'received' && /^(ACK|BYE) /.test(m.startLine));
    expect(inDialog.map((m) => m.startLine.split(' ')[0])).toEqual(['ACK', 'BYE']);
    for (const m of inDialog) expect(hdr(m, 'To')).toMatch(/;tag=/);
  });

  it('primary silent: after failoverMs the secondary takes the call', async () => {
    const before = silent.messages.length;
    const { dial, exit, invites } = await callThrough(d, '911', PSAP, psapPort);
    expect(dial).toMatchObject({ placed: true, route: 'primary' });
    expect(exit.code).toBe(0);
    expect(invites).toHaveLength(1);
    // A document without a language means English: the PSAP is told so.
    expect(audioAttributes(sdpOf(invites[0]!)).filter((l) => l.startsWith('a=hlang-'))).toEqual(['a=hlang-send:en', 'a=hlang-recv:en']);
    expect(silent.messages.slice(before).some((m) => m.startsWith('INVITE sip:911@'))).toBe(true);
    const ev = await eventFor('emergency-call', (x) => x.deviceId === d.deviceId);
    const progress = await eventFor('emergency-call-progress', (x) => x.data.callRef === ev.data.callRef && x.data.phase === 'failover');
    expect(progress.data).toMatchObject({ from: 'primary', route: 'secondary' });
    await eventFor('emergency-call-progress', (x) => x.data.callRef === ev.data.callRef && x.data.phase === 'answered');
  });

  it('a sound device that does not exist: logged and reported (audio-device-failed), and 911 still went out (above)', async () => {
    const ev = await eventFor('audio-device-failed', (x) => x.deviceId === d.deviceId && x.data.phase === 'start');
    expect(ev.data).toMatchObject({ capture: 'e911-test-missing', playback: 'e911-test-missing' });
    expect(ev.data.reason).toContain('no capture device named "e911-test-missing"');
    expect(d.proc.output()).toContain('sound device failed');
    // The failover call above went out from this agent and was answered.
    const call = await eventFor('emergency-call', (x) => x.deviceId === d.deviceId);
    await eventFor('emergency-call-progress', (x) => x.data.callRef === call.data.callRef && x.data.phase === 'answered');
  });

  it('no address on file: the fallback route, no location, flagged', async () => {
    const pidf = await e911ctl(e.socketPath, 'pidf');
    expect(pidf.json.result).toEqual({ pidf: null, addressMissing: true });
    const { dial, exit, invites } = await callThrough(e, '911', PSAP_ANY, fallbackPort);
    expect(dial).toMatchObject({ placed: true, route: 'fallback', addressMissing: true });
    expect(exit.code).toBe(0);
    const inv = invites[0]!;
    expect(inv.startLine).toBe(`INVITE sip:911@127.0.0.1:${fallbackPort} SIP/2.0`);
    expect(hdr(inv, 'Geolocation')).toBeUndefined();
    expect(hdr(inv, 'Priority')).toBe('emergency');
    // No address document, so no user and no language to tell.
    expect(sdpOf(inv)).toContain('m=audio');
    expect(sdpOf(inv)).not.toContain('hlang');
    const ev = await eventFor('emergency-call', (x) => x.deviceId === e.deviceId);
    expect(ev.data).toMatchObject({ addressMissing: true, location: null, route: { name: 'fallback' } });
  });

  it('no address and the fallback silent: the primary gets the call, and the PSAP rejects it without location (424)', async () => {
    // The negative control of the PSAP scenario: a call without location is refused, SIPp exits 1.
    const sipp = await startSipp({ scenario: PSAP, port: psapPort, timeoutSec: 20 });
    try {
      const r = await e911ctl(e.socketPath, 'dial', '911');
      expect(r.json.result).toMatchObject({ placed: true, route: 'fallback' });
      const callRef = r.json.result.callRef as string;
      const exit = await sipp.exited;
      expect(exit.code).toBe(1);
      expect(sipp.logs()).toContain('rejected: location or callback missing');
      const invites = receivedInvites(sipp.messages());
      expect(invites).toHaveLength(1);
      expect(hdr(invites[0]!, 'Geolocation')).toBeUndefined();
      await eventFor(
        'emergency-call-progress',
        (x) => x.data.callRef === callRef && x.data.phase === 'failover' && x.data.route === 'primary',
      );
      await eventFor('emergency-call-progress', (x) => x.data.callRef === callRef && x.data.phase === 'failed' && x.data.code === 424);
    } finally {
      await sipp.close();
    }
  });
});

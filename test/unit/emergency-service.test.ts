// The priority decisions and route failover of the emergency path, with the
// in-memory VoiceStack and a manual clock. (The real INVITE on the wire is in
// test/integration/emergency.test.ts.)
import { describe, expect, it } from 'vitest';
import { MemoryVoiceStack } from '../../hal/voice/memory.js';
import { EmergencyService, type DialOutcome, type EmergencyServiceDeps } from '../../agent/emergency/service.js';
import { dialPlanSchema, emergencySchema, sipSchema } from '../../agent/emergency/config.js';
import { incomingDecision, DEFAULT_FEATURES, type TrackedCall } from '../../agent/emergency/priority.js';
import type { StoredAddress } from '../../agent/store/store.js';
import type { AddressDocument } from '../../provisioning/protocol/address.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { silentLog } from '../helpers/log.js';

const ADDRESS_DOC: AddressDocument = {
  v: 1,
  deviceId: 'phone-1',
  version: 3,
  issuedAt: '2026-11-22T07:00:00.000Z',
  civic: { country: 'US', A1: 'CA', A3: 'San Jose', RD: 'Main', STS: 'St', HNO: '100', FLR: '2', ROOM: '210', PC: '95110' },
  callback: '+14085550100',
  displayName: 'Front Desk',
  locationCode: 'SJ-HQ',
};
const ADDRESS: StoredAddress = {
  doc: ADDRESS_DOC,
  version: 3,
  hash: 'h',
  signature: 's',
  receivedAt: ADDRESS_DOC.issuedAt,
  appliedAt: ADDRESS_DOC.issuedAt,
};

const ROUTES = { primary: 'sip:10.0.0.1:5060', secondary: 'sip:10.0.0.2:5060', fallback: 'sip:10.0.0.3:5060' };

interface Harness {
  svc: EmergencyService;
  voice: MemoryVoiceStack;
  clock: FakeClock;
  events: { type: string; data: Record<string, unknown>; callsAtEmit: number }[];
  deferred: (() => void)[];
  flush: () => void;
  saved: number[];
  /** Moves only the wall clock (an NTP step, a user setting the time); the monotonic clock does not jump. */
  jumpWall: (ms: number) => void;
}

async function harness(
  o: {
    emergency?: Record<string, unknown>;
    sip?: Record<string, unknown>;
    address?: StoredAddress | null;
    voice?: MemoryVoiceStack | null;
    suppressLoad?: number;
    site?: EmergencyServiceDeps['site'];
  } = {},
): Promise<Harness> {
  const voice = o.voice === null ? null : (o.voice ?? new MemoryVoiceStack());
  const clock = new FakeClock();
  const events: Harness['events'] = [];
  const deferred: (() => void)[] = [];
  const saved: number[] = [];
  let wallOffset = 0;
  const deps: EmergencyServiceDeps = {
    voice,
    voiceUnavailableReason: 'PJSIP addon not available: not built',
    emergency: emergencySchema.parse({ routes: ROUTES, extraHeaders: [{ name: 'X-Site', value: 'HQ' }], ...o.emergency }),
    dialPlan: dialPlanSchema.parse({ rules: [{ match: '9(\\d+)', replace: '$1' }] }),
    sip: sipSchema.parse({ port: 5062, bindAddress: '10.0.0.50', ...o.sip }),
    deviceId: 'phone-1',
    agentVersion: 'test',
    log: silentLog(),
    timers: clock,
    now: () => new Date(clock.now() + wallOffset),
    monotonic: clock.now,
    emitEvent: (type, data) => events.push({ type, data, callsAtEmit: voice?.calls.length ?? 0 }),
    defer: (fn) => deferred.push(fn),
    suppression: { load: () => o.suppressLoad ?? null, save: (ms) => saved.push(ms) },
    network: () => ({ interface: 'eth0', ip: '10.0.0.50', mac: '00:d0:1e:12:34:56' }),
    ...(o.site ? { site: o.site } : {}),
  };
  const svc = new EmergencyService(deps);
  await svc.start(o.address === undefined ? ADDRESS : o.address);
  const flush = () => {
    while (deferred.length) deferred.shift()!();
  };
  return { svc, voice: voice as MemoryVoiceStack, clock, events, deferred, flush, saved, jumpWall: (ms) => (wallOffset += ms) };
}

const tick = () => new Promise((r) => setTimeout(r, 0));
const header = (call: { options: { headers?: { name: string; value: string }[] } }, name: string) =>
  call.options.headers?.find((h) => h.name.toLowerCase() === name.toLowerCase())?.value;
const dial = (svc: EmergencyService, digits: string) => {
  let last: DialOutcome | undefined;
  for (const k of digits) last = svc.keypad(k);
  return last!;
};

describe('emergency call: what goes out', () => {
  it('911 typed digit by digit: the INVITE leaves inside the last keypad() call, the event after', async () => {
    const h = await harness();
    expect(h.svc.keypad('9')).toEqual({ kind: 'pending', collected: '9' });
    expect(h.svc.keypad('1').kind).toBe('pending');
    expect(h.voice.calls).toHaveLength(0);
    const out = h.svc.keypad('1');
    expect(out).toMatchObject({ kind: 'emergency', placed: true, dialed: '911', route: 'primary', target: 'sip:911@10.0.0.1:5060' });
    expect(h.voice.calls).toHaveLength(1);
    expect(h.events).toHaveLength(0); // not on the call path
    h.flush();
    expect(h.events.map((e) => e.type)).toEqual(['emergency-call']);
    expect(h.events[0]!.callsAtEmit).toBe(1);
  });

  it('carries Geolocation pointing at the PIDF-LO part, Geolocation-Routing, PAI, Priority and the extra headers', async () => {
    const h = await harness();
    dial(h.svc, '911');
    const call = h.voice.calls[0]!;
    const part = call.options.parts![0]!;
    expect(part.contentType).toBe('application/pidf+xml');
    const cid = part.headers!.find((x) => x.name === 'Content-ID')!.value;
    expect(cid).toMatch(/^<loc-[0-9a-f-]+@[^>]+>$/);
    expect(header(call, 'Geolocation')).toBe(`<cid:${cid.slice(1, -1)}>`);
    expect(header(call, 'Geolocation-Routing')).toBe('yes');
    expect(header(call, 'Priority')).toBe('emergency');
    expect(header(call, 'P-Asserted-Identity')).toContain('+14085550100');
    expect(header(call, 'X-Site')).toBe('HQ');
    expect(part.body).toContain('<ca:RD>Main</ca:RD>');
    expect(part.body).toContain('<dm:deviceID>mac:00d01e123456</dm:deviceID>');
    expect(call.options.from).toBe('"Front Desk" <sip:+14085550100@10.0.0.50;user=phone>');
    // The route account sends via the route (a loose route), and never registers.
    const acct = h.voice.accounts.get(call.account as number)!;
    expect(acct.config).toMatchObject({ proxies: ['sip:10.0.0.1:5060;lr'], register: false });
    // A document without a language means English: RFC 8373 says so on the audio line.
    expect(call.options.audioAttributes).toEqual([
      { name: 'hlang-send', value: 'en' },
      { name: 'hlang-recv', value: 'en' },
    ]);
  });

  it("the user's language from the address document goes to the PSAP (hlang) and into the event", async () => {
    const h = await harness({ address: { ...ADDRESS, doc: { ...ADDRESS_DOC, language: 'es' } } });
    dial(h.svc, '911');
    expect(h.voice.calls[0]!.options.audioAttributes).toEqual([
      { name: 'hlang-send', value: 'es' },
      { name: 'hlang-recv', value: 'es' },
    ]);
    h.flush();
    expect(h.events[0]!.data.language).toBe('es');
  });

  it('the event says who called and from where at call time: extension, address and switch port then, not at start', async () => {
    let where = {
      ip: '10.1.2.30',
      interface: 'eth0',
      switch: { chassisId: 'aa:bb:cc:00:00:01', portId: 'ge-0/0/7', portDescr: 'desk 7', sysName: 'sw1' },
    };
    const h = await harness({ sip: { account: { uri: 'sip:2101@pbx.example' } }, site: () => where });
    where = { ...where, ip: '10.1.3.44', switch: { ...where.switch, portId: 'ge-0/0/9', portDescr: 'desk 9' } }; // the phone moved
    dial(h.svc, '911');
    h.flush();
    expect(h.events[0]!.data.site).toEqual({
      extension: '2101',
      ip: '10.1.3.44',
      interface: 'eth0',
      switch: { chassisId: 'aa:bb:cc:00:00:01', portId: 'ge-0/0/9', portDescr: 'desk 9', sysName: 'sw1' },
    });
    // Without a network service: the interface found at start, no switch, and no extension without an account.
    const bare = await harness();
    dial(bare.svc, '933');
    bare.flush();
    expect(bare.events[0]!.data.site).toEqual({ extension: null, ip: '10.0.0.50', interface: 'eth0', switch: null });
  });

  it('9911 and 933: prefixed emergency call, and a test call with a test-call event and no suppression', async () => {
    const h = await harness();
    expect(dial(h.svc, '9911')).toMatchObject({ kind: 'emergency', placed: true, dialed: '9911', target: 'sip:911@10.0.0.1:5060' });
    h.svc.hangup();
    const t = await harness();
    expect(dial(t.svc, '933')).toMatchObject({ kind: 'test', placed: true, target: 'sip:933@10.0.0.1:5060' });
    t.flush();
    expect(t.events.map((e) => e.type)).toEqual(['test-call']);
    expect(t.svc.isSuppressed()).toBe(true); // while the call is live
    t.svc.hangup();
    t.voice.setCallState(0, 'DISCONNECTED', 487);
    t.flush();
    expect(t.svc.isSuppressed()).toBe(false);
    expect(t.saved).toEqual([]);
  });

  it('the urn form: <urn:service:sos> through the route', async () => {
    const h = await harness({ emergency: { targetForm: 'urn' } });
    expect(dial(h.svc, '911')).toMatchObject({ placed: true, target: '<urn:service:sos>' });
    expect(h.voice.calls[0]!.target).toBe('<urn:service:sos>');
    expect(h.voice.accounts.get(h.voice.calls[0]!.account as number)!.config.proxies).toEqual(['sip:10.0.0.1:5060;lr']);
    // 933 has no URN by default: it stays a number even in urn form.
    h.svc.hangup();
    expect(dial(h.svc, '933')).toMatchObject({ placed: true, target: 'sip:933@10.0.0.1:5060' });
    // Dialing the URN itself (e911ctl dial urn:service:sos).
    expect(h.svc.dial('urn:service:sos')).toMatchObject({ kind: 'emergency', placed: true, target: '<urn:service:sos>' });
  });

  it('the event carries the location exactly as sent, callback, device IP/MAC, UTC and local time', async () => {
    const h = await harness();
    dial(h.svc, '911');
    h.flush();
    // biome-ignore lint/suspicious/noExplicitAny: an event's data as the journal stored it; the assertions check its shape
    const d = h.events[0]!.data as Record<string, any>;
    const sent = h.voice.calls[0]!.options.parts![0]!.body;
    expect(d.location.pidf).toBe(sent);
    expect(d.location.civic).toMatchObject({ RD: 'Main', HNO: '100', ROOM: '210' });
    expect(d).toMatchObject({
      numberDialed: '911',
      emergencyNumber: '911',
      placed: true,
      route: { name: 'primary', uri: ROUTES.primary },
      callback: '+14085550100',
      displayName: 'Front Desk',
      locationCode: 'SJ-HQ',
      addressMissing: false,
      device: { ip: '10.0.0.50', mac: '00:d0:1e:12:34:56' },
      time: { utc: '2026-11-22T07:00:00.000Z' },
    });
    expect(d.sipCallId).toBe(h.voice.calls[0]!.sipCallId);
    expect(d.time.local).toMatch(/^2026-11-2\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$/);
  });
});

describe('emergency call: whatever the phone is doing', () => {
  it('goes out with the keypad locked, DND on, forwarding on and the call limit reached; ordinary dials do not', async () => {
    const h = await harness({ sip: { maxCalls: 1, account: { uri: 'sip:1001@pbx.example', registrar: 'sip:10.0.0.9' } } });
    h.svc.setFeatures({ keypadLocked: true, dnd: true, forwardTo: 'sip:2000@pbx.example' });
    const ord = h.svc.dial('5551234#');
    expect(ord).toMatchObject({ kind: 'ordinary', placed: false, reason: 'keypad-locked' });
    h.svc.setFeatures({ keypadLocked: false });
    expect(h.svc.dial('5551234#')).toMatchObject({ kind: 'ordinary', placed: true });
    h.voice.respond(0, 200);
    expect(h.svc.dial('5551235#')).toMatchObject({ kind: 'ordinary', placed: false, reason: 'call-limit' });
    h.svc.setFeatures({ keypadLocked: true });
    expect(dial(h.svc, '911')).toMatchObject({ kind: 'emergency', placed: true });
  });

  it('holds an answered call and ends a ringing one (policy hold, the default)', async () => {
    const h = await harness();
    const inc = h.voice.incomingCall('sip:alice@10.0.0.77');
    h.voice.answer(inc, 200);
    await tick(); // the fake, like PJSIP, reports what answer/hangup/hold cause after they return
    const ringing = h.voice.incomingCall('sip:bob@10.0.0.78');
    dial(h.svc, '911');
    await tick();
    expect(h.voice.calls.find((c) => c.callId === inc)!.held).toBe(true);
    expect(h.voice.calls.find((c) => c.callId === ringing)!.state).toBe('DISCONNECTED');
    h.flush();
    expect(h.events[0]!.data.otherCalls).toEqual({ held: [inc], ended: [ringing] });
    // The emergency INVITE went out before the hold.
    expect(h.voice.calls.map((c) => c.role)).toEqual(['callee', 'callee', 'caller']);
  });

  it('ends other calls when the policy says end', async () => {
    const h = await harness({ emergency: { activeCallPolicy: 'end' } });
    const inc = h.voice.incomingCall('sip:alice@10.0.0.77');
    h.voice.answer(inc, 200);
    await tick(); // the fake, like PJSIP, reports what answer/hangup/hold cause after they return
    dial(h.svc, '911');
    await tick();
    const c = h.voice.calls.find((x) => x.callId === inc)!;
    expect(c.held).toBe(false);
    expect(c.state).toBe('DISCONNECTED');
  });

  it('goes out when the account is not registered (registration failed)', async () => {
    const h = await harness({ sip: { account: { uri: 'sip:1001@pbx.example', registrar: 'sip:10.0.0.9' } } });
    const main = [...h.voice.accounts].find(([, a]) => a.config.registrar)![0];
    h.voice.registration(main, 503);
    await tick();
    expect(h.svc.status().registration).toMatchObject({ registered: false, code: 503 });
    expect(dial(h.svc, '911')).toMatchObject({ placed: true, route: 'primary' });
    expect(h.voice.calls[0]!.account).not.toBe(main);
    h.flush();
    expect(h.events[0]!.data.registered).toBe(false);
  });

  it('with no address on file: to the fallback route, no location, flagged', async () => {
    const h = await harness({ address: null });
    expect(dial(h.svc, '911')).toMatchObject({ placed: true, route: 'fallback', target: 'sip:911@10.0.0.3:5060', addressMissing: true });
    const call = h.voice.calls[0]!;
    expect(header(call, 'Geolocation')).toBeUndefined();
    expect(call.options.parts).toEqual([]);
    expect(header(call, 'Priority')).toBe('emergency');
    // No document, no user: no language is claimed.
    expect(call.options.audioAttributes).toBeUndefined();
    h.flush();
    expect(h.events[0]!.data).toMatchObject({ addressMissing: true, location: null, routePlan: ['fallback', 'primary', 'secondary'] });
    expect(h.svc.pidfNow()).toBeNull();
  });

  it('without a voice stack: nothing can be placed, it says so, and the attempt is still reported', async () => {
    const h = await harness({ voice: null });
    expect(h.svc.status()).toMatchObject({ canPlaceCalls: false, reason: 'PJSIP addon not available: not built' });
    expect(dial(h.svc, '911')).toMatchObject({ kind: 'emergency', placed: false });
    h.flush();
    expect(h.events[0]).toMatchObject({ type: 'emergency-call', data: { placed: false, error: 'PJSIP addon not available: not built' } });
  });
});

describe('routes and failover', () => {
  it('no provisional response within failoverMs: the secondary, and the primary attempt is hung up', async () => {
    const h = await harness();
    dial(h.svc, '911');
    await tick();
    h.clock.advance(1999);
    expect(h.voice.calls).toHaveLength(1);
    h.clock.advance(1);
    expect(h.voice.calls).toHaveLength(2);
    await tick(); // the fake, like PJSIP, reports what answer/hangup/hold cause after they return
    expect(h.voice.calls[0]!.state).toBe('DISCONNECTED');
    expect(h.voice.calls[1]!.target).toBe('sip:911@10.0.0.2:5060');
    // The same location and Content-ID go to the secondary.
    expect(h.voice.calls[1]!.options.parts).toEqual(h.voice.calls[0]!.options.parts);
    h.flush();
    expect(h.events.map((e) => [e.type, e.data.phase])).toEqual([
      ['emergency-call', undefined],
      ['emergency-call-progress', 'failover'],
    ]);
    expect(h.events[1]!.data).toMatchObject({ from: 'primary', route: 'secondary' });
  });

  it('a provisional response (100 Trying included) stops the failover timer', async () => {
    const h = await harness();
    dial(h.svc, '911');
    h.voice.respond(0, 100);
    h.clock.advance(60_000);
    expect(h.voice.calls).toHaveLength(1);
    h.voice.respond(0, 200);
    expect(h.svc.history()[0]!.state).toBe('answered');
  });

  it.each([
    ['408', (v: MemoryVoiceStack) => v.respond(0, 408)],
    ['503', (v: MemoryVoiceStack) => v.respond(0, 503)],
    [
      '500 after a 180',
      (v: MemoryVoiceStack) => {
        v.respond(0, 180);
        v.respond(0, 500, 'Server Error');
      },
    ],
    ['a transport error', (v: MemoryVoiceStack) => v.setCallState(0, 'DISCONNECTED', 503, 'Transport failure', true)],
  ])('%s: the next route at once', async (_name, fail) => {
    const h = await harness();
    dial(h.svc, '911');
    fail(h.voice);
    expect(h.voice.calls).toHaveLength(2);
    expect(h.voice.calls[1]!.target).toBe('sip:911@10.0.0.2:5060');
  });

  it('a rejection like 486 or 424 is final: no failover', async () => {
    const h = await harness();
    dial(h.svc, '911');
    h.voice.respond(0, 424);
    h.clock.advance(10_000);
    expect(h.voice.calls).toHaveLength(1);
    expect(h.svc.history()[0]!.state).toBe('failed');
  });

  it('primary, secondary, fallback, then gives up loudly; a makeCall that throws moves on at once', async () => {
    const h = await harness();
    h.voice.failNextCall = new Error('transport unreachable');
    expect(dial(h.svc, '911')).toMatchObject({ placed: true, route: 'secondary' });
    h.flush();
    // Refused at once or a moment later (kernel timing): the same failover progress either way.
    expect(h.events.map((e) => [e.type, e.data.phase])).toEqual([
      ['emergency-call', undefined],
      ['emergency-call-progress', 'failover'],
    ]);
    expect(h.events[1]!.data).toMatchObject({ from: 'primary', route: 'secondary', reason: 'could not send: transport unreachable' });
    h.voice.respond(0, 503);
    expect(h.voice.calls.map((c) => c.target)).toEqual(['sip:911@10.0.0.2:5060', 'sip:911@10.0.0.3:5060']);
    h.voice.respond(1, 503);
    expect(h.voice.calls).toHaveLength(2);
    const rec = h.svc.history()[0]!;
    expect(rec.state).toBe('failed');
    expect(rec.attempts.map((a) => [a.route, a.result])).toEqual([
      ['primary', 'could not send: transport unreachable'],
      ['secondary', '503 Service Unavailable'],
      ['fallback', '503 Service Unavailable'],
    ]);
  });

  it('events of an abandoned attempt are ignored', async () => {
    const h = await harness();
    dial(h.svc, '911');
    h.clock.advance(2000);
    h.voice.respond(0, 503); // late news from the primary
    expect(h.voice.calls).toHaveLength(2);
    h.voice.respond(1, 200);
    expect(h.svc.history()[0]!.state).toBe('answered');
  });

  it('with no emergency route configured, 911 goes to the registrar', async () => {
    const h = await harness({
      emergency: { routes: {} },
      sip: { account: { uri: 'sip:1001@pbx.example', registrar: 'sip:10.0.0.9:5070' } },
    });
    expect(dial(h.svc, '911')).toMatchObject({ placed: true, target: 'sip:911@10.0.0.9:5070' });
  });
});

describe('after an emergency call: callbacks first, DND/forwarding/call waiting suppressed', () => {
  async function afterCall(suppressMinutes = 30) {
    const h = await harness({ emergency: { suppressMinutes } });
    dial(h.svc, '911');
    await tick(); // the fake's CALLING event
    h.voice.respond(0, 200);
    h.voice.hangup(0);
    await tick(); // the fake, like PJSIP, reports what answer/hangup/hold cause after they return
    h.flush();
    return h;
  }

  it('the window runs from the end of the call and is persisted off the call path', async () => {
    const h = await afterCall();
    expect(h.saved.at(-1)).toBe(h.clock.now() + 30 * 60_000);
    expect(h.svc.isSuppressed()).toBe(true);
    h.clock.advance(30 * 60_000 - 1);
    expect(h.svc.isSuppressed()).toBe(true);
    h.clock.advance(1);
    expect(h.svc.isSuppressed()).toBe(false);
  });

  it('a call from the emergency route is answered at once, ahead of another call (which is held)', async () => {
    const h = await afterCall();
    h.svc.setFeatures({ dnd: true });
    const other = h.voice.incomingCall('sip:carol@10.0.0.88');
    h.voice.answer(other, 200);
    await tick(); // the fake, like PJSIP, reports what answer/hangup/hold cause after they return
    const psap = h.voice.incomingCall('sip:+14085559111@10.0.0.2', [], { address: '10.0.0.2', port: 5060 });
    expect(h.voice.calls.find((c) => c.callId === psap)!.answers).toEqual([200]);
    expect(h.voice.calls.find((c) => c.callId === other)!.held).toBe(true);
  });

  it('a PSAP callback is told by the packet source alone: headers naming the route prove nothing', async () => {
    const h = await afterCall();
    const spoofed = [
      { name: 'Via', value: 'SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;received=10.0.0.1' },
      { name: 'Contact', value: '<sip:psap@10.0.0.1:5060>' },
    ];
    // Everything the caller writes names the primary route; the packet came from the PBX.
    const relayed = h.voice.incomingCall('sip:psap@10.0.0.1', spoofed, { address: '10.0.0.77', port: 5060 });
    expect(h.voice.calls.find((c) => c.callId === relayed)!.answers).toEqual([180]);
    // No source at all (a stack that cannot tell): never a PSAP.
    const unknown = h.voice.incomingCall('sip:psap@10.0.0.1', spoofed);
    expect(h.voice.calls.find((c) => c.callId === unknown)!.answers).toEqual([486]); // call waiting suppressed: one rings already
    h.voice.hangup(relayed);
    // From the route's own address, whatever its headers say: answered at once.
    const real = h.voice.incomingCall('sip:anonymous@anonymous.invalid', [], { address: '10.0.0.1', port: 5060 });
    expect(h.voice.calls.find((c) => c.callId === real)!.answers).toEqual([200]);
    // An IPv4-mapped IPv6 source is the same address.
    h.voice.hangup(real);
    const mapped = h.voice.incomingCall('sip:x@y', [], { address: '::ffff:10.0.0.3', port: 5060 });
    expect(h.voice.calls.find((c) => c.callId === mapped)!.answers).toEqual([200]);
  });

  it('a TLS route: only a call on a TLS connection the phone opened and verified, from the route, is the PSAP', async () => {
    const voice = new MemoryVoiceStack();
    const svc = new EmergencyService({
      voice,
      emergency: emergencySchema.parse({ routes: { primary: 'sips:psap.example.net' } }),
      dialPlan: dialPlanSchema.parse({}),
      sip: sipSchema.parse({ port: 5062 }),
      deviceId: 'phone-1',
      agentVersion: 'test',
      log: silentLog(),
      emitEvent: () => {},
      defer: () => {},
      lookup: async () => '192.0.2.7',
    });
    await svc.start(ADDRESS);
    svc.keypad('9');
    svc.keypad('1');
    svc.keypad('1');
    voice.respond(0, 200);
    svc.hangup();
    await tick(); // the fake, like PJSIP, reports what answer/hangup/hold cause after they return
    const answers = (id: number) => voice.calls.find((c) => c.callId === id)!.answers;
    const unverified = voice.incomingCall('sip:psap@psap.example.net', [], { address: '192.0.2.7', transport: 'tls', tlsVerified: false });
    expect(answers(unverified)).toEqual([180]);
    voice.hangup(unverified);
    await tick();
    const overUdp = voice.incomingCall('sip:psap@psap.example.net', [], { address: '192.0.2.7', transport: 'udp' });
    expect(answers(overUdp)).toEqual([180]);
    voice.hangup(overUdp);
    await tick();
    const verified = voice.incomingCall('sip:psap@psap.example.net', [], { address: '192.0.2.7', transport: 'tls', tlsVerified: true });
    expect(answers(verified)).toEqual([200]);
    await svc.stop();
  });

  it('DND is ignored within the window and applies again after it', async () => {
    const h = await afterCall(1);
    h.svc.setFeatures({ dnd: true });
    const a = h.voice.incomingCall('sip:dave@10.0.0.99');
    expect(h.voice.calls.find((c) => c.callId === a)!.answers).toEqual([180]);
    h.voice.hangup(a);
    await tick();
    h.clock.advance(60_001);
    const b = h.voice.incomingCall('sip:dave@10.0.0.99');
    expect(h.voice.calls.find((c) => c.callId === b)!.answers).toEqual([486]);
    // Outside the window a call from the route is an ordinary call too.
    h.svc.setFeatures({ dnd: false });
    const c = h.voice.incomingCall('sip:psap@10.0.0.1', [], { address: '10.0.0.1' });
    expect(h.voice.calls.find((x) => x.callId === c)!.answers).toEqual([180]);
  });

  it('a restart inside the window keeps it (loaded from the store)', async () => {
    const clock = new FakeClock();
    const h = await harness({ suppressLoad: clock.now() + 10 * 60_000 });
    expect(h.svc.isSuppressed()).toBe(true);
    h.clock.advance(10 * 60_000);
    expect(h.svc.isSuppressed()).toBe(false);
  });

  it('a wall-clock jump of a day forward or back neither ends nor stretches the window', async () => {
    for (const jump of [24 * 3600_000, -24 * 3600_000]) {
      const h = await afterCall();
      h.jumpWall(jump);
      expect(h.svc.isSuppressed()).toBe(true); // a day forward: still inside (the PSAP may call back)
      h.clock.advance(30 * 60_000 - 1);
      expect(h.svc.isSuppressed()).toBe(true);
      h.clock.advance(1);
      expect(h.svc.isSuppressed()).toBe(false); // a day back: over on time, not a day late
    }
  });

  it('a restart after the clock was set back: never more than one whole window', async () => {
    const clock = new FakeClock();
    const h = await harness({ suppressLoad: clock.now() + 24 * 3600_000 });
    expect(h.svc.isSuppressed()).toBe(true);
    h.clock.advance(30 * 60_000);
    expect(h.svc.isSuppressed()).toBe(false);
  });

  it('decisions: forwarding and call waiting are off in the window; DND, forwarding, call waiting apply outside it', () => {
    const confirmed: TrackedCall = { callId: 1, role: 'callee', state: 'CONFIRMED', emergency: false, psapCallback: false };
    const f = { ...DEFAULT_FEATURES, dnd: false, forwardTo: 'sip:2000@pbx' };
    expect(incomingDecision({ fromEmergencyRoute: false, suppressed: true, features: f, others: [] })).toEqual({
      action: 'ring',
      reason: 'features-suppressed',
    });
    expect(incomingDecision({ fromEmergencyRoute: false, suppressed: true, features: f, others: [confirmed] })).toMatchObject({
      action: 'reject',
      reason: 'call-waiting-suppressed',
    });
    expect(incomingDecision({ fromEmergencyRoute: false, suppressed: false, features: f, others: [] })).toEqual({
      action: 'forward',
      to: 'sip:2000@pbx',
    });
    expect(incomingDecision({ fromEmergencyRoute: false, suppressed: false, features: DEFAULT_FEATURES, others: [confirmed] })).toEqual({
      action: 'ring',
      reason: 'call-waiting',
    });
    expect(
      incomingDecision({
        fromEmergencyRoute: false,
        suppressed: false,
        features: { ...DEFAULT_FEATURES, callWaiting: false },
        others: [confirmed],
      }),
    ).toMatchObject({ action: 'reject', reason: 'busy' });
    expect(incomingDecision({ fromEmergencyRoute: true, suppressed: true, features: { ...f, dnd: true }, others: [confirmed] })).toEqual({
      action: 'answer',
      reason: 'psap-callback',
    });
    expect(
      incomingDecision({
        fromEmergencyRoute: false,
        suppressed: false,
        features: DEFAULT_FEATURES,
        others: [{ ...confirmed, emergency: true }],
      }),
    ).toMatchObject({ action: 'reject', reason: 'emergency-in-progress' });
  });
});

describe('route names are resolved ahead of time, never at dial time (no DNS between digit and INVITE: docs/emergency.md)', () => {
  it('resolves at start, dials the address, and re-resolves on a timer into a new route account', async () => {
    const voice = new MemoryVoiceStack();
    const clock = new FakeClock();
    const answers: Record<string, string[]> = {
      'psap.example.net': ['192.0.2.7', '192.0.2.8'],
      'psap2.example.net': ['192.0.2.9', '192.0.2.9'],
    };
    const lookups: string[] = [];
    const svc = new EmergencyService({
      voice,
      emergency: emergencySchema.parse({
        routes: { primary: 'sip:psap.example.net:5070', secondary: 'sips:psap2.example.net', fallback: 'sip:[2001:db8::1]:5060' },
      }),
      dialPlan: dialPlanSchema.parse({}),
      sip: sipSchema.parse({ port: 5062 }),
      deviceId: 'phone-1',
      agentVersion: 'test',
      log: silentLog(),
      timers: clock,
      now: clock.date,
      emitEvent: () => {},
      defer: () => {},
      lookup: async (host) => {
        lookups.push(host);
        return answers[host]!.shift()!;
      },
      resolveEveryMs: 60_000,
    });
    await svc.start(ADDRESS);
    // TLS keeps its name (the certificate is checked against it; its address is looked up for
    // the callback rule only); IP literals need nothing.
    expect(lookups.sort()).toEqual(['psap.example.net', 'psap2.example.net']);
    const secondaryAccount = [...voice.accounts.values()].find((a) => a.config.proxies?.[0]?.startsWith('sips:'))!;
    expect(secondaryAccount.config.proxies).toEqual(['sips:psap2.example.net;lr']);
    const primaryAccount = () => [...voice.accounts.values()].find((a) => a.config.proxies?.[0]?.includes(':5070'))!;
    expect(primaryAccount().config.proxies).toEqual(['sip:192.0.2.7:5070;lr']);
    expect(dial(svc, '911')).toMatchObject({ placed: true, target: 'sip:911@192.0.2.7:5070' });
    expect(lookups).toHaveLength(2); // none at dial time
    voice.respond(0, 200);
    svc.hangup();
    clock.advance(60_000);
    await tick();
    expect(lookups).toHaveLength(4);
    expect(primaryAccount().config.proxies).toEqual(['sip:192.0.2.8:5070;lr']);
    expect(dial(svc, '911')).toMatchObject({ placed: true, target: 'sip:911@192.0.2.8:5070' });
    await svc.stop();
  });
});

describe('the best current location (from the location service)', () => {
  it('replaces the provisioned civic address in the PIDF-LO, with its method, and the event says which source', async () => {
    const h = await harness();
    h.svc.setLocation({
      civic: { country: 'US', A1: 'CA', A3: 'San Jose', RD: 'Main', HNO: '100', FLR: '5', PC: '95110' },
      method: 'LLDP-MED',
      source: 'lldp-med',
    });
    dial(h.svc, '911');
    const body = h.voice.calls[0]!.options.parts![0]!.body;
    expect(body).toContain('<ca:FLR>5</ca:FLR>');
    expect(body).toContain('<gp:method>LLDP-MED</gp:method>');
    h.flush();
    expect(h.events[0]!.data.location).toMatchObject({ source: 'lldp-med', method: 'LLDP-MED', civic: { FLR: '5' } });
    h.svc.setLocation(null);
    expect(h.svc.pidfNow()).toContain('<ca:FLR>2</ca:FLR>');
  });

  it('with no address on file but a network location: sent with it on the primary, flagged as missing the address', async () => {
    const h = await harness({ address: null });
    h.svc.setLocation({
      civic: { country: 'US', A1: 'CA', A3: 'San Jose', RD: 'Main', HNO: '100', PC: '95110' },
      method: 'DHCP',
      source: 'dhcp',
    });
    expect(dial(h.svc, '911')).toMatchObject({ placed: true, route: 'primary', addressMissing: true });
    expect(header(h.voice.calls[0]!, 'Geolocation')).toMatch(/^<cid:/);
  });
});

describe('transports', () => {
  it('starts UDP and TCP, and a ;transport=tcp route sends over TCP', async () => {
    const h = await harness({ emergency: { routes: { primary: 'sip:10.0.0.1:5060;transport=tcp', secondary: 'sip:10.0.0.2' } } });
    expect(h.voice.startOptions!.transports.map((t) => t.kind)).toEqual(['udp', 'tcp']);
    const byProxy = (p: string) => [...h.voice.accounts.values()].find((a) => a.config.proxies?.[0] === p)!.config.transportId;
    expect(byProxy('sip:10.0.0.1:5060;transport=tcp;lr')).toBe(1);
    expect(byProxy('sip:10.0.0.2;lr')).toBe(0);
    expect(dial(h.svc, '911')).toMatchObject({ target: 'sip:911@10.0.0.1:5060;transport=tcp' });
  });
});

describe('sound device and media figures', () => {
  it('a configured device that is missing: the stack falls back to null, the agent logs and reports it, and 911 still goes out', async () => {
    const h = await harness({ sip: { sound: { capture: 'plughw:CARD=Handset', playback: 'plughw:CARD=Handset' } } });
    expect(h.voice.startOptions!.sound).toEqual({ capture: 'plughw:CARD=Handset', playback: 'plughw:CARD=Handset' });
    h.flush();
    const failed = h.events.filter((e) => e.type === 'audio-device-failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.data).toMatchObject({
      phase: 'start',
      capture: 'plughw:CARD=Handset',
      reason: expect.stringContaining('plughw:CARD=Handset'),
    });
    expect(dial(h.svc, '911')).toMatchObject({ placed: true });
    // Busy when the call needed it: reported with the call it concerns.
    h.voice.soundDevice(false, 'Device or resource busy', 0);
    h.flush();
    const callRef = h.svc.history()[0]!.callRef;
    expect(h.events.filter((e) => e.type === 'audio-device-failed')[1]!.data).toMatchObject({
      phase: 'call',
      reason: 'Device or resource busy',
      callRef,
    });
    expect(h.svc.status().sound).toEqual({ device: 'null', reason: 'Device or resource busy' });
    h.voice.soundDevice(true);
    expect(h.svc.status().sound).toEqual({ device: 'configured' });
  });

  it("the default is ALSA's default device; the demo and tests say null", async () => {
    expect(sipSchema.parse({}).sound).toEqual({ capture: 'default', playback: 'default' });
    expect(sipSchema.parse({ sound: 'null' }).sound).toBe('null');
    expect(() => sipSchema.parse({ sound: { capture: 'hw:0;rm -rf /' } })).toThrow();
    const h = await harness({ sip: { sound: 'null' } });
    h.flush();
    expect(h.events.filter((e) => e.type === 'audio-device-failed')).toEqual([]);
  });

  it('the call-ended event carries the RTP figures, whoever hangs up', async () => {
    const h = await harness();
    dial(h.svc, '911');
    await tick();
    h.voice.respond(0, 200);
    const media = { rtpSent: 500, rtpReceived: 480, rtpLost: 3, rtpLostByPeer: 1, jitterMs: 1.5, jitterMaxMs: 6 };
    h.voice.calls[0]!.media = media;
    h.svc.hangup(); // the caller hangs up: 'ended' waits for the stack's DISCONNECTED, which brings the figures
    await tick(); // the fake, like PJSIP, reports what answer/hangup/hold cause after they return
    h.flush();
    const ended = h.events.find((e) => e.type === 'emergency-call-progress' && e.data.phase === 'ended')!;
    expect(ended.data).toMatchObject({ by: 'caller', media });
    expect(h.svc.history()[0]!.media).toEqual(media);

    dial(h.svc, '911');
    await tick();
    h.voice.respond(1, 200);
    h.voice.calls[1]!.media = { ...media, rtpSent: 7 };
    h.voice.setCallState(1, 'DISCONNECTED', 200); // the PSAP hangs up
    h.flush();
    const second = h.events.filter((e) => e.type === 'emergency-call-progress' && e.data.phase === 'ended')[1]!;
    expect(second.data).toMatchObject({ code: 200, media: { rtpSent: 7 } });
  });
});

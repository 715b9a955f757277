// Route failover and PSAP callbacks through the agent's EmergencyService on the
// real PJSIP stack, against real SIP peers on loopback: a primary route that
// answers 408, 500 or 503, whose TCP port is closed, or that stays silent (the
// 2-second failover with its DEFAULT timing, not a shortened one) moves the
// call to the secondary, a SIPp PSAP that accepts it only with location and
// callback; a 424 does not fail over. After the call, the PSAP's callback from
// the route's address is answered at once (no ringing), while a call from
// anywhere else only rings. The same decisions are unit-tested on the memory
// stack (test/unit/emergency-service.test.ts); this proves them on the wire.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createPjsipVoiceStack } from '../../hal/voice/pjsip/index.js';
import { EmergencyService } from '../../agent/emergency/service.js';
import { dialPlanSchema, emergencySchema, sipSchema } from '../../agent/emergency/config.js';
import type { StoredAddress } from '../../agent/store/store.js';
import type { AddressDocument } from '../../provisioning/protocol/address.js';
import { recordVoice, refuseScenario, startSipp, type Sipp } from '../helpers/sip.js';
import { parseSippLog, receivedInvites, silentUdp } from '../helpers/emergency.js';
import { waitFor } from '../helpers/agent.js';
import { freePort } from '../helpers/ports.js';
import { silentLog } from '../helpers/log.js';
import { requires } from '../helpers/require.js';

const FIX = path.resolve(import.meta.dirname, '..', 'fixtures');
const PSAP = path.join(FIX, 'emergency', 'psap.xml');
const CALLBACK = path.join(FIX, 'sipp', 'uac-callback-answered.xml');
const RINGS = path.join(FIX, 'sipp', 'uac-callback-rings.xml');
const HELD = path.join(FIX, 'sipp', 'uac-held.xml');

const gate = requires('emergency failover and PSAP callbacks on the real stack', ['voice', 'sipp']);

const DOC: AddressDocument = {
  v: 1,
  deviceId: 'phone-1',
  version: 3,
  issuedAt: '2026-11-22T07:00:00.000Z',
  civic: { country: 'US', A1: 'CA', A3: 'San Jose', RD: 'Main', STS: 'St', HNO: '100', FLR: '2', ROOM: '210', PC: '95110' },
  callback: '+14085550100',
  displayName: 'Front Desk',
  locationCode: 'SJ-HQ',
};
const ADDRESS: StoredAddress = { doc: DOC, version: 3, hash: 'h', signature: 's', receivedAt: DOC.issuedAt, appliedAt: DOC.issuedAt };

describe.skipIf(gate.skip)('emergency failover and PSAP callbacks through EmergencyService on PJSIP', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-failover-'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A started service on a fresh PJSIP stack; its events as emitted. */
  async function service(routes: Record<string, string>, emergency: Record<string, unknown> = {}) {
    const voice = createPjsipVoiceStack({ logger: silentLog() });
    const sipPort = await freePort();
    const events: { type: string; data: Record<string, unknown> }[] = [];
    const svc = new EmergencyService({
      voice,
      // Default failover timing: emergencySchema's own default, not a test value.
      emergency: emergencySchema.parse({ routes, ...emergency }),
      dialPlan: dialPlanSchema.parse({}),
      sip: sipSchema.parse({
        bindAddress: '127.0.0.1',
        publicAddress: '127.0.0.1',
        port: sipPort,
        rtpPort: await freePort(),
        sound: 'null',
        logLevel: 1,
      }),
      deviceId: 'phone-1',
      agentVersion: 'test',
      log: silentLog(),
      emitEvent: (type, data) => events.push({ type, data }),
      network: () => ({ interface: 'lo', ip: '127.0.0.1', mac: '00:d0:1e:12:34:56' }),
    });
    await svc.start(ADDRESS);
    expect(svc.available).toEqual({ ok: true });
    return { svc, voice, events, sipPort };
  }
  type Svc = Awaited<ReturnType<typeof service>>;
  const record = (h: Svc) => h.svc.history().at(-1)!;

  /** Dials 911; the secondary PSAP answers; returns the record once answered, after hanging up. */
  async function failsOverToSecondary(primary: string, why: () => string = () => '', refusedAtOnce = false) {
    const psap = await startSipp({ scenario: PSAP, timeoutSec: 30 });
    const h = await service({ primary, secondary: `sip:127.0.0.1:${psap.port}` });
    try {
      const out = h.svc.dial('911');
      // A refused TCP connect may be reported inside makeCall: the INVITE goes to the secondary at once.
      const first = refusedAtOnce && record(h).attempts[0]!.callId === null ? 'secondary' : 'primary';
      expect(out).toMatchObject({ kind: 'emergency', placed: true, route: first });
      await waitFor(
        () => record(h).state === 'answered',
        15_000,
        () => `not answered: ${JSON.stringify(record(h))}\n${psap.messages()}\n${why()}`,
      );
      const r = structuredClone(record(h));
      h.svc.hangup();
      // 0: the PSAP accepted the INVITE (location, civic elements, callback) and took our BYE.
      expect((await psap.exited).code, psap.messages()).toBe(0);
      expect(receivedInvites(psap.messages())).toHaveLength(1);
      const progress = h.events.filter((e) => e.type === 'emergency-call-progress').map((e) => e.data.phase);
      expect(progress).toContain('failover');
      return r;
    } finally {
      await h.svc.stop();
      await psap.close();
    }
  }

  for (const [code, reason] of [
    [408, 'Request Timeout'],
    [500, 'Server Internal Error'],
    [503, 'Service Unavailable'],
  ] as const) {
    it(`a ${code} from the primary route: the call goes to the secondary at once and is answered there`, async () => {
      const primary = await startSipp({ scenario: refuseScenario(dir, code, reason), timeoutSec: 30 });
      try {
        const r = await failsOverToSecondary(`sip:127.0.0.1:${primary.port}`, () => primary.messages());
        expect(r.attempts.map((a) => a.route)).toEqual(['primary', 'secondary']);
        expect(r.attempts[0]!.result).toBe(`${code} ${reason}`);
        expect(r.attempts[0]!.provisional).toBe(true); // its 100 Trying was seen: not a silence failover
        expect(r.attempts[1]!.result).toBe('answered 200');
        expect((await primary.exited).code, primary.messages()).toBe(0); // it got our ACK
      } finally {
        await primary.close();
      }
    });
  }

  it('a transport error on the primary route (its TCP port closed): the secondary answers', async () => {
    const r = await failsOverToSecondary(`sip:127.0.0.1:${await freePort()};transport=tcp`, undefined, true);
    expect(r.attempts.map((a) => a.route)).toEqual(['primary', 'secondary']);
    // Seen by the transport a moment later, or by makeCall itself: both fail over at once.
    expect(r.attempts[0]!.result).toMatch(/^(transport error \(503 |could not send: )/);
  });

  it('a primary route that stays silent: after the default 2 s without a provisional response, the secondary answers', async () => {
    const port = await freePort();
    const silent = await silentUdp(port);
    try {
      const r = await failsOverToSecondary(`sip:127.0.0.1:${port}`);
      expect(r.attempts.map((a) => a.route)).toEqual(['primary', 'secondary']);
      expect(r.attempts[0]!.result).toBe('no provisional response within 2000 ms');
      expect(r.attempts[0]!.provisional).toBe(false);
      // The silent route did get the INVITE: it is silence, not a send failure.
      expect(silent.messages.some((m) => m.startsWith('INVITE sip:911@127.0.0.1'))).toBe(true);
    } finally {
      await silent.close();
    }
  });

  it('a 424 from the primary route is final: no failover, the secondary never hears of the call', async () => {
    const primary = await startSipp({ scenario: refuseScenario(dir, 424, 'Bad Location Information'), timeoutSec: 30 });
    const secondary = await startSipp({ scenario: PSAP, timeoutSec: 30 });
    const h = await service({ primary: `sip:127.0.0.1:${primary.port}`, secondary: `sip:127.0.0.1:${secondary.port}` });
    try {
      h.svc.dial('911');
      await waitFor(
        () => record(h).state === 'failed',
        10_000,
        () => JSON.stringify(record(h)),
      );
      expect(record(h).attempts.map((a) => [a.route, a.result])).toEqual([['primary', '424 Bad Location Information']]);
      expect((await primary.exited).code).toBe(0); // our ACK reached it: the transaction is over
      expect(parseSippLog(secondary.messages())).toEqual([]);
    } finally {
      await h.svc.stop();
      await primary.close();
      await secondary.close();
    }
  });

  it('after the call, the PSAP calling back is answered at once, ahead of a call in progress, which is put on hold', async () => {
    const psapPort = await freePort();
    const psap = await startSipp({ scenario: PSAP, port: psapPort, timeoutSec: 30 });
    const h = await service({ primary: `sip:127.0.0.1:${psapPort}` });
    const rec = recordVoice(h.voice);
    let colleague: Sipp | null = null;
    let callback: Sipp | null = null;
    try {
      h.svc.dial('911');
      await waitFor(
        () => record(h).state === 'answered',
        10_000,
        () => psap.messages(),
      );
      h.svc.hangup();
      expect((await psap.exited).code).toBe(0);
      const phone = `127.0.0.1:${h.sipPort}`;
      // A colleague calls from 127.0.0.2 (not a route): it rings, and the user picks up.
      colleague = await startSipp({ scenario: HELD, remote: phone, localIp: '127.0.0.2', service: 'phone', timeoutSec: 20 });
      const inc = await rec.waitFor('incomingCall', (e) => e.sourceAddress === '127.0.0.2');
      h.voice.answer(inc.callId, 200);
      await rec.waitFor('callState', (e) => e.callId === inc.callId && e.state === 'CONFIRMED');
      // The PSAP calls back from the route's address: answered at once, the colleague held.
      const cbPort = await freePort();
      callback = await startSipp({
        scenario: CALLBACK,
        remote: phone,
        port: cbPort,
        service: 'phone',
        keys: { psap_host: '127.0.0.1', psap_port: cbPort },
        timeoutSec: 20,
      });
      expect((await callback.exited).code, callback.messages()).toBe(0);
      await rec.waitFor('mediaState', (e) => e.callId === inc.callId && e.status === 'localHold');
      expect(colleague.messages()).toMatch(/a=(sendonly|inactive)/);
      h.voice.hangupAll();
      // 0: the colleague got the hold re-INVITE, then our BYE.
      expect((await colleague.exited).code, colleague.messages()).toBe(0);
    } finally {
      rec.dispose();
      await h.svc.stop();
      await psap.close();
      await colleague?.close();
      await callback?.close();
    }
  });

  it('after the call, the PSAP calling back from its route is answered at once; a call from elsewhere only rings, DND or not', async () => {
    const psapPort = await freePort();
    const psap = await startSipp({ scenario: PSAP, port: psapPort, timeoutSec: 30 });
    const h = await service({ primary: `sip:127.0.0.1:${psapPort}` });
    let callback: Sipp | null = null;
    let other: Sipp | null = null;
    try {
      h.svc.dial('911');
      await waitFor(
        () => record(h).state === 'answered',
        10_000,
        () => psap.messages(),
      );
      h.svc.hangup();
      expect((await psap.exited).code).toBe(0);
      h.svc.setFeatures({ dnd: true });
      expect(h.svc.isSuppressed()).toBe(true);
      const phone = `127.0.0.1:${h.sipPort}`;

      // The PSAP, from the route's own address: 200 straight away, no ringing first.
      const cbPort = await freePort();
      callback = await startSipp({
        scenario: CALLBACK,
        remote: phone,
        port: cbPort,
        service: 'phone',
        keys: { psap_host: '127.0.0.1', psap_port: cbPort },
        timeoutSec: 20,
      });
      expect((await callback.exited).code, callback.messages()).toBe(0);
      const toPsap = parseSippLog(callback.messages())
        .filter((m) => m.direction === 'received')
        .map((m) => m.startLine);
      expect(toPsap.filter((l) => l.startsWith('SIP/2.0 1') && !l.startsWith('SIP/2.0 100'))).toEqual([]);
      expect(toPsap).toContain('SIP/2.0 200 OK');

      // Anyone else (127.0.0.2 is not a route), even naming the PSAP in every header: it rings (DND is suppressed in the window), it is not answered.
      const otherPort = await freePort();
      other = await startSipp({
        scenario: RINGS,
        remote: phone,
        port: otherPort,
        localIp: '127.0.0.2',
        service: 'phone',
        keys: { psap_host: '127.0.0.1', psap_port: psapPort },
        timeoutSec: 20,
      });
      // The scenario takes 180 then cancels; a 200 instead would fail it.
      expect((await other.exited).code, other.messages()).toBe(0);
    } finally {
      await h.svc.stop();
      await psap.close();
      await callback?.close();
      await other?.close();
    }
  });
});

// The VoiceStack contract (hal/voice/types.ts): one set of behavioural tests
// run against every backend, the in-memory fake and the PJSIP stack, so that
// what the unit tests of priority, failover, suppression and callbacks take
// from MemoryVoiceStack is a checked fact about the real one.
//
// A backend comes with its "network": peers that answer, ring, refuse, stay
// silent, call in. For PJSIP they are SIPp on loopback ports and dead ports;
// for the memory stack they are drivers that do what the unit tests do
// (respond(), setCallState(), incomingCall()). The assertions are the same.
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import type { CallState, VoiceStack, VoiceStartOptions } from '../../hal/voice/types.js';
import { recordVoice, type VoiceRecorder } from './sip.js';

/** A peer on the "network": a callee to call, or a caller calling in. */
export interface ContractPeer {
  /** For callees: the URI to call. */
  target: string;
  /** Resolves when the peer has done all it meant to (SIPp: exited 0). */
  done(): Promise<void>;
  close(): Promise<void>;
}

/** A registrar with digest authentication: every user's password is `password`. */
export interface ContractRegistrar {
  uri: string;
  password: string;
  close(): Promise<void>;
}

export interface ContractNetwork {
  /** A registrar (Kamailio for the real stack). */
  registrar(): Promise<ContractRegistrar>;
  /** Answers at once (100, 180, 200) and waits for our BYE. */
  answers(): Promise<ContractPeer>;
  /** Answers, then hangs up itself (BYE). */
  answersThenHangsUp(): Promise<ContractPeer>;
  /** Answers (100, 200), accepts a hold re-INVITE and a resume re-INVITE, waits for our BYE. */
  holds(): Promise<ContractPeer>;
  /** Rings (100, 180) until cancelled. */
  rings(): Promise<ContractPeer>;
  /** 100, then this final response. */
  refuses(code: number, reason: string): Promise<ContractPeer>;
  /** A UDP port that never answers: the INVITE transaction times out. */
  silent(): Promise<ContractPeer>;
  /** A TCP port nobody listens on. */
  closedTcp(): Promise<ContractPeer>;
  /** A PSAP calls the stack (Via, From and Contact 127.0.0.1), waits for 200, ACKs, then hangs up. */
  callsIn(): Promise<ContractPeer>;
  /** A PSAP calls the stack and cancels once it rings. */
  callsInAndCancels(): Promise<ContractPeer>;
}

export interface ContractBackend {
  stack: VoiceStack;
  network: ContractNetwork;
  /** Releases what the network holds (after the stack has stopped). */
  close(): Promise<void>;
}

/** What every backend is started with in the contract. */
export const CONTRACT_START: VoiceStartOptions = {
  transports: [
    { kind: 'udp', port: 0, boundAddress: '127.0.0.1', publicAddress: '127.0.0.1' },
    { kind: 'tcp', port: 0, boundAddress: '127.0.0.1', publicAddress: '127.0.0.1' },
  ],
  incomingHeaders: ['From', 'To', 'Call-ID', 'Contact'],
  transactionTimeoutMs: 2000,
  logLevel: 1,
};

const FAILURES = [
  { code: 408, reason: 'Request Timeout' },
  { code: 486, reason: 'Busy Here' },
  { code: 500, reason: 'Server Internal Error' },
  { code: 503, reason: 'Service Unavailable' },
  { code: 504, reason: 'Server Time-out' },
  { code: 424, reason: 'Bad Location Information' },
];

/**
 * Registers the contract's tests in the current describe block. `make` is called
 * once (beforeAll); the stack it returns is started with CONTRACT_START.
 */
export function voiceStackContract(make: () => Promise<ContractBackend>): void {
  let b: ContractBackend;
  let rec: VoiceRecorder;
  const voice = () => b.stack;
  const states = (callId: number, sipCallId: string): CallState[] =>
    rec
      .of('callState')
      .filter((e) => e.callId === callId && e.sipCallId === sipCallId)
      .map((e) => e.state);
  /** Runs fn; the events the stack emitted before fn returned (the interface says: none). */
  const inside = (fn: () => void): string[] => {
    const fired: string[] = [];
    let during = true;
    const offs = (['registration', 'incomingCall', 'callState', 'mediaState', 'inviteResponse', 'dtmf', 'soundDevice'] as const).map((t) =>
      voice().on(t, () => during && fired.push(t)),
    );
    try {
      fn();
    } finally {
      during = false;
      for (const off of offs) off();
    }
    return fired;
  };
  const ended = (callId: number) => rec.waitFor('callState', (e) => e.callId === callId && e.state === 'DISCONNECTED', 10_000);

  beforeAll(async () => {
    b = await make();
    await b.stack.start(CONTRACT_START);
    rec = recordVoice(b.stack);
  });
  afterAll(async () => {
    rec?.dispose();
    await b?.stack.stop({ unregister: false });
    await b?.close();
  });
  // Call ids are reused once a call has ended: each test starts with no events.
  beforeEach(() => rec.clear());

  it('makeCall returns a call id at once; no event fires inside it; the call is CALLING, then answered', async () => {
    const peer = await b.network.answers();
    try {
      let inside = false;
      const during: string[] = [];
      const off = voice().on('callState', (e) => inside && during.push(e.state));
      inside = true;
      const callId = voice().makeCall(peer.target);
      inside = false;
      off();
      expect(during).toEqual([]);
      expect(Number.isInteger(callId)).toBe(true);
      const info = voice().callInfo(callId);
      expect(info).toMatchObject({ callId, role: 'caller' });
      // The real stack's own thread may already have the answer: callInfo can be ahead of the events, never NULL.
      expect(['CALLING', 'EARLY', 'CONNECTING', 'CONFIRMED']).toContain(info.state);
      expect(info.sipCallId).toMatch(/\S/);

      const confirmed = await rec.waitFor('callState', (e) => e.callId === callId && e.state === 'CONFIRMED');
      await rec.waitFor('inviteResponse', (e) => e.callId === callId && e.code === 200);
      expect(confirmed).toMatchObject({ role: 'caller', lastStatusCode: 200, sipCallId: info.sipCallId });
      // States in order; the 2xx's inviteResponse just after the CONFIRMED it causes.
      expect(states(callId, info.sipCallId)).toEqual(['CALLING', 'EARLY', 'CONNECTING', 'CONFIRMED']);
      const responses = rec.of('inviteResponse').filter((e) => e.callId === callId);
      expect(responses.map((r) => [r.code, r.reason])).toEqual([
        [100, 'Trying'],
        [180, 'Ringing'],
        [200, 'OK'],
      ]);
      expect(responses.every((r) => r.sipCallId === info.sipCallId && r.cseq >= 1)).toBe(true);
      const order = rec.events
        .filter((e) => e.type === 'callState' || e.type === 'inviteResponse')
        .map((e) => (e.type === 'callState' ? e.state : e.code));
      expect(order.indexOf('CONFIRMED')).toBeLessThan(order.indexOf(200));
      await rec.waitFor('mediaState', (e) => e.callId === callId && e.status === 'active');
      expect(voice().callInfo(callId)).toMatchObject({ state: 'CONFIRMED', mediaStatus: 'active', lastStatusCode: 200 });
      // Event times are on the hrtime clock, in order.
      const ats = rec.events.filter((e) => 'callId' in e && e.callId === callId).map((e) => e.at);
      expect(ats).toEqual([...ats].sort((x, y) => x - y));

      voice().hangup(callId);
      const end = await ended(callId);
      expect(end).toMatchObject({ role: 'caller', sipCallId: info.sipCallId });
      expect(end.transportError).not.toBe(true);
      // An ended call is forgotten (the id may later name a new call): callInfo throws, or, in the
      // moment before pjsua has freed the slot, still reads DISCONNECTED. Never a live state.
      let after: ReturnType<VoiceStack['callInfo']> | null = null;
      try {
        after = voice().callInfo(callId);
      } catch {
        after = null;
      }
      if (after) expect(after).toMatchObject({ state: 'DISCONNECTED', sipCallId: info.sipCallId });
      await peer.done();
    } finally {
      await peer.close();
    }
  });

  it('hold and resume: re-INVITEs the peer accepts, mediaState localHold then active; no event inside hold, unhold, hangup', async () => {
    const peer = await b.network.holds();
    try {
      const callId = voice().makeCall(peer.target);
      await rec.waitFor('callState', (e) => e.callId === callId && e.state === 'CONFIRMED');
      await rec.waitFor('mediaState', (e) => e.callId === callId && e.status === 'active');
      rec.clear();
      expect(inside(() => voice().hold(callId))).toEqual([]);
      await rec.waitFor('mediaState', (e) => e.callId === callId && e.status === 'localHold');
      expect(voice().callInfo(callId)).toMatchObject({ state: 'CONFIRMED', mediaStatus: 'localHold' });
      rec.clear();
      expect(inside(() => voice().unhold(callId))).toEqual([]);
      await rec.waitFor('mediaState', (e) => e.callId === callId && e.status === 'active');
      expect(inside(() => voice().hangup(callId))).toEqual([]);
      await ended(callId);
      await peer.done();
    } finally {
      await peer.close();
    }
  });

  it('the far end hangs up a confirmed call: DISCONNECTED, not a failure', async () => {
    const peer = await b.network.answersThenHangsUp();
    try {
      const callId = voice().makeCall(peer.target);
      await rec.waitFor('callState', (e) => e.callId === callId && e.state === 'CONFIRMED');
      const end = await ended(callId);
      expect(end.transportError).not.toBe(true);
      expect(end.lastStatusCode).toBe(200);
      expect(
        rec
          .of('inviteResponse')
          .filter((e) => e.callId === callId)
          .map((e) => e.code),
      ).toEqual([100, 180, 200]);
      await peer.done();
    } finally {
      await peer.close();
    }
  });

  it('hangup of a ringing call cancels it: EARLY, then DISCONNECTED with 487', async () => {
    const peer = await b.network.rings();
    try {
      const callId = voice().makeCall(peer.target);
      await rec.waitFor('callState', (e) => e.callId === callId && e.state === 'EARLY');
      expect(voice().callInfo(callId)).toMatchObject({ state: 'EARLY', lastStatusCode: 180 });
      expect(inside(() => voice().hangup(callId))).toEqual([]);
      const end = await ended(callId);
      expect(end).toMatchObject({ lastStatusCode: 487, lastStatusReason: 'Request Terminated' });
      expect(end.transportError).not.toBe(true);
      await peer.done();
    } finally {
      await peer.close();
    }
  });

  for (const f of FAILURES) {
    it(`a ${f.code} final response: DISCONNECTED with ${f.code} and its reason (no inviteResponse for it)`, async () => {
      const peer = await b.network.refuses(f.code, f.reason);
      try {
        const callId = voice().makeCall(peer.target);
        const end = await ended(callId);
        expect(end).toMatchObject({ lastStatusCode: f.code, lastStatusReason: f.reason, role: 'caller' });
        expect(end.transportError).not.toBe(true);
        await peer.done(); // it has our ACK: every response it sent was seen
        const responses = rec.of('inviteResponse').filter((e) => e.callId === callId);
        // A final failure is not an inviteResponse on the real stack: only the DISCONNECTED carries it.
        expect(responses.map((r) => r.code)).toEqual([100]);
        expect(states(callId, end.sipCallId)).toEqual(['CALLING', 'DISCONNECTED']);
      } finally {
        await peer.close();
      }
    });
  }

  it('nothing answers over UDP: DISCONNECTED with 408 after the transaction timeout, no response seen, no transport error', async () => {
    const peer = await b.network.silent();
    try {
      const callId = voice().makeCall(peer.target);
      const end = await ended(callId);
      expect(end.lastStatusCode).toBe(408);
      expect(end.transportError).not.toBe(true);
      expect(rec.of('inviteResponse').filter((e) => e.callId === callId)).toEqual([]);
    } finally {
      await peer.close();
    }
  });

  it('a TCP route nobody listens on: DISCONNECTED with 503 and transportError, no response seen', async () => {
    const peer = await b.network.closedTcp();
    try {
      const callId = voice().makeCall(peer.target);
      const end = await ended(callId);
      expect(end.lastStatusCode).toBe(503);
      expect(end.transportError).toBe(true);
      expect(rec.of('inviteResponse').filter((e) => e.callId === callId)).toEqual([]);
    } finally {
      await peer.close();
    }
  });

  it('an incoming call (a PSAP calling back): incomingCall with its source, rings on 180, CONFIRMED on 200, ends on its BYE', async () => {
    const peer = await b.network.callsIn();
    try {
      const inc = await rec.waitFor('incomingCall');
      expect(inc).toMatchObject({ autoAnswered: false, sourceAddress: '127.0.0.1', transport: 'udp' });
      expect(inc.remoteUri).toContain('sip:psap@127.0.0.1');
      expect(inc.sipCallId).toMatch(/\S/);
      expect(inc.headers.find((h) => h.name === 'Call-ID')?.value).toBe(inc.sipCallId);
      expect(inc.headers.map((h) => h.name)).toEqual(['From', 'To', 'Call-ID', 'Contact']);
      expect(voice().callInfo(inc.callId)).toMatchObject({ role: 'callee', state: 'INCOMING', sipCallId: inc.sipCallId });
      expect(inside(() => voice().answer(inc.callId, 180))).toEqual([]);
      await rec.waitFor('callState', (e) => e.callId === inc.callId && e.state === 'EARLY');
      expect(inside(() => voice().answer(inc.callId, 200))).toEqual([]);
      const confirmed = await rec.waitFor('callState', (e) => e.callId === inc.callId && e.state === 'CONFIRMED');
      expect(confirmed).toMatchObject({ role: 'callee', sipCallId: inc.sipCallId });
      await rec.waitFor('mediaState', (e) => e.callId === inc.callId && e.status === 'active');
      const end = await ended(inc.callId);
      expect(end).toMatchObject({ role: 'callee', sipCallId: inc.sipCallId });
      expect(end.transportError).not.toBe(true);
      // A callee reports no responses of its own as inviteResponse.
      expect(rec.of('inviteResponse').filter((e) => e.callId === inc.callId)).toEqual([]);
      await peer.done();
    } finally {
      await peer.close();
    }
  });

  it('an incoming call the caller cancels while it rings: DISCONNECTED with 487', async () => {
    const peer = await b.network.callsInAndCancels();
    try {
      const inc = await rec.waitFor('incomingCall');
      voice().answer(inc.callId, 180);
      const end = await ended(inc.callId);
      expect(end).toMatchObject({ role: 'callee', lastStatusCode: 487 });
      await peer.done();
    } finally {
      await peer.close();
    }
  });

  it('callInfo of a call id never used throws', () => {
    expect(() => voice().callInfo(31)).toThrow();
  });

  it('registration: adding an account registers it (200, an expiry); unregister reports it; a wrong password is a failed registration', async () => {
    const reg = await b.network.registrar();
    try {
      let acc = -1;
      expect(
        inside(
          () =>
            (acc = voice().addAccount({
              uri: 'sip:alice@127.0.0.1',
              registrar: reg.uri,
              credentials: [{ username: 'alice', password: reg.password }],
              regTimeoutSec: 300,
            })),
        ),
      ).toEqual([]);
      const ok = await rec.waitFor('registration', (e) => e.accountId === acc && e.renew);
      expect(ok).toMatchObject({ code: 200, registered: true });
      expect(ok.expires).toBeGreaterThan(0);
      expect(voice().accountInfo(acc)).toMatchObject({ accountId: acc, hasRegistration: true, registered: true });

      expect(inside(() => voice().unregister(acc))).toEqual([]);
      const off = await rec.waitFor('registration', (e) => e.accountId === acc && !e.renew);
      expect(off).toMatchObject({ code: 200, registered: false });
      expect(voice().accountInfo(acc).registered).toBe(false);
      voice().removeAccount(acc);
      expect(() => voice().accountInfo(acc)).toThrow();
      rec.clear(); // account ids are reused too: the next one may be acc again

      const bad = voice().addAccount({
        uri: 'sip:bob@127.0.0.1',
        registrar: reg.uri,
        credentials: [{ username: 'bob', password: 'wrong' }],
      });
      const refused = await rec.waitFor('registration', (e) => e.accountId === bad);
      expect(refused.registered).toBe(false);
      expect([401, 403]).toContain(refused.code);
      expect(voice().accountInfo(bad).registered).toBe(false);
      voice().removeAccount(bad);
    } finally {
      await reg.close();
    }
  });

  it('stop() ends the stack: not running, and makeCall refuses', async () => {
    await voice().stop({ unregister: false });
    expect(voice().running).toBe(false);
    expect(() => voice().makeCall('sip:x@127.0.0.1')).toThrow(/not running/);
  });

  it('a sound device that does not exist: start falls back to null and says why; a call retries it and reports the failure with the call', async () => {
    const missing = 'e911-contract-no-such-device';
    const started = await voice().start({ ...CONTRACT_START, sound: { capture: missing, playback: missing } });
    try {
      expect(started.sound).toMatchObject({ device: 'null', capture: missing, playback: missing });
      expect(started.sound!.fallbackReason).toContain(
        `no capture device named "${missing}"; no playback device named "${missing}" (devices: `,
      );
      const peer = await b.network.answers();
      try {
        const callId = voice().makeCall(peer.target);
        const ev = await rec.waitFor('soundDevice', (e) => e.callId === callId);
        expect(ev).toMatchObject({ ok: false, phase: 'call', capture: missing, playback: missing });
        expect(ev.reason).toContain(`no capture device named "${missing}"`);
        // It never stops the call.
        await rec.waitFor('callState', (e) => e.callId === callId && e.state === 'CONFIRMED');
        voice().hangup(callId);
        await ended(callId);
        await peer.done();
      } finally {
        await peer.close();
      }
    } finally {
      await voice().stop({ unregister: false });
    }
  });
}

// The security-desk call channel's rules, on the in-memory voice stack: what
// counts as acknowledged, unacknowledged, worth calling again, or never worth
// it. The real calls (PJSIP, SIPp, espeak-ng) are in test/integration/desk-call.test.ts.
import { describe, expect, it } from 'vitest';
import { MemoryVoiceStack } from '../../hal/voice/memory.js';
import { CallUnacknowledgedError, SipCallChannel, callTarget } from '../../provisioning/server/notify/call.js';
import { DeliveryError } from '../../provisioning/server/notify/channels.js';
import { spokenDigits, spokenMessage } from '../../provisioning/server/notify/spoken.js';
import type { EmergencyFacts } from '../../provisioning/server/notify/message.js';
import type { CallSettings } from '../../provisioning/server/validation.js';
import { silentLog } from '../helpers/log.js';

const SETTINGS: CallSettings = { from: 'sip:e911@server.example', repeats: 3, ringSeconds: 5, maxAttempts: 3 };
const tick = () => new Promise((r) => setTimeout(r, 0));

function channel() {
  const voice = new MemoryVoiceStack();
  const ch = new SipCallChannel({
    log: silentLog(),
    speech: { file: async () => ({ path: '/tmp/notice.wav', durationMs: 100 }) },
    voice: () => voice,
    start: { transports: [{ kind: 'udp', port: 0 }] },
  });
  return { voice, ch };
}

/** Starts a send and waits until its INVITE is out: the call under test. */
async function placed(voice: MemoryVoiceStack, ch: SipCallChannel, s: CallSettings = SETTINGS) {
  const sent = ch.send(s, 'sip:desk@pbx.example', 'Emergency.');
  sent.catch(() => undefined);
  for (let i = 0; i < 50 && voice.calls.length === 0; i++) await tick();
  const call = voice.calls.at(-1)!;
  return { sent, call };
}

describe('security-desk call channel', () => {
  it('is acknowledged by a 1 only, after the message started; the call is hung up and the playback stopped', async () => {
    const { voice, ch } = channel();
    const { sent, call } = await placed(voice, ch);
    voice.respond(call.callId, 200);
    await tick();
    expect(call.playbacks).toHaveLength(1);
    expect(call.playbacks[0]).toMatchObject({ file: '/tmp/notice.wav', loop: true, active: true });
    voice.playedThrough(call.playbacks[0]!.playbackId);
    voice.dtmfIn(call.callId, '5');
    await tick();
    voice.dtmfIn(call.callId, '1', 'info');
    const ack = await sent;
    expect(ack).toMatchObject({ sipCallId: call.sipCallId, method: 'info', plays: 1 });
    expect(call.playbacks[0]!.active).toBe(false);
    expect(call.hangupCode).toBe(0);
    expect(call.options.from).toBe('sip:e911@server.example');
  });

  it('is unacknowledged once the message played `repeats` times: final, not retried', async () => {
    const { voice, ch } = channel();
    const { sent, call } = await placed(voice, ch);
    voice.respond(call.callId, 200);
    await tick();
    for (let i = 0; i < 3; i++) voice.playedThrough(call.playbacks[0]!.playbackId);
    const err = await sent.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CallUnacknowledgedError);
    expect(err).toMatchObject({ plays: 3, retryable: false, sipCallId: call.sipCallId });
    expect(call.hangupCode).toBe(0);
  });

  it('busy, or answered and hung up before a 1: worth calling again; a number that does not exist: not', async () => {
    for (const [code, retryable] of [
      [486, true],
      [503, true],
      [404, false],
      [484, false],
    ] as const) {
      const { voice, ch } = channel();
      const { sent, call } = await placed(voice, ch);
      voice.respond(call.callId, code);
      await expect(sent).rejects.toMatchObject({ retryable, message: expect.stringContaining(String(code)) });
    }
    const { voice, ch } = channel();
    const { sent, call } = await placed(voice, ch);
    voice.respond(call.callId, 200);
    await tick();
    voice.remoteHangup(call.callId);
    await expect(sent).rejects.toMatchObject({ retryable: true, message: expect.stringMatching(/hung up after 0 plays/) });
  });

  it('not answered within ringSeconds: the call is cancelled, and it is worth calling again', async () => {
    const { voice, ch } = channel();
    const { sent, call } = await placed(voice, ch, { ...SETTINGS, ringSeconds: 0.05 } as CallSettings);
    voice.respond(call.callId, 180);
    await expect(sent).rejects.toMatchObject({ retryable: true, message: expect.stringMatching(/not answered within/) });
    expect(call.hangupCode).toBe(0);
  });

  it('numbers go through the gateway; without one they fail for good', () => {
    expect(callTarget('sip:desk@pbx.example', undefined)).toBe('sip:desk@pbx.example');
    expect(callTarget('+14085550123', 'sip:gw.example:5080;transport=tcp')).toBe('sip:+14085550123@gw.example:5080;transport=tcp');
    expect(callTarget('+14085550123', 'sips:trunk@gw.example')).toBe('sips:+14085550123@gw.example');
    expect(() => callTarget('+14085550123', undefined)).toThrow(DeliveryError);
    try {
      callTarget('+14085550123', undefined);
    } catch (e) {
      expect((e as DeliveryError).retryable).toBe(false);
    }
  });

  it('speaks the callback number digit by digit, NANP grouped, and says what to press', () => {
    expect(spokenDigits('+14085550100')).toBe('4 0 8, 5 5 5, 0 1 0 0');
    expect(spokenDigits('+442071234567')).toBe('4 4 2 0 7 1 2 3 4 5 6 7');
    const facts = {
      test: false,
      callerName: 'Ann Lee',
      user: 'ann',
      callback: '+14085550100',
      dialed: '911',
      addressLines: ['100 Main St', 'San Jose, CA 95110'],
    } as EmergencyFacts;
    const text = spokenMessage(facts);
    expect(text).toContain('9 1 1 was called by Ann Lee, at 100 Main St, San Jose, CA 95110.');
    expect(text).toContain('Callback number: 4 0 8, 5 5 5, 0 1 0 0.');
    expect(text).toMatch(/Press 1 to acknowledge\.$/);
    expect(spokenMessage({ ...facts, test: true, dialed: '933' })).toMatch(/^This is a test\. A 9 3 3 test call/);
  });
});

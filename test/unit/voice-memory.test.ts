// The in-memory VoiceStack behaves like the real one where logic depends on
// it: events after makeCall returns, responses in order, calls recorded.
import { describe, expect, it } from 'vitest';
import { MemoryVoiceStack } from '../../hal/voice/memory.js';
import { normalizeTarget, transportOf } from '../../hal/voice/types.js';
import { recordVoice } from '../helpers/sip.js';

const start = (v: MemoryVoiceStack, autoAnswer = false) =>
  v.start({
    transports: [
      { kind: 'udp', port: 5060 },
      { kind: 'tcp', port: 5060 },
    ],
    autoAnswer,
  });

describe('MemoryVoiceStack', () => {
  it('records calls with headers and parts, and emits state only after makeCall returns', async () => {
    const v = new MemoryVoiceStack();
    await start(v);
    const rec = recordVoice(v);
    const id = v.makeCall('urn:service:sos', {
      headers: [{ name: 'Geolocation', value: '<cid:a@b>' }],
      parts: [{ contentType: 'application/pidf+xml', body: '<presence/>', headers: [{ name: 'Content-ID', value: '<a@b>' }] }],
    });
    expect(rec.events).toEqual([]);
    const call = v.calls[0]!;
    expect(call.target).toBe('<urn:service:sos>');
    expect(call.options.headers?.[0]?.name).toBe('Geolocation');
    expect(call.options.parts?.[0]?.headers?.[0]?.value).toBe('<a@b>');
    await rec.waitFor('callState', (e) => e.callId === id && e.state === 'CALLING');

    v.respond(id, 100);
    v.respond(id, 200);
    expect(rec.of('inviteResponse').map((e) => e.code)).toEqual([100, 200]);
    expect(rec.of('callState').map((e) => e.state)).toEqual(['CALLING', 'CONNECTING', 'CONFIRMED']);
    v.hangup(id);
    expect(rec.of('callState').map((e) => e.state)).toEqual(['CALLING', 'CONNECTING', 'CONFIRMED']); // nothing inside hangup()
    await Promise.resolve();
    expect(v.calls[0]!.state).toBe('DISCONNECTED');
    expect(() => v.callInfo(id)).toThrow(/has ended/);
  });

  it('drives failures, incoming calls, DTMF and registrations', async () => {
    const v = new MemoryVoiceStack();
    await start(v, true);
    const rec = recordVoice(v);
    const id = v.makeCall('sip:psap@example');
    v.setCallState(id, 'DISCONNECTED', 503, 'Connection refused', true);
    expect(rec.of('callState').at(-1)).toMatchObject({ lastStatusCode: 503, transportError: true });

    const inc = v.incomingCall('sip:psap@example', [{ name: 'X-Test', value: '1' }]);
    expect(rec.of('incomingCall')[0]).toMatchObject({ callId: inc, autoAnswered: true });
    await Promise.resolve(); // the auto-answer is reported after incomingCall returns, as the real stack does
    expect(v.callInfo(inc).state).toBe('CONFIRMED');
    v.dtmfIn(inc, '5');
    expect(rec.of('dtmf')[0]?.digit).toBe('5');

    const acc = v.addAccount({ uri: 'sip:1001@pbx', registrar: 'sip:pbx' });
    v.registration(acc, 200);
    expect(v.accountInfo(acc).registered).toBe(true);
    v.failNextCall = new Error('boom');
    expect(() => v.makeCall('sip:x@y', { account: acc })).toThrow('boom');
    await v.stop();
    expect(() => v.makeCall('sip:x@y')).toThrow(/not running/);
  });
});

describe('target helpers', () => {
  it('brackets bare urn targets and picks the transport of a target', () => {
    expect(normalizeTarget('urn:service:sos')).toBe('<urn:service:sos>');
    expect(normalizeTarget('<urn:service:sos>')).toBe('<urn:service:sos>');
    expect(normalizeTarget('sip:911@pbx')).toBe('sip:911@pbx');
    expect(transportOf('sip:911@pbx;transport=TCP')).toBe('tcp');
    expect(transportOf('sips:911@pbx')).toBe('tls');
    expect(transportOf('urn:service:sos')).toBe('udp');
  });
});

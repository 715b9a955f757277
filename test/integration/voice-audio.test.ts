// The call carries voice, both ways, against a real peer (SIPp as the PSAP):
// the phone side plays a tone through pjsua's conference bridge and records
// what it receives; SIPp echoes what it receives, then stops echoing and
// plays its own tone (an RTP capture this test generates). Goertzel filters
// find each tone in the recording. Also: G.711 offered first, no silence
// suppression, the call's RTP figures, and a missing sound device that does
// not stop the call. See docs/voice.md ("The audio test").
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createPjsipVoiceStack, type PjsipVoiceStack } from '../../hal/voice/pjsip/index.js';
import type { VoiceStartOptions } from '../../hal/voice/types.js';
import { freePort } from '../helpers/ports.js';
import { recordVoice, startSipp, type VoiceRecorder } from '../helpers/sip.js';
import { receivedInvites } from '../helpers/emergency.js';
import { closedWav, tone, toneBlocks, writeRtpPcap } from '../helpers/audio.js';
import { silentLog } from '../helpers/log.js';
import { requires } from '../helpers/require.js';

const FIXTURES = path.resolve(import.meta.dirname, '..', 'fixtures', 'sipp');
const gate = requires('the voice audio tests', ['voice', 'sipp']);

// A sound device for the test, so the real (non-null) path runs on a machine without a sound
// card: ALSA's null plugin under a name with a hint, which pjmedia's ALSA backend lists. Set
// before the first start, when libasound first reads its configuration in this process.
const alsaDir = mkdtempSync(path.join(os.tmpdir(), 'e911-alsa-'));
writeFileSync(
  path.join(alsaDir, 'asound.conf'),
  '</usr/share/alsa/alsa.conf>\npcm.e911test { type null hint { show on description "e911 test device" } }\n',
);
process.env.ALSA_CONFIG_PATH = path.join(alsaDir, 'asound.conf');

// Both on 50 Hz bins of a 20 ms block, far from each other's harmonics.
const PHONE_HZ = 1300;
const PSAP_HZ = 700;

async function startOptions(extra: Partial<VoiceStartOptions>): Promise<VoiceStartOptions> {
  return {
    transports: [{ kind: 'udp', port: 0, boundAddress: '127.0.0.1', publicAddress: '127.0.0.1' }],
    rtp: { port: await freePort(), portRange: 50 },
    transactionTimeoutMs: 3000,
    logLevel: 1,
    ...extra,
  };
}

describe.skipIf(gate.skip)('the call carries voice both ways (SIPp PSAP, tones, Goertzel)', () => {
  let dir: string;
  let voice: PjsipVoiceStack;
  let rec: VoiceRecorder;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'e911-audio-'));
    voice = createPjsipVoiceStack({ logger: silentLog() });
    // The phone's tone is on 300 ms, off 700 ms: silences long enough (pjmedia's VAD calls 400 ms
    // of quiet silence) that silence suppression would drop about a third of the packets.
    await voice.start(await startOptions({ audioTest: { toneHz: PHONE_HZ, toneOnMs: 300, toneOffMs: 700, recordDir: dir } }));
    rec = recordVoice(voice);
  });
  afterAll(async () => {
    rec?.dispose();
    await voice?.stop({ unregister: false });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('G.711 offered first; each side hears the other; RTP flows through the silences; the call ends with its figures', async () => {
    const pcap = path.join(dir, 'psap-tone.pcap');
    expect(writeRtpPcap(pcap, tone(PSAP_HZ, 2000))).toBe(100);
    const scenario = path.join(dir, 'uas-audio.xml');
    writeFileSync(scenario, readFileSync(path.join(FIXTURES, 'uas-audio.xml'), 'utf8').replace('PCAP_FILE', pcap));
    const psap = await startSipp({ scenario, extraArgs: ['-rtp_echo'], timeoutSec: 20 });
    try {
      const callId = voice.makeCall(`sip:psap@127.0.0.1:${psap.port}`);
      const confirmed = await rec.waitFor('callState', (e) => e.callId === callId && e.state === 'CONFIRMED');
      const ended = await rec.waitFor('callState', (e) => e.callId === callId && e.state === 'DISCONNECTED', 15_000);
      expect((await psap.exited).code, psap.errors()).toBe(0);

      // The offer the PSAP received: PCMU, then PCMA, ahead of anything else.
      const invite = receivedInvites(psap.messages())[0]!;
      const mline = /^m=audio \d+ RTP\/AVP ([\d ]+)$/m.exec(invite.body);
      expect(mline, invite.body).not.toBeNull();
      expect(mline![1]!.trim().split(' ').slice(0, 2)).toEqual(['0', '8']);
      expect(invite.body).toMatch(/a=rtpmap:0 PCMU\/8000/);
      expect(invite.body).toMatch(/a=rtpmap:8 PCMA\/8000/);

      // No VAD: a packet every 20 ms for the whole call, though the tone is silent half the time.
      const media = ended.media!;
      expect(media, JSON.stringify(ended)).toBeDefined();
      const expected = (ended.at - confirmed.at) / 20;
      // (With pjmedia's VAD on, this call sent 91% of them: measured by building the addon with no_vad off.)
      expect(media.rtpSent).toBeGreaterThan(0.96 * expected);
      expect(media.rtpSent).toBeLessThan(1.1 * expected + 10);
      // The echo (about 2 s) and the PSAP's tone (2 s) came back.
      expect(media.rtpReceived).toBeGreaterThan(150);
      expect(media.rtpLost).toBeLessThan(10);
      expect(media.jitterMs).toBeGreaterThanOrEqual(0);

      // What the phone received, 20 ms at a time.
      const wav = await closedWav(ended.recording!);
      const blocks = toneBlocks(wav, [PHONE_HZ, PSAP_HZ]);
      const phoneAt = blocks.flatMap((b, i) => (b === PHONE_HZ ? [i] : []));
      const psapAt = blocks.flatMap((b, i) => (b === PSAP_HZ ? [i] : []));
      const summary = `phone tone in ${phoneAt.length} blocks, PSAP tone in ${psapAt.length} of ${blocks.length}`;
      // Phone -> PSAP: the PSAP received the phone's tone (echoed back: about 0.6 s of it).
      expect(phoneAt.length, summary).toBeGreaterThanOrEqual(20);
      // PSAP -> phone: the PSAP's own tone (about 2 s of it).
      expect(psapAt.length, summary).toBeGreaterThanOrEqual(60);
      // Once the PSAP stopped echoing, the phone's tone was never heard again: it came from the PSAP, not a local loop.
      const firstPsap = Math.min(...psapAt);
      expect(
        phoneAt.filter((i) => i > firstPsap + 5),
        summary,
      ).toEqual([]);
      expect(Math.min(...phoneAt)).toBeLessThan(firstPsap);
    } finally {
      await psap.close();
    }
  }, 30_000);
});

describe.skipIf(gate.skip)('the sound device is a setting; one that does not exist never stops a call', () => {
  let voice: PjsipVoiceStack;
  let rec: VoiceRecorder;

  afterAll(async () => {
    rec?.dispose();
    await voice?.stop({ unregister: false });
    rmSync(alsaDir, { recursive: true, force: true });
  });

  it('an ALSA device named in the setting is looked up by name and opened', async () => {
    // ALSA's null plugin has no clock, so it cannot pace a call's audio: only the selection is
    // checked here (a phone's real device is not something this machine has).
    const stack = createPjsipVoiceStack({ logger: silentLog() });
    try {
      const started = await stack.start(await startOptions({ sound: { capture: 'e911test', playback: 'e911test' } }));
      expect(started.sound).toEqual({ device: 'configured', capture: 'e911test', playback: 'e911test' });
    } finally {
      await stack.stop({ unregister: false });
    }
  });

  it('start falls back to the null device and says why; the call still goes out, with RTP, and the failure is reported again', async () => {
    voice = createPjsipVoiceStack({ logger: silentLog() });
    const device = 'e911-test-no-such-device';
    const started = await voice.start(await startOptions({ sound: { capture: device, playback: device } }));
    rec = recordVoice(voice);
    expect(started.sound).toMatchObject({ device: 'null', capture: device, playback: device });
    expect(started.sound!.fallbackReason).toContain(`no capture device named "${device}"`);
    expect(started.sound!.fallbackReason).toContain('(devices: e911test)');

    const callee = await startSipp({ scenario: path.join(FIXTURES, 'uas-answer.xml'), timeoutSec: 20 });
    try {
      const callId = voice.makeCall(`sip:callee@127.0.0.1:${callee.port}`);
      await rec.waitFor('callState', (e) => e.callId === callId && e.state === 'CONFIRMED');
      await rec.waitFor('mediaState', (e) => e.callId === callId && e.status === 'active');
      // The call wanted the device: tried again, failed again, reported, and went on.
      const ev = await rec.waitFor('soundDevice', (e) => e.callId === callId);
      expect(ev).toMatchObject({ ok: false, phase: 'call', capture: device });
      await new Promise((r) => setTimeout(r, 300));
      voice.hangup(callId);
      const ended = await rec.waitFor('callState', (e) => e.callId === callId && e.state === 'DISCONNECTED');
      expect(ended.media!.rtpSent).toBeGreaterThan(5);
      expect((await callee.exited).code).toBe(0);
    } finally {
      await callee.close();
    }
  });
});

// The security-desk call channel's rules, on the in-memory voice stack: what
// counts as acknowledged, unacknowledged, worth calling again, or never worth
// it. The real calls (PJSIP, SIPp, espeak-ng) are in test/integration/desk-call.test.ts.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MemoryVoiceStack } from '../../hal/voice/memory.js';
import { CallUnacknowledgedError, SipCallChannel, callTarget } from '../../provisioning/server/notify/call.js';
import { DeliveryError } from '../../provisioning/server/notify/channels.js';
import { spokenDigits, spokenMessage } from '../../provisioning/server/notify/spoken.js';
import { EspeakSpeech, parseVoiceList, voiceCandidates, writeWav } from '../../provisioning/server/notify/speech.js';
import type { EmergencyFacts } from '../../provisioning/server/notify/message.js';
import type { CallSettings } from '../../provisioning/server/validation.js';
import { silentLog } from '../helpers/log.js';

const SETTINGS: CallSettings = {
  from: 'sip:e911@server.example',
  repeats: 3,
  ringSeconds: 5,
  maxAttempts: 3,
  username: undefined,
  realm: undefined,
};
const tick = () => new Promise((r) => setTimeout(r, 0));

function channel(voice = new MemoryVoiceStack()) {
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
  const before = voice.calls.length;
  const sent = ch.send(s, 'sip:desk@pbx.example', { text: 'Emergency.', language: 'en' });
  sent.catch(() => undefined);
  for (let i = 0; i < 50 && voice.calls.length === before; i++) await tick();
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
      // Challenged and no (right) credentials: calling again with the same settings cannot help.
      [401, false],
      [407, false],
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

  it('a desk that refuses before the call could be read back: the refusal is recorded, not the stack error', async () => {
    // pjsua handles the 486 on its own thread and forgets the call before makeCall's caller can
    // read it; the call's events (CALLING, then DISCONNECTED) come after (CI, desk-call.test.ts).
    class RefusedAtOnce extends MemoryVoiceStack {
      override makeCall(...args: Parameters<MemoryVoiceStack['makeCall']>) {
        const id = super.makeCall(...args);
        this.calls.find((c) => c.callId === id)!.state = 'DISCONNECTED';
        queueMicrotask(() => this.setCallState(id, 'DISCONNECTED', 486, 'Busy Here'));
        return id;
      }
    }
    const { ch } = channel(new RefusedAtOnce());
    await expect(ch.send(SETTINGS, 'sip:desk@pbx.example', { text: 'Emergency.', language: 'en' })).rejects.toMatchObject({
      retryable: true,
      message: 'call to sip:desk@pbx.example: 486 Busy Here',
    });
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

  it('words the message in the notice language: Spanish and French', () => {
    const facts = {
      test: false,
      callerName: 'Ann Lee',
      user: 'ann',
      callback: '+14085550100',
      dialed: '911',
      addressLines: ['100 Main St', 'San Jose, CA 95110'],
    } as EmergencyFacts;
    expect(spokenMessage(facts, 'es')).toBe(
      'Emergencia. Llamada al 9 1 1 de Ann Lee, en 100 Main St, San Jose, CA 95110. ' +
        'Por favor, vaya con la persona y ayude a los servicios de emergencia a encontrarla. ' +
        'Número para devolver la llamada: 4 0 8, 5 5 5, 0 1 0 0. Presione 1 para confirmar.',
    );
    expect(spokenMessage({ ...facts, callback: null, addressLines: [] }, 'fr')).toBe(
      'Urgence. Appel au 9 1 1 de Ann Lee, à une adresse inconnue. Rendez-vous auprès de la personne et aidez les secours à la trouver. ' +
        'Aucun numéro de rappel. Appuyez sur 1 pour confirmer.',
    );
    expect(spokenMessage({ ...facts, test: true, dialed: '933', callerName: null, user: null }, 'es')).toMatch(
      /^Esto es una prueba\. Llamada de prueba al 9 3 3 de un teléfono, en 100 Main St/,
    );
  });

  it("picks the site's espeak-ng voice: Latin American Spanish for es-US, France's French for fr-CA", () => {
    expect(voiceCandidates('es-US', 'en-us')).toEqual(['es-419', 'es-la', 'es']);
    expect(voiceCandidates('es-ES', 'en-us')).toEqual(['es']);
    expect(voiceCandidates('fr-CA', 'en-us')).toEqual(['fr-fr', 'fr']);
    expect(voiceCandidates('fr-BE', 'en-us')).toEqual(['fr-be', 'fr-fr', 'fr']);
    expect(voiceCandidates('en-US', 'en-gb')).toEqual(['en-gb']);
    expect(voiceCandidates('de-DE', 'en-us')).toEqual(['en-us']);
    const list = [
      'Pty Language       Age/Gender VoiceName          File                 Other Languages',
      ' 5  es              --/M      Spanish_(Spain)    roa/es               ',
      ' 5  es-419          --/M      Spanish_(Latin_America) roa/es-419           (es-mx 6)(es 6)',
      ' 7  es-mx           --/M      mexican-mbrola-1   mb/mb-mx1            (es 8)',
    ].join('\n');
    expect([...parseVoiceList(list)]).toEqual(['es', 'es-419']);
  });

  it('makes one WAV per text and voice: the same words in another language are spoken again, with that voice', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'e911-speech-'));
    try {
      // A stand-in synthesizer: logs its arguments, lists two voices, writes a short WAV.
      writeFileSync(path.join(dir, 'src.wav'), writeWav({ rate: 22050, samples: new Int16Array(2205) }));
      const cmd = path.join(dir, 'fake-espeak');
      writeFileSync(
        cmd,
        [
          '#!/bin/sh',
          `echo "$@" >> ${dir}/args.log`,
          'if [ "$1" = --voices ]; then',
          "  printf 'Pty Language Age/Gender VoiceName File Other\\n 5 es-419 --/M Spanish roa/es-419\\n 5 fr-fr --/M French roa/fr\\n'",
          '  exit 0',
          'fi',
          `while [ $# -gt 0 ]; do if [ "$1" = -w ]; then cp ${dir}/src.wav "$2"; fi; shift; done`,
        ].join('\n'),
        { mode: 0o755 },
      );
      const speech = new EspeakSpeech({ dir: path.join(dir, 'out'), command: cmd });
      const en = await speech.file('Hola.', 'en');
      const es = await speech.file('Hola.', 'es-US');
      const again = await speech.file('Hola.', 'es-US');
      expect(es.path).not.toBe(en.path);
      expect(again.path).toBe(es.path);
      expect(es.durationMs).toBe(100);
      const runs = readFileSync(path.join(dir, 'args.log'), 'utf8')
        .trim()
        .split('\n')
        .filter((l) => l !== '--voices');
      expect(runs).toHaveLength(2);
      expect(runs[0]).toMatch(/^-v en-us /);
      expect(runs[1]).toMatch(/^-v es-419 /);
      expect(readFileSync(es.path.replace(/\.wav$/, '.txt'), 'utf8')).toBe('Hola.');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('with credentials, calls through an account of the From that answers challenges in the configured realm', async () => {
    const { voice, ch } = channel();
    const s = { ...SETTINGS, username: 'e911', password: 'pw', realm: 'pbx.example' };
    const { sent, call } = await placed(voice, ch, s);
    expect(call.account).not.toBe('local');
    const account = voice.accounts.get(call.account as number)!;
    expect(account.config).toMatchObject({
      uri: 'sip:e911@server.example',
      credentials: [{ realm: 'pbx.example', username: 'e911', password: 'pw' }],
    });
    expect(account.config.registrar).toBeUndefined();
    expect(account.registerCalls).toBe(0);
    voice.respond(call.callId, 200);
    await tick();
    voice.dtmfIn(call.callId, '1');
    await sent;
    // The same settings: the same account; other credentials: a new one, the old one removed.
    const second = await placed(voice, ch, s);
    expect(second.call.account).toBe(call.account);
    voice.respond(second.call.callId, 486);
    await expect(second.sent).rejects.toThrow(/486/);
    const third = await placed(voice, ch, { ...s, password: 'new' });
    expect(third.call.account).not.toBe(call.account);
    expect(voice.accounts.has(call.account as number)).toBe(false);
    expect(voice.accounts.get(third.call.account as number)!.config.credentials![0]!.realm).toBe('pbx.example');
    voice.respond(third.call.callId, 486);
    await expect(third.sent).rejects.toThrow(/486/);
    // No credentials any more: the local account again.
    const fourth = await placed(voice, ch, SETTINGS);
    expect(fourth.call.account).toBe('local');
    expect(voice.accounts.size).toBe(0);
    voice.respond(fourth.call.callId, 486);
    await expect(fourth.sent).rejects.toThrow(/486/);
  });

  it('with a registrar, registers first and calls once registered; a refused REGISTER fails the call for good', async () => {
    const { voice, ch } = channel();
    const s = { ...SETTINGS, username: 'e911', password: 'pw', registrar: 'sip:pbx.example' };
    let answer = 200;
    voice.onRegister = (id, renew) => {
      if (renew) voice.registration(id, answer);
    };
    const { sent, call } = await placed(voice, ch, s);
    const account = voice.accounts.get(call.account as number)!;
    expect(account).toMatchObject({ registered: true, registerCalls: 1 });
    expect(account.config).toMatchObject({ registrar: 'sip:pbx.example', credentials: [{ realm: '*', username: 'e911' }] });
    voice.respond(call.callId, 200);
    await tick();
    voice.dtmfIn(call.callId, '1');
    await sent;

    // Wrong credentials: the registrar says 403; no INVITE leaves.
    answer = 403;
    const calls = voice.calls.length;
    const refused = ch.send({ ...s, password: 'wrong' }, 'sip:desk@pbx.example', { text: 'Emergency.', language: 'en' });
    await expect(refused).rejects.toMatchObject({
      retryable: false,
      message: expect.stringMatching(/registration at sip:pbx\.example: 403/),
    });
    expect(voice.calls.length).toBe(calls);
  });
});

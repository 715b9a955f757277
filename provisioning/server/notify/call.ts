// The security desk is called, not only mailed: a SIP call to an on-site number
// that plays the spoken notice (speech.ts) over and over until someone presses 1
// (RFC 4733 telephone-event or SIP INFO, both reported by the voice stack's dtmf
// event), through the project's PJSIP addon (hal/voice). One send is one call:
// it resolves when the 1 comes, and fails with a DeliveryError otherwise (not
// answered, busy, hung up: retryable; the number does not exist: not) or with
// CallUnacknowledgedError once the message has played `repeats` times to the end.
// With credentials in the settings (a PBX that challenges, or wants the server
// registered), the calls go through a pjsua account of the From's address of
// record that answers 401/407 and, given a registrar, registers before it calls.
import type { Logger } from 'pino';
import type { AccountConfig, AccountId, CallId, DtmfMethod, PlaybackId, VoiceStack, VoiceStartOptions } from '../../../hal/voice/types.js';
import type { CallSettings } from '../validation.js';
import { DeliveryError } from './channels.js';
import type { Speech } from './speech.js';
import type { SpokenMessage } from './spoken.js';

/** What an acknowledged call records. */
export interface CallAcknowledgement {
  /** The call's SIP Call-ID (the notification's provider id). */
  sipCallId: string;
  /** When the 1 came (ISO). */
  at: string;
  method: DtmfMethod;
  /** How many times the message had played through by then. */
  plays: number;
}

/** Answered, played `plays` times to the end, nobody pressed 1: recorded as such, not retried. */
export class CallUnacknowledgedError extends DeliveryError {
  constructor(
    message: string,
    readonly sipCallId: string,
    readonly plays: number,
  ) {
    super(message, false);
    this.name = 'CallUnacknowledgedError';
  }
}

export interface CallChannel {
  send(settings: CallSettings, to: string, message: SpokenMessage): Promise<CallAcknowledgement>;
  /** The longest one send can take with these settings (the notifier's bound and lease). */
  maxDurationMs(settings: CallSettings): number;
  close(): Promise<void>;
}

/** The longest message the bound allows for: the spoken notice runs 15-25 s. */
const MAX_MESSAGE_MS = 60_000;

/**
 * Failures a second call cannot change: the number or the request is wrong, or the PBX
 * refused the credentials (pjsua answers a challenge once: a second 401/407 means they were
 * wrong, or there were none). The settings must change first.
 */
const PERMANENT = new Set([400, 401, 403, 404, 407, 410, 414, 416, 420, 484, 485, 488, 501, 604]);

/** How long a call waits for the account's REGISTER to succeed. */
const REGISTER_WAIT_MS = 15_000;

/** The pjsua account the settings call for: none (the local account) without credentials or registrar. */
export function deskAccountConfig(s: CallSettings): AccountConfig | null {
  if (!s.username && !s.registrar) return null;
  return {
    uri: s.from,
    ...(s.registrar ? { registrar: s.registrar } : {}),
    credentials: s.username ? [{ realm: s.realm ?? '*', username: s.username, password: s.password ?? '' }] : [],
    // Registered by the first call that needs it (registered()), which waits for the answer.
    register: false,
  };
}

interface DeskAccount {
  key: string;
  id: AccountId;
  registrar: string | undefined;
  /** The REGISTER under way, shared by the calls that wait for it. */
  registering: Promise<void> | null;
}

/** The SIP URI for a number: a URI as it is, an E.164 number through the gateway. */
export function callTarget(to: string, gateway: string | undefined): string {
  if (/^sips?:/i.test(to)) return to;
  if (!gateway) throw new DeliveryError(`no SIP gateway configured to call ${to}`, false);
  const m = /^(sips?):(?:[^@;]*@)?(.*)$/i.exec(gateway.trim());
  if (!m) throw new DeliveryError(`the SIP gateway ${gateway} is not a SIP URI`, false);
  return `${m[1]}:${to}@${m[2]}`;
}

export interface DeskCallSip {
  host?: string;
  /** What the far end is told to send to (Via, Contact, SDP) when host is 0.0.0.0 or behind NAT. */
  publicHost?: string;
  port?: number;
  rtpPort?: number;
}

/** The voice stack's start options for security-desk calls: no sound device, SIP on UDP and TCP. */
export function deskCallVoiceOptions(sip: DeskCallSip = {}): VoiceStartOptions {
  const host = sip.host ?? '0.0.0.0';
  const addr = { boundAddress: host, ...(sip.publicHost ? { publicAddress: sip.publicHost } : {}) };
  return {
    transports: [
      { kind: 'udp', port: sip.port ?? 5062, ...addr },
      { kind: 'tcp', port: sip.port ?? 5062, ...addr },
    ],
    rtp: { port: sip.rtpPort ?? 4100, ...addr },
    sound: 'null',
    userAgent: 'e911-server',
    maxCalls: 16,
  };
}

export interface SipCallChannelOptions {
  log: Logger;
  speech: Speech;
  /** Makes the voice stack; it is started on the first call (pjsua is one per process). */
  voice: () => VoiceStack;
  /** Where the stack listens (SIP transports, RTP). */
  start: VoiceStartOptions;
  now?: () => Date;
}

export class SipCallChannel implements CallChannel {
  private stack: Promise<VoiceStack> | null = null;
  private readonly now: () => Date;

  constructor(private readonly opts: SipCallChannelOptions) {
    this.now = opts.now ?? (() => new Date());
  }

  private account: DeskAccount | null = null;

  maxDurationMs(s: CallSettings): number {
    return s.ringSeconds * 1000 + s.repeats * MAX_MESSAGE_MS + 15_000 + (s.registrar ? REGISTER_WAIT_MS : 0);
  }

  /** The account the call goes through: pjsua's local one, or one with the settings' credentials (made again when they change). */
  private async accountFor(stack: VoiceStack, s: CallSettings): Promise<AccountId | 'local'> {
    const config = deskAccountConfig(s);
    const key = config ? JSON.stringify(config) : '';
    if (this.account && this.account.key !== key) {
      const old = this.account;
      this.account = null;
      try {
        stack.removeAccount(old.id);
      } catch (err) {
        // Gone already (the stack restarted): nothing to remove.
        this.opts.log.debug({ err: (err as Error).message }, 'removing the old desk-call account');
      }
    }
    if (!config) return 'local';
    if (!this.account) {
      const id = stack.addAccount(config);
      this.account = { key, id, registrar: config.registrar, registering: null };
      this.opts.log.info({ accountId: id, uri: config.uri, registrar: config.registrar, username: s.username }, 'desk-call account added');
    }
    const a = this.account;
    if (a.registrar && !stack.accountInfo(a.id).registered) {
      a.registering ??= this.register(stack, a).finally(() => {
        a.registering = null;
      });
      await a.registering;
    }
    return a.id;
  }

  /** Sends a REGISTER and waits for its outcome: a failure fails the call (401/403: the credentials are wrong, for good). */
  private register(stack: VoiceStack, a: DeskAccount): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new DeliveryError(`registration at ${a.registrar}: no answer within ${REGISTER_WAIT_MS / 1000} s`));
      }, REGISTER_WAIT_MS);
      const off = stack.on('registration', (e) => {
        if (e.accountId !== a.id || !e.renew) return;
        clearTimeout(timer);
        off();
        if (e.registered) {
          this.opts.log.info({ accountId: a.id, registrar: a.registrar, expires: e.expires }, 'desk-call account registered');
          resolve();
        } else {
          const why = `${e.code} ${e.reason}`.trim() + (e.error ? ` (${e.error})` : '');
          reject(new DeliveryError(`registration at ${a.registrar}: ${why}`, !PERMANENT.has(e.code)));
        }
      });
      try {
        stack.register(a.id);
      } catch (err) {
        clearTimeout(timer);
        off();
        reject(new DeliveryError(`registration at ${a.registrar}: ${(err as Error).message}`));
      }
    });
  }

  private started(): Promise<VoiceStack> {
    if (!this.stack) {
      const p = (async () => {
        const v = this.opts.voice();
        const r = await v.start(this.opts.start);
        this.opts.log.info({ transports: r.transports }, 'voice stack for security-desk calls started');
        return v;
      })();
      // Not kept when it failed: the next call tries again.
      p.catch(() => {
        if (this.stack === p) this.stack = null;
      });
      this.stack = p;
    }
    return this.stack;
  }

  async send(s: CallSettings, to: string, message: SpokenMessage): Promise<CallAcknowledgement> {
    const target = callTarget(to, s.gateway);
    let audio: { path: string; durationMs: number };
    try {
      audio = await this.opts.speech.file(message.text, message.language);
    } catch (err) {
      throw new DeliveryError(`call to ${to}: the message could not be spoken: ${(err as Error).message}`);
    }
    let stack: VoiceStack;
    try {
      stack = await this.started();
    } catch (err) {
      throw new DeliveryError(`call to ${to}: the voice stack did not start: ${(err as Error).message}`);
    }
    let account: AccountId | 'local';
    try {
      account = await this.accountFor(stack, s);
    } catch (err) {
      if (err instanceof DeliveryError) throw new DeliveryError(`call to ${to}: ${err.message}`, err.retryable);
      throw new DeliveryError(`call to ${to}: the account could not be added: ${(err as Error).message}`, false);
    }
    return this.call(stack, s, to, target, audio, account);
  }

  private call(
    stack: VoiceStack,
    s: CallSettings,
    to: string,
    target: string,
    audio: { path: string; durationMs: number },
    account: AccountId | 'local',
  ): Promise<CallAcknowledgement> {
    const log = this.opts.log.child({ to });
    return new Promise<CallAcknowledgement>((resolve, reject) => {
      const offs: (() => void)[] = [];
      const timers: NodeJS.Timeout[] = [];
      let callId: CallId = -1;
      // null: not read yet (see makeCall below); this call's CALLING event carries it.
      let sipCallId: string | null = '';
      let answered = false;
      let ended = false;
      let playback: PlaybackId | null = null;
      let plays = 0;
      let settled = false;
      const hangup = () => {
        if (ended) return;
        try {
          stack.hangup(callId);
        } catch (err) {
          // The call ended on its own in the meantime: nothing to hang up.
          log.debug({ err: (err as Error).message }, 'hangup after the call ended');
        }
      };
      const settle = (outcome: { ok: CallAcknowledgement } | { err: DeliveryError }) => {
        if (settled) return;
        settled = true;
        for (const t of timers) clearTimeout(t);
        if ('ok' in outcome) resolve(outcome.ok);
        else reject(outcome.err);
        hangup();
        // Listen on until the DISCONNECTED: then nothing of this call can come any more.
        if (ended) for (const off of offs) off();
      };

      offs.push(
        stack.on('callState', (e) => {
          if (e.callId !== callId) return;
          // Events before this call's CALLING are an earlier call's under the same id.
          if (sipCallId === null) {
            if (e.state !== 'CALLING') return;
            sipCallId = e.sipCallId;
          }
          if (e.sipCallId !== sipCallId) return;
          if (e.state === 'CONFIRMED' && !answered) {
            answered = true;
            log.info({ sipCallId }, 'security-desk call answered');
          } else if (e.state === 'DISCONNECTED') {
            ended = true;
            if (settled) for (const off of offs) off();
            else if (!answered) {
              const code = e.lastStatusCode;
              settle({ err: new DeliveryError(`call to ${to}: ${code} ${e.lastStatusReason}`.trim(), !PERMANENT.has(code)) });
            } else settle({ err: new DeliveryError(`call to ${to}: answered, hung up after ${plays} plays without pressing 1`) });
          }
        }),
        stack.on('mediaState', (e) => {
          if (e.callId !== callId || ended || settled || playback !== null || e.status !== 'active') return;
          try {
            playback = stack.playFile(callId, audio.path, { loop: true });
          } catch (err) {
            settle({ err: new DeliveryError(`call to ${to}: cannot play the message: ${(err as Error).message}`) });
          }
        }),
        stack.on('playback', (e) => {
          if (e.playbackId !== playback || e.callId !== callId || settled) return;
          plays = e.plays;
          if (plays >= s.repeats) {
            settle({
              err: new CallUnacknowledgedError(
                `call to ${to}: answered, message played ${plays} times, not acknowledged`,
                sipCallId ?? '',
                plays,
              ),
            });
          }
        }),
        stack.on('dtmf', (e) => {
          if (e.callId !== callId || ended || settled || !answered) return;
          log.info({ sipCallId, digit: e.digit, method: e.method }, 'digit from the security desk');
          if (e.digit !== '1') return;
          if (playback !== null) stack.stopPlayback(playback);
          settle({ ok: { sipCallId: sipCallId ?? '', at: this.now().toISOString(), method: e.method, plays } });
        }),
      );

      try {
        callId = stack.makeCall(target, { account, from: s.from });
      } catch (err) {
        for (const off of offs) off();
        reject(new DeliveryError(`call to ${to}: ${(err as Error).message}`));
        return;
      }
      try {
        sipCallId = stack.callInfo(callId).sipCallId;
      } catch {
        // The desk answered (a 486, say) and pjsua forgot the call before this read: its events,
        // still on their way, say how it ended. Failing here recorded pjsua's error instead.
        sipCallId = null;
      }
      log.info({ target, sipCallId, account }, 'security-desk call placed');
      timers.push(
        setTimeout(() => {
          if (!answered) settle({ err: new DeliveryError(`call to ${to}: not answered within ${s.ringSeconds} s`) });
        }, s.ringSeconds * 1000),
        // A message that never reports its end (media stalled) must not hold the call for ever.
        setTimeout(
          () => settle({ err: new DeliveryError(`call to ${to}: no outcome in time (message played ${plays} times)`) }),
          s.ringSeconds * 1000 + s.repeats * (audio.durationMs + 2000) + 10_000,
        ),
      );
    });
  }

  async close(): Promise<void> {
    const p = this.stack;
    this.stack = null;
    if (!p) return;
    const stack = await p.catch(() => null);
    // A registered account says goodbye to its registrar (about 1 s); otherwise there is nothing to tell anyone.
    const registered = this.account?.registrar !== undefined;
    this.account = null;
    await stack?.stop({ unregister: registered });
  }
}

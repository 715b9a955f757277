// The phone's other calls around an emergency call: which calls are live, the
// phone's features, the suppression window after an emergency call (DND,
// forwarding and call waiting off so the PSAP can call back), incoming calls
// (PSAP callbacks answered), ordinary dials, and the sound device's state.
// The rules themselves are the pure decisions in priority.ts.
import type { Logger } from '../../provisioning/common/log.js';
import type { EventType } from '../../provisioning/protocol/messages.js';
import type { AccountId, CallId, CallStateEvent, IncomingCallEvent, SoundDeviceEvent, VoiceStack } from '../../hal/voice/types.js';
import {
  DEFAULT_FEATURES,
  incomingDecision,
  isLive,
  ordinaryDial,
  otherCallActions,
  type PhoneFeatures,
  type TrackedCall,
} from './priority.js';
import { domainOf } from './sip-uri.js';
import type { EmergencyConfig, SipConfig } from './config.js';

export interface SuppressionStore {
  load(): number | null;
  save(untilMs: number): void;
}

export type OrdinaryOutcome = { kind: 'ordinary'; placed: boolean; dialed: string; target: string; reason?: string; callId?: CallId };

export interface PhoneCallsDeps {
  voice: VoiceStack | null;
  emergency: EmergencyConfig;
  sip: SipConfig;
  log: Logger;
  now: () => Date;
  /** A clock that never jumps (ms): the suppression window runs on it. */
  monotonic: () => number;
  /** Runs work off the call path. */
  later: (fn: () => void) => void;
  emitEvent: (type: EventType, data: Record<string, unknown>) => void;
  suppression?: SuppressionStore;
}

export class PhoneCalls {
  /** Every call the stack has, by id: the emergency service reads and writes it directly on the call path. */
  readonly calls = new Map<CallId, TrackedCall>();
  private features: PhoneFeatures;
  /** End of the suppression window on the monotonic clock: a wall-clock jump neither ends nor stretches it. */
  private suppressUntilMono = -Infinity;
  /** The same end as a wall-clock time, as saved for a restart: what status shows (the monotonic end decides). */
  private suppressUntilWall = 0;
  /** The sound device calls use now, and why not the configured one (for status). */
  sound: { device: 'null' | 'configured'; reason?: string } | null = null;

  constructor(private readonly deps: PhoneCallsDeps) {
    this.features = { ...DEFAULT_FEATURES, maxCalls: deps.sip.maxCalls };
  }

  /** At start: the window saved before a restart, what is left of it and never more than a whole window (a clock set back while the phone was off must not stretch it). */
  restoreSuppression(): void {
    const stored = this.deps.suppression?.load() ?? 0;
    const nowMs = this.deps.now().getTime();
    const left = Math.min(stored - nowMs, this.deps.emergency.suppressMinutes * 60_000);
    this.suppressUntilMono = left > 0 ? this.deps.monotonic() + left : -Infinity;
    this.suppressUntilWall = left > 0 ? nowMs + left : 0;
  }

  setFeatures(f: Partial<PhoneFeatures>): PhoneFeatures {
    this.features = { ...this.features, ...f };
    return { ...this.features };
  }

  currentFeatures(): PhoneFeatures {
    return this.features;
  }

  isSuppressed(): boolean {
    return this.emergencyLive() || this.deps.monotonic() < this.suppressUntilMono;
  }

  /** The end of the window as a wall-clock time, or null outside it. */
  suppressedUntil(): string | null {
    return this.deps.monotonic() < this.suppressUntilMono ? new Date(this.suppressUntilWall).toISOString() : null;
  }

  emergencyLive(): boolean {
    for (const c of this.calls.values()) if ((c.emergency || c.psapCallback) && isLive(c)) return true;
    return false;
  }

  extendSuppression(at: Date): void {
    const windowMs = this.deps.emergency.suppressMinutes * 60_000;
    const untilMono = this.deps.monotonic() + windowMs;
    if (untilMono <= this.suppressUntilMono) return;
    this.suppressUntilMono = untilMono;
    const until = at.getTime() + windowMs;
    this.suppressUntilWall = until;
    // Persisted off the call path (as a wall-clock time), so a restart inside the window keeps it.
    this.deps.later(() => this.deps.suppression?.save(until));
  }

  /** A call changed state: tracked (a call the phone did not place is added). */
  track(e: CallStateEvent): void {
    const tracked = this.calls.get(e.callId);
    if (tracked) tracked.state = e.state;
    else if (e.state !== 'DISCONNECTED')
      this.calls.set(e.callId, { callId: e.callId, role: e.role, state: e.state, emergency: false, psapCallback: false });
  }

  /** A call is down: forgotten; a PSAP callback's end restarts the window. */
  disconnected(callId: CallId): void {
    const c = this.calls.get(callId);
    this.calls.delete(callId);
    if (c?.psapCallback) this.extendSuppression(this.deps.now());
  }

  /** Holds or ends the other calls (after the emergency INVITE left, or a PSAP callback was answered). */
  applyOtherCalls(actions: { hold: CallId[]; end: CallId[] }, record: { otherCalls: { held: CallId[]; ended: CallId[] } } | null): void {
    const voice = this.deps.voice!;
    for (const id of actions.hold) {
      try {
        voice.hold(id);
        record?.otherCalls.held.push(id);
      } catch (err) {
        this.deps.log.warn({ err, callId: id }, 'could not hold a call for the emergency call; ending it');
        safe(() => voice.hangup(id));
        record?.otherCalls.ended.push(id);
      }
    }
    for (const id of actions.end) {
      safe(() => voice.hangup(id));
      record?.otherCalls.ended.push(id);
    }
  }

  /** An ordinary dial: keypad lock and call limit first, then the main account. */
  placeOrdinary(dialed: string, target: string, account: AccountId | null, unavailable: string | null): OrdinaryOutcome {
    const gate = ordinaryDial(this.features, [...this.calls.values()]);
    if (!gate.ok) return { kind: 'ordinary', placed: false, dialed, target, reason: gate.reason };
    if (unavailable !== null || account === null) {
      return { kind: 'ordinary', placed: false, dialed, target, reason: account === null ? 'no SIP account configured' : unavailable! };
    }
    const domain = domainOf(this.deps.sip.account!.registrar ?? this.deps.sip.account!.uri)!;
    try {
      const callId = this.deps.voice!.makeCall(`sip:${target}@${domain}`, { account });
      this.calls.set(callId, { callId, role: 'caller', state: 'CALLING', emergency: false, psapCallback: false });
      return { kind: 'ordinary', placed: true, dialed, target, callId };
    } catch (err) {
      return { kind: 'ordinary', placed: false, dialed, target, reason: (err as Error).message };
    }
  }

  /** An incoming call: a PSAP callback is answered at once (other calls held); the rest per the features and the window. */
  onIncoming(e: IncomingCallEvent, fromRoute: boolean): void {
    const others = [...this.calls.values()].filter((c) => c.callId !== e.callId);
    const decision = incomingDecision({ fromEmergencyRoute: fromRoute, suppressed: this.isSuppressed(), features: this.features, others });
    const tracked: TrackedCall = {
      callId: e.callId,
      role: 'callee',
      state: 'INCOMING',
      emergency: false,
      psapCallback: decision.action === 'answer',
    };
    this.calls.set(e.callId, tracked);
    const voice = this.deps.voice!;
    const log = this.deps.log;
    try {
      switch (decision.action) {
        case 'answer': {
          voice.answer(e.callId, 200);
          const actions = otherCallActions(others, this.deps.emergency.activeCallPolicy);
          this.applyOtherCalls(actions, null);
          log.warn({ callId: e.callId, from: e.remoteUri }, 'PSAP callback answered');
          break;
        }
        case 'reject':
          voice.answer(e.callId, decision.code);
          break;
        case 'forward':
          // The VoiceStack cannot send a 302 with a Contact yet: ring here instead of losing the call.
          log.warn({ callId: e.callId, to: decision.to }, 'forwarding is not supported by the voice stack; ringing instead');
          voice.answer(e.callId, 180);
          break;
        case 'ring':
          if (!e.autoAnswered) voice.answer(e.callId, 180);
          break;
      }
    } catch (err) {
      log.warn({ err, callId: e.callId, decision }, 'incoming call handling failed');
    }
    log.info({ callId: e.callId, from: e.remoteUri, fromRoute, decision }, 'incoming call');
  }

  /** The sound device failed when a call needed it (the call went on with the null device), or works again. */
  onSoundDevice(e: SoundDeviceEvent, callRef: string | undefined): void {
    this.sound = e.ok ? { device: 'configured' } : { device: 'null', reason: e.reason ?? 'unknown' };
    if (e.ok) {
      this.deps.log.info({ capture: e.capture, playback: e.playback }, 'sound device works again');
      return;
    }
    this.soundFailed(e.phase, e.reason ?? 'unknown', callRef);
  }

  soundFailed(phase: 'start' | 'call', reason: string, callRef?: string): void {
    const sound = this.deps.sip.sound;
    const names = sound === 'null' ? { capture: 'null', playback: 'null' } : sound;
    this.deps.log.error({ phase, reason, ...names, callRef }, 'sound device failed: calls go on without audio hardware');
    this.deps.later(() => {
      try {
        this.deps.emitEvent('audio-device-failed', {
          phase,
          reason,
          ...names,
          ...(callRef ? { callRef } : {}),
          at: this.deps.now().toISOString(),
        });
      } catch (err) {
        this.deps.log.error({ err }, 'could not record the audio-device-failed event');
      }
    });
  }
}

export function safe(fn: () => void): void {
  try {
    fn();
  } catch {
    // the call is already gone
  }
}

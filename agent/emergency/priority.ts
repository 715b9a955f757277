// The priority rules, as pure decisions: what happens to other calls when an
// emergency call goes out, which ordinary dials are refused, and what an
// incoming call gets (PSAP callbacks first; DND, forwarding and call waiting
// suppressed for a while after an emergency call, RFC 6881 ED-62..ED-66).
// An emergency call itself is never refused: nothing here can say no to it.
import type { CallId, CallState } from '../../hal/voice/types.js';

export interface PhoneFeatures {
  keypadLocked: boolean;
  dnd: boolean;
  /** Forward incoming calls here (a SIP URI), or null. */
  forwardTo: string | null;
  callWaiting: boolean;
  /** The phone's limit for ordinary calls; emergency calls ignore it. */
  maxCalls: number;
}

export const DEFAULT_FEATURES: PhoneFeatures = { keypadLocked: false, dnd: false, forwardTo: null, callWaiting: true, maxCalls: 4 };

export interface TrackedCall {
  callId: CallId;
  role: 'caller' | 'callee';
  state: CallState;
  emergency: boolean;
  psapCallback: boolean;
}

export type ActiveCallPolicy = 'hold' | 'end';

const LIVE: ReadonlySet<CallState> = new Set(['CALLING', 'INCOMING', 'EARLY', 'CONNECTING', 'CONFIRMED']);

export function isLive(c: TrackedCall): boolean {
  return LIVE.has(c.state);
}

/**
 * What to do with the other calls when an emergency call goes out (after its INVITE).
 * 'hold' holds answered calls; calls not yet answered cannot be held and are ended.
 */
export function otherCallActions(calls: readonly TrackedCall[], policy: ActiveCallPolicy): { hold: CallId[]; end: CallId[] } {
  const hold: CallId[] = [];
  const end: CallId[] = [];
  for (const c of calls) {
    if (c.emergency || c.psapCallback || !isLive(c)) continue;
    if (policy === 'hold' && c.state === 'CONFIRMED') hold.push(c.callId);
    else end.push(c.callId);
  }
  return { hold, end };
}

export type OrdinaryDialDecision = { ok: true } | { ok: false; reason: 'keypad-locked' | 'call-limit' };

/** Ordinary (non-emergency) dials obey the keypad lock and the call limit. */
export function ordinaryDial(features: PhoneFeatures, calls: readonly TrackedCall[]): OrdinaryDialDecision {
  if (features.keypadLocked) return { ok: false, reason: 'keypad-locked' };
  if (calls.filter(isLive).length >= features.maxCalls) return { ok: false, reason: 'call-limit' };
  return { ok: true };
}

export type IncomingDecision =
  | { action: 'answer'; reason: 'psap-callback' }
  | { action: 'reject'; code: 486; reason: 'dnd' | 'busy' | 'emergency-in-progress' | 'call-waiting-suppressed' }
  | { action: 'forward'; to: string }
  | { action: 'ring'; reason: 'normal' | 'call-waiting' | 'features-suppressed' };

export interface IncomingInput {
  /** The call came from one of the emergency routes. */
  fromEmergencyRoute: boolean;
  /** Within the window after an emergency call (or during one). */
  suppressed: boolean;
  features: PhoneFeatures;
  /** Other live calls, this one excluded. */
  others: readonly TrackedCall[];
}

export function incomingDecision(i: IncomingInput): IncomingDecision {
  const live = i.others.filter(isLive);
  if (i.suppressed && i.fromEmergencyRoute) return { action: 'answer', reason: 'psap-callback' };
  if (live.some((c) => c.emergency || c.psapCallback)) return { action: 'reject', code: 486, reason: 'emergency-in-progress' };
  if (i.suppressed) {
    // DND and forwarding are off so the PSAP can reach the caller from any number; call waiting too.
    if (live.length > 0) return { action: 'reject', code: 486, reason: 'call-waiting-suppressed' };
    return { action: 'ring', reason: 'features-suppressed' };
  }
  if (i.features.dnd) return { action: 'reject', code: 486, reason: 'dnd' };
  if (i.features.forwardTo) return { action: 'forward', to: i.features.forwardTo };
  if (live.length > 0) {
    if (i.features.callWaiting && live.length < i.features.maxCalls) return { action: 'ring', reason: 'call-waiting' };
    return { action: 'reject', code: 486, reason: 'busy' };
  }
  return { action: 'ring', reason: 'normal' };
}

/** Route order: with an address, primary, secondary, fallback; without, the fallback first (and flagged). */
export function routeOrder<T extends { name: string }>(routes: readonly T[], addressMissing: boolean): T[] {
  const by = (n: string) => routes.filter((r) => r.name === n);
  return addressMissing
    ? [...by('fallback'), ...by('primary'), ...by('secondary')]
    : [...by('primary'), ...by('secondary'), ...by('fallback')];
}

/** Responses that move the call to the next route at once (besides silence and transport errors). */
export function failsOver(code: number): boolean {
  return code === 408 || (code >= 500 && code < 600);
}

// The dial plan. Emergency dial strings (911, 933, their outside-line forms
// 9911/9933, and urn:service:sos) are matched first, exactly as dialed, and
// never pass through an operator rule: a strip-the-leading-9 rule must never
// turn 911 into 11 (Kari's Law, RFC 6881 ED-14..ED-16).

export type EmergencyKind = 'emergency' | 'test';

export interface EmergencyNumber {
  digits: string;
  kind: EmergencyKind;
  /** Service URN sent as the target when the emergency config asks for the URN form. */
  urn?: string | undefined;
}

/** An operator rule: a full-match regular expression over the dialed digits and its replacement. */
export interface OperatorRule {
  match: string;
  replace: string;
}

export interface DialPlanConfig {
  numbers: readonly EmergencyNumber[];
  /** Outside-line prefix (often "9"); "" when the site has none. */
  outsideLinePrefix: string;
  operatorRules: readonly OperatorRule[];
}

export interface EmergencyMatch {
  kind: EmergencyKind;
  /** Exactly what was dialed. */
  dialed: string;
  /** The emergency number itself (911, 933), never rewritten. */
  number: string;
  urn?: string | undefined;
  /** Dialed with the outside-line prefix. */
  prefixed: boolean;
  /** Dialed as a service URN (urn:service:sos...). */
  viaUrn: boolean;
}

export type DialResult =
  | ({ kind: EmergencyKind } & EmergencyMatch)
  | { kind: 'ordinary'; dialed: string; target: string }
  | { kind: 'invalid'; dialed: string; reason: string };

export const DIAL_KEYS = /^[0-9*#]+$/;
const SOS_URN = /^urn:service:sos(\.[a-z0-9-]+)*$/i;
const TEST_SOS_URN = /^urn:service:test\.sos(\.[a-z0-9-]+)*$/i;

export class DialPlan {
  /** Every emergency dial string, exactly as it may be dialed, to its match. */
  private readonly strings = new Map<string, Omit<EmergencyMatch, 'dialed' | 'viaUrn'>>();
  /** Every proper prefix of an emergency dial string. */
  private readonly prefixes = new Set<string>();
  private readonly rules: { re: RegExp; replace: string }[];
  private readonly firstTest: EmergencyNumber | undefined;

  constructor(private readonly config: DialPlanConfig) {
    // Unprefixed numbers first, so a number that equals another's prefixed form stays itself.
    for (const n of config.numbers) this.add(n.digits, n, false);
    if (config.outsideLinePrefix !== '') {
      for (const n of config.numbers) this.add(config.outsideLinePrefix + n.digits, n, true);
    }
    for (const s of this.strings.keys()) {
      for (let i = 1; i < s.length; i++) this.prefixes.add(s.slice(0, i));
    }
    this.rules = config.operatorRules.map((r) => ({ re: new RegExp(`^(?:${r.match})$`), replace: r.replace }));
    this.firstTest = config.numbers.find((n) => n.kind === 'test');
  }

  /** Every emergency dial string this plan recognises (for docs, status and tests). */
  emergencyStrings(): string[] {
    return [...this.strings.keys()];
  }

  /** The emergency match of a complete dial string, or null. Looks at nothing else. */
  emergency(dialed: string): EmergencyMatch | null {
    const hit = this.strings.get(dialed);
    if (hit) return { ...hit, dialed, viaUrn: false };
    if (SOS_URN.test(dialed)) {
      const sos = this.config.numbers.find((n) => n.kind === 'emergency');
      return { kind: 'emergency', dialed, number: sos?.digits ?? '911', urn: dialed.toLowerCase(), prefixed: false, viaUrn: true };
    }
    if (TEST_SOS_URN.test(dialed)) {
      return { kind: 'test', dialed, number: this.firstTest?.digits ?? '933', urn: dialed.toLowerCase(), prefixed: false, viaUrn: true };
    }
    return null;
  }

  /** Whether more digits could still make an emergency dial string. */
  couldBecomeEmergency(partial: string): boolean {
    return this.prefixes.has(partial);
  }

  /** Classifies a complete dial string: emergency first, then the operator rules. */
  classify(dialed: string): DialResult {
    const em = this.emergency(dialed);
    if (em) return em;
    if (dialed === '') return { kind: 'invalid', dialed, reason: 'nothing dialed' };
    if (!DIAL_KEYS.test(dialed)) return { kind: 'invalid', dialed, reason: 'only 0-9, * and # can be dialed' };
    let target = dialed;
    for (const rule of this.rules) {
      if (rule.re.test(dialed)) {
        target = dialed.replace(rule.re, rule.replace);
        break;
      }
    }
    // Safety net: an operator rule that produces an emergency number still makes an
    // emergency call (with location and notification), never a plain one.
    const rewritten = this.strings.get(target);
    if (rewritten && target !== dialed) return { ...rewritten, dialed, viaUrn: false };
    return { kind: 'ordinary', dialed, target };
  }

  private add(s: string, n: EmergencyNumber, prefixed: boolean): void {
    if (this.strings.has(s)) return;
    this.strings.set(s, { kind: n.kind, number: n.digits, urn: n.urn, prefixed });
  }
}

// ---------------------------------------------------------------------------

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export type CollectorDecision = DialResult & { reason: 'emergency-match' | 'timeout' | 'send-key' | 'too-long' };

export interface DigitCollectorOptions {
  /** How long after the last digit an ordinary number is dialed. Emergency numbers never wait. */
  interDigitMs: number;
  timers: Timers;
  /** Called with every decision: at once for an emergency match, later for ordinary numbers. */
  onDecision: (decision: CollectorDecision) => void;
  maxDigits?: number;
}

/**
 * Collects keypad digits one at a time. The moment the collected digits equal an
 * emergency dial string it decides, synchronously, inside digit(): no timer, no wait.
 */
export class DigitCollector {
  private buf = '';
  private timer: unknown = null;
  private readonly maxDigits: number;

  constructor(
    private readonly plan: DialPlan,
    private readonly opts: DigitCollectorOptions,
  ) {
    this.maxDigits = opts.maxDigits ?? 32;
  }

  get collected(): string {
    return this.buf;
  }

  /** One key. Returns the decision when this key made one (emergency: always at once). */
  digit(key: string): CollectorDecision | null {
    if (!/^[0-9*#]$/.test(key)) throw new RangeError(`not a keypad key: ${JSON.stringify(key)}`);
    this.cancelTimer();
    // '#' sends what was dialed so far, unless it could still be part of an emergency string.
    if (key === '#' && this.buf !== '' && !this.plan.couldBecomeEmergency(this.buf + key)) {
      return this.decide(this.plan.classify(this.buf), 'send-key');
    }
    this.buf += key;
    const em = this.plan.emergency(this.buf);
    if (em) return this.decide(em, 'emergency-match');
    if (this.buf.length >= this.maxDigits) return this.decide(this.plan.classify(this.buf), 'too-long');
    this.timer = this.opts.timers.setTimeout(() => {
      this.timer = null;
      this.decide(this.plan.classify(this.buf), 'timeout');
    }, this.opts.interDigitMs);
    return null;
  }

  /** On hook, or the call was placed: start over. */
  reset(): void {
    this.cancelTimer();
    this.buf = '';
  }

  private decide(result: DialResult, reason: CollectorDecision['reason']): CollectorDecision {
    this.reset();
    const decision = { ...result, reason } as CollectorDecision;
    this.opts.onDecision(decision);
    return decision;
  }

  private cancelTimer(): void {
    if (this.timer !== null) this.opts.timers.clearTimeout(this.timer);
    this.timer = null;
  }
}

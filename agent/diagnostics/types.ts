// The 933 diagnostics report, and what the checks need from the rest of the agent.
// Every collaborator is an interface so a test can break any one part on purpose.

export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';
export const CHECK_IDS = [
  'address',
  'network',
  'lldp',
  'handset',
  'emergency-path',
  'sip-registration',
  'emergency-routes',
  'provisioning-link',
  'outbox',
  'clock',
  'test-call',
] as const;
export type CheckId = (typeof CHECK_IDS)[number];

export interface CheckResult {
  id: CheckId;
  title: string;
  status: CheckStatus;
  /** What was found, in one line. */
  detail: string;
  /** What to do about it (for warn and fail). */
  remedy?: string;
  data?: Record<string, unknown>;
}

export type DiagnosticsTrigger = 'keypad' | 'cli' | 'server';

export interface DiagnosticsReport {
  v: 1;
  id: string;
  trigger: DiagnosticsTrigger;
  startedAt: string;
  finishedAt: string;
  /** fail if any check failed; warn if any warned or was skipped; else pass. */
  overall: 'pass' | 'warn' | 'fail';
  checks: CheckResult[];
  /** The address the phone sends, line by line, as read back on the display. */
  address: { version: number; lines: string[]; callback: string; displayName: string } | null;
}

export interface NetInterface {
  name: string;
  up: boolean;
  mac: string | null;
  addresses: { family: 'IPv4' | 'IPv6'; address: string; prefix?: number }[];
}

export interface LldpSighting {
  /** null: cannot tell (lldpd not running, command missing). */
  seen: boolean | null;
  detail: string;
  /** A civic address or ELIN came with it (LLDP-MED). */
  location?: boolean;
}

/** The network as diagnostics sees it: the network service when present, else the OS. */
export interface NetworkProbe {
  interfaces(): NetInterface[];
  gateway?(): string | null;
  lldp(): Promise<LldpSighting>;
}

export interface ClockSync {
  /** null: cannot tell. */
  synchronized: boolean | null;
  source: string;
  detail: string;
}

export type OptionsResult = { answered: true; code: number; reason: string } | { answered: false; error: string };

/** One emergency call as the emergency path records it (agent/emergency EmergencyService). */
export interface EmergencyCallView {
  callRef: string;
  kind: string;
  state: string;
  attempts: readonly { route: string; target?: string; result?: string | undefined; provisional?: boolean }[];
}

/**
 * The part of the emergency path diagnostics uses; agent/emergency's EmergencyService
 * fits it as it is. dial() goes through the same dial plan as the keypad.
 */
export interface EmergencyPath {
  dial(digits: string): { kind: string; placed?: boolean; callRef?: string; error?: string; route?: string };
  hangup(): unknown;
  history(): readonly EmergencyCallView[];
  status(): Record<string, unknown>;
}

export interface LinkView {
  state: string;
  lastError: string | null;
  backlog: number;
  inFlight: number;
}

// 933 diagnostics: the checks, then the test call through the emergency path.
// From the keypad the dial plan has already placed the 933 call when this starts
// (the test call is never held back by the checks); from e911ctl diag the checks
// run first and then this places the call. One run at a time: a second request
// while one runs gets the same result.
import { randomUUID, type KeyObject } from 'node:crypto';
import type { Logger } from '../../provisioning/common/log.js';
import type { StoredAddress } from '../store/store.js';
import type { HandsetStatus } from '../../hal/handset.js';
import { formatAddressLines } from '../../provisioning/protocol/address.js';
import {
  addressCheck,
  clockCheck,
  emergencyPathCheck,
  handsetCheck,
  linkCheck,
  lldpCheck,
  networkCheck,
  outboxCheck,
  registrationCheck,
  routesCheck,
} from './checks.js';
import type {
  CheckResult,
  ClockSync,
  DiagnosticsReport,
  DiagnosticsTrigger,
  EmergencyCallView,
  EmergencyPath,
  LinkView,
  NetworkProbe,
  OptionsResult,
} from './types.js';

export interface DiagnosticsDeps {
  deviceId: string;
  serverKey: KeyObject;
  log: Logger;
  now?: () => Date;
  address: () => StoredAddress | null;
  network: NetworkProbe;
  clock: () => Promise<ClockSync>;
  link: () => LinkView;
  /** null when the agent has no emergency path (or it is not wired). */
  emergency: () => EmergencyPath | null;
  handset: () => HandsetStatus | null;
  optionsPing: (uri: string) => Promise<OptionsResult>;
  /** Stores the report and queues the 'diagnostics' event for the server. */
  publish: (report: DiagnosticsReport) => void;
  testNumber?: string;
  addressMaxAgeDays?: number;
  outboxWarnAbove?: number;
  testCallTimeoutMs?: number;
}

export type TestCallMode =
  /** Dial the test number after the checks (e911ctl diag). */
  | { place: true; hangUpWhenAnswered: boolean }
  /** The keypad already placed it: follow that call. */
  | { follow: string }
  | { none: true };

export interface RunOptions {
  trigger: DiagnosticsTrigger;
  testCall: TestCallMode;
}

const POLL_MS = 100;

export class Diagnostics {
  private running: Promise<DiagnosticsReport> | null = null;
  private readonly now: () => Date;

  constructor(private readonly deps: DiagnosticsDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  get busy(): boolean {
    return this.running !== null;
  }

  run(opts: RunOptions): Promise<DiagnosticsReport> {
    if (this.running) return this.running;
    this.running = this.execute(opts).finally(() => (this.running = null));
    return this.running;
  }

  private async execute(opts: RunOptions): Promise<DiagnosticsReport> {
    const d = this.deps;
    const startedAt = this.now();
    d.log.info({ trigger: opts.trigger }, 'diagnostics started');
    const emergency = d.emergency();
    const link = d.link();
    const address = d.address();
    // The slow probes (LLDP, OPTIONS, clock) run side by side.
    const [lldp, routes, clock] = await Promise.all([
      lldpCheck(d.network),
      routesCheck(emergency, d.optionsPing),
      d.clock().then(clockCheck, (err: Error) => clockCheck({ synchronized: null, source: 'none', detail: err.message })),
    ]);
    const checks: CheckResult[] = [
      addressCheck(address, { serverKey: d.serverKey, deviceId: d.deviceId, now: startedAt, maxAgeDays: d.addressMaxAgeDays ?? 365 }),
      networkCheck(d.network),
      lldp,
      handsetCheck(d.handset()),
      emergencyPathCheck(emergency),
      registrationCheck(emergency),
      routes,
      linkCheck(link),
      outboxCheck(link, d.outboxWarnAbove ?? 100),
      clock,
      await this.testCall(emergency, opts.testCall),
    ];
    const report: DiagnosticsReport = {
      v: 1,
      id: randomUUID(),
      trigger: opts.trigger,
      startedAt: startedAt.toISOString(),
      finishedAt: this.now().toISOString(),
      overall: checks.some((c) => c.status === 'fail')
        ? 'fail'
        : checks.some((c) => c.status === 'warn' || c.status === 'skip')
          ? 'warn'
          : 'pass',
      checks,
      address: address
        ? {
            version: address.version,
            lines: formatAddressLines(address.doc.civic),
            callback: address.doc.callback,
            displayName: address.doc.displayName,
          }
        : null,
    };
    try {
      d.publish(report);
    } catch (err) {
      d.log.error({ err }, 'diagnostics report could not be stored');
    }
    const failed = checks.filter((c) => c.status === 'fail').map((c) => c.id);
    d.log[report.overall === 'fail' ? 'warn' : 'info']({ id: report.id, overall: report.overall, failed }, 'diagnostics finished');
    return report;
  }

  private async testCall(e: EmergencyPath | null, mode: TestCallMode): Promise<CheckResult> {
    const base = { id: 'test-call' as const, title: `Test call (${this.deps.testNumber ?? '933'})` };
    if ('none' in mode) return { ...base, status: 'skip', detail: 'not requested' };
    if (!e)
      return {
        ...base,
        status: 'fail',
        detail: 'no emergency call path in this agent',
        remedy: 'install an agent build with agent/emergency and the voice binding',
      };
    let callRef: string;
    if ('place' in mode) {
      const live = e.history().find((c) => c.kind === 'emergency' && (c.state === 'trying' || c.state === 'answered'));
      if (live) return { ...base, status: 'skip', detail: 'an emergency call is in progress: no test call now' };
      const out = e.dial(this.deps.testNumber ?? '933');
      if (!out.placed || !out.callRef) {
        return {
          ...base,
          status: 'fail',
          detail: `not placed: ${out.error ?? `the dial plan classified it as ${out.kind}`}`,
          remedy: 'see the emergency path and route checks above',
        };
      }
      callRef = out.callRef;
    } else callRef = mode.follow;

    const deadline = Date.now() + (this.deps.testCallTimeoutMs ?? 15_000);
    let rec: EmergencyCallView | undefined;
    for (;;) {
      rec = e.history().find((c) => c.callRef === callRef);
      if (rec?.state !== 'trying' || Date.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    const attempts = (rec?.attempts ?? []).map((a) => ({ route: a.route, target: a.target, result: a.result ?? null }));
    const data = { callRef, state: rec?.state ?? 'unknown', attempts };
    const via = attempts.length ? ` via ${attempts[attempts.length - 1]!.route}` : '';
    const tried = attempts.map((a) => `${a.route}: ${a.result ?? 'no answer'}`).join('; ');
    switch (rec?.state) {
      case 'answered':
        if ('place' in mode && mode.hangUpWhenAnswered) e.hangup();
        return { ...base, status: 'pass', detail: `answered${via}`, data };
      case 'ended':
        return {
          ...base,
          status: 'warn',
          detail: `ended before it was seen answered${via}${tried ? ` (${tried})` : ''}`,
          data,
          remedy: 'dial 933 again and stay on the line until the read-back',
        };
      case 'failed':
        return {
          ...base,
          status: 'fail',
          detail: `failed on every route (${tried || 'no attempt'})`,
          data,
          remedy: 'check the emergency route checks above and the SIP trunk with the carrier',
        };
      case 'trying':
        if ('place' in mode) e.hangup();
        return {
          ...base,
          status: 'fail',
          detail: `not answered within ${(this.deps.testCallTimeoutMs ?? 15_000) / 1000} s${tried ? ` (${tried})` : ''}`,
          data,
          remedy: 'check the emergency routes and the carrier; a 933 service must answer with the address read-back',
        };
      default:
        return { ...base, status: 'fail', detail: 'the emergency path has no record of the call', data, remedy: 'see the agent log' };
    }
  }
}

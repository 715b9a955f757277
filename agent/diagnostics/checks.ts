// The 933 checks. Each returns what it found and, when something is wrong, what a
// technician should do about it. Checks never throw: a probe that fails is a finding.
import type { KeyObject } from 'node:crypto';
import type { StoredAddress } from '../store/store.js';
import type { HandsetStatus } from '../../hal/handset.js';
import { validateAddress } from '../../provisioning/protocol/address.js';
import { documentHash, verifyDocument } from '../../provisioning/protocol/signing.js';
import type { CheckResult, ClockSync, EmergencyPath, LinkView, NetworkProbe, OptionsResult } from './types.js';

const DAY_MS = 86_400_000;

export function addressCheck(
  a: StoredAddress | null,
  o: { serverKey: KeyObject; deviceId: string; now: Date; maxAgeDays: number },
): CheckResult {
  const base = { id: 'address' as const, title: 'Dispatchable address' };
  if (!a) {
    return {
      ...base,
      status: 'fail',
      detail: 'no address on file: 911 calls go to the fallback route without a location',
      remedy: 'assign a location to this phone (or its user) on the provisioning server, then check the provisioning link below',
    };
  }
  const data = { version: a.version, hash: a.hash, issuedAt: a.doc.issuedAt, appliedAt: a.appliedAt };
  // Verify again: what is on flash now, not what was checked when it arrived.
  if (!verifyDocument(a.doc, a.signature, o.serverKey)) {
    return {
      ...base,
      status: 'fail',
      data,
      detail: `version ${a.version}: the stored signature does not verify against the provisioned server key`,
      remedy: 're-push the address from the provisioning server; if the server key was rotated, update serverPublicKey in the agent config',
    };
  }
  if (documentHash(a.doc) !== a.hash) {
    return {
      ...base,
      status: 'fail',
      data,
      detail: `version ${a.version}: stored hash does not match the document`,
      remedy: 're-push the address from the provisioning server',
    };
  }
  if (a.doc.deviceId !== o.deviceId) {
    return {
      ...base,
      status: 'fail',
      data,
      detail: `the address is for ${a.doc.deviceId}, this phone is ${o.deviceId}`,
      remedy: 'fix the device id in the agent config or the phone assignment on the server',
    };
  }
  const issues = validateAddress(a.doc);
  if (issues.length > 0) {
    return {
      ...base,
      status: 'fail',
      data,
      detail: `version ${a.version} is not a valid dispatchable address: ${issues.map((i) => `${i.field} ${i.reason}`).join('; ')}`,
      remedy: 'correct the location on the provisioning server',
    };
  }
  const ageDays = Math.floor((o.now.getTime() - Date.parse(a.appliedAt)) / DAY_MS);
  const detail = `version ${a.version}, signed, valid; applied ${a.appliedAt} (${ageDays} days ago)`;
  if (ageDays > o.maxAgeDays) {
    return {
      ...base,
      status: 'warn',
      data: { ...data, ageDays },
      detail,
      remedy: `the address is over ${o.maxAgeDays} days old: confirm with the site that it is still where this phone is`,
    };
  }
  return { ...base, status: 'pass', data: { ...data, ageDays }, detail };
}

export function networkCheck(net: NetworkProbe): CheckResult {
  const base = { id: 'network' as const, title: 'Network' };
  const all = net.interfaces();
  const ifaces = all.filter((i) => i.up && i.addresses.length > 0);
  if (ifaces.length === 0) {
    const seen = all.map((i) => `${i.name} ${i.up ? 'up' : 'down'}${i.addresses.length ? '' : ' without address'}`).join(', ');
    return {
      ...base,
      status: 'fail',
      detail: `no network interface is up with an address${seen ? ` (${seen})` : ''}`,
      remedy: 'check the cable and the switch port, then DHCP (or the static address) for this phone',
    };
  }
  const gw = net.gateway?.() ?? null;
  const detail = ifaces.map((i) => `${i.name} ${i.addresses.map((a) => a.address).join(' ')}`).join('; ') + (gw ? `; gateway ${gw}` : '');
  return { ...base, status: 'pass', detail, data: { interfaces: ifaces } };
}

export async function lldpCheck(net: NetworkProbe): Promise<CheckResult> {
  const base = { id: 'lldp' as const, title: 'LLDP neighbour' };
  const s = await net.lldp().catch((err: Error) => ({ seen: null, detail: err.message }));
  if (s.seen) return { ...base, status: 'pass', detail: s.detail };
  return {
    ...base,
    status: 'warn',
    detail: s.seen === false ? s.detail : `cannot tell: ${s.detail}`,
    remedy:
      s.seen === false
        ? 'if the site switches send LLDP-MED, enable LLDP on this switch port; otherwise the provisioned address is the only location source'
        : 'start lldpd on the phone (the network location sources need it)',
  };
}

export function handsetCheck(h: HandsetStatus | null): CheckResult {
  const base = { id: 'handset' as const, title: 'Keypad and display (MCU)' };
  if (!h) return { ...base, status: 'skip', detail: 'no handset backend configured (handset.backend is none)' };
  if (!h.connected) {
    return {
      ...base,
      status: 'fail',
      detail: `${h.backend}: port not open (reopened ${h.reopens} times)`,
      remedy: 'check the MCU serial device path in the config and the MCU cable; until then 911 cannot be dialed from the keypad',
    };
  }
  if (!h.responsive) {
    return {
      ...base,
      status: 'fail',
      detail: `${h.backend}: port open but the MCU does not answer`,
      remedy: 'check the MCU firmware and baud rate (docs/mcu-protocol.md); until then 911 cannot be dialed from the keypad',
    };
  }
  return {
    ...base,
    status: 'pass',
    detail: `${h.backend}: ${h.firmware ?? 'MCU'} answering, ${h.rows}x${h.cols} display${h.framingErrors ? `, ${h.framingErrors} framing errors recovered` : ''}`,
  };
}

export function emergencyPathCheck(e: EmergencyPath | null): CheckResult {
  const base = { id: 'emergency-path' as const, title: 'Emergency call path' };
  if (!e)
    return {
      ...base,
      status: 'fail',
      detail: 'this agent has no emergency call path',
      remedy: 'install an agent build with agent/emergency and the voice binding',
    };
  const s = e.status();
  if (s.canPlaceCalls === true)
    return {
      ...base,
      status: 'pass',
      detail: `can place calls; routes ${
        routesOf(e)
          .map((r) => `${r.name}=${r.uri}`)
          .join(', ') || 'none'
      }`,
    };
  return {
    ...base,
    status: 'fail',
    detail: `cannot place calls: ${String(s.reason ?? 'unknown reason')}`,
    remedy:
      'check the SIP settings and that the voice stack (pjproject) is installed; see the agent log for "EMERGENCY CALLS CANNOT BE PLACED"',
  };
}

export function registrationCheck(e: EmergencyPath | null): CheckResult {
  const base = { id: 'sip-registration' as const, title: 'SIP registration' };
  if (!e) return { ...base, status: 'skip', detail: 'no emergency call path in this agent' };
  const r = e.status().registration;
  if (typeof r === 'string')
    return { ...base, status: 'warn', detail: r, remedy: 'configure sip.account with a registrar so PSAP callbacks can reach this phone' };
  const reg = r as { registered?: boolean; code?: number; reason?: string };
  if (reg.registered) return { ...base, status: 'pass', detail: `registered (${reg.code ?? 200})` };
  return {
    ...base,
    status: 'fail',
    detail: `not registered: ${reg.code ?? '?'} ${reg.reason ?? ''}`.trim(),
    remedy:
      '911 still goes out, but callbacks may not reach this phone: check the SIP username, password and registrar address, and that the registrar is reachable',
  };
}

export async function routesCheck(e: EmergencyPath | null, ping: (uri: string) => Promise<OptionsResult>): Promise<CheckResult> {
  const base = { id: 'emergency-routes' as const, title: 'Emergency routes (OPTIONS)' };
  if (!e) return { ...base, status: 'skip', detail: 'no emergency call path in this agent' };
  const routes = routesOf(e);
  if (routes.length === 0)
    return {
      ...base,
      status: 'fail',
      detail: 'no emergency route configured',
      remedy: 'set emergency.routes.primary (and secondary) in the agent config',
    };
  const results = await Promise.all(routes.map(async (r) => ({ ...r, result: await ping(r.uri) })));
  const silent = results.filter((r) => !r.result.answered);
  const detail = results
    .map((r) => `${r.name} ${r.uri}: ${r.result.answered ? `${r.result.code} ${r.result.reason}` : r.result.error}`)
    .join('; ');
  const data = { routes: results.map((r) => ({ name: r.name, uri: r.uri, ...r.result })) };
  if (silent.length === 0) return { ...base, status: 'pass', detail, data };
  return {
    ...base,
    status: silent.length === results.length ? 'fail' : 'warn',
    detail,
    data,
    remedy: `${silent.map((r) => r.name).join(' and ')} did not answer: check the route address in the config, the network path and firewall to it, and that the SIP server there is running`,
  };
}

export function linkCheck(l: LinkView): CheckResult {
  const base = { id: 'provisioning-link' as const, title: 'Provisioning link' };
  if (l.state === 'online') return { ...base, status: 'pass', detail: 'connected to the provisioning server' };
  return {
    ...base,
    status: 'fail',
    detail: `not connected (${l.state}${l.lastError ? `: ${l.lastError}` : ''})`,
    remedy:
      'address updates and 911 notifications wait until it is back: check the broker URL, credentials and TLS files in the config, and the network path to the broker',
  };
}

export function outboxCheck(l: LinkView, warnAbove: number): CheckResult {
  const base = { id: 'outbox' as const, title: 'Event outbox' };
  const data = { backlog: l.backlog, inFlight: l.inFlight };
  if (l.backlog === 0) return { ...base, status: 'pass', detail: 'empty: every event has reached the server', data };
  if (l.state === 'online' && l.backlog <= warnAbove) return { ...base, status: 'pass', detail: `${l.backlog} events draining`, data };
  return {
    ...base,
    status: 'warn',
    data,
    detail: `${l.backlog} events waiting for the server${l.state === 'online' ? '' : ' (link down)'}`,
    remedy: 'fix the provisioning link; queued events (911 notifications included) are sent once it is back',
  };
}

export function clockCheck(c: ClockSync): CheckResult {
  const base = { id: 'clock' as const, title: 'Clock synchronised' };
  if (c.synchronized) return { ...base, status: 'pass', detail: `${c.source}: ${c.detail}` };
  if (c.synchronized === false) {
    return {
      ...base,
      status: 'fail',
      detail: `${c.source}: ${c.detail}`,
      remedy:
        'enable NTP (systemd-timesyncd or chrony) and allow UDP 123 to the NTP server: call times in notifications and TLS checks depend on it',
    };
  }
  return {
    ...base,
    status: 'warn',
    detail: c.detail,
    remedy: 'run an NTP client that systemd can report on (timedatectl), or check the clock by hand',
  };
}

export function routesOf(e: EmergencyPath): { name: string; uri: string }[] {
  const r = e.status().routes;
  return Array.isArray(r) ? (r as { name: string; uri: string }[]) : [];
}

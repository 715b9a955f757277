// The device's own network identity for the notification event: the IP and MAC of
// the interface SIP is bound to. os.networkInterfaces() is cheap (about 0.08 ms);
// systeminformation is not (measured) and is never used here.
import { createHash } from 'node:crypto';
import os from 'node:os';

export interface DeviceNetwork {
  interface: string;
  ip: string;
  mac: string;
}

export type InterfaceMap = ReturnType<typeof os.networkInterfaces>;

/** The interface carrying bindAddress, else the first non-internal IPv4, else IPv6; null when none. */
export function deviceNetwork(bindAddress: string | undefined, interfaces: InterfaceMap = os.networkInterfaces()): DeviceNetwork | null {
  const all = Object.entries(interfaces).flatMap(([name, addrs]) => (addrs ?? []).map((a) => ({ name, ...a })));
  const pick =
    (bindAddress && !['0.0.0.0', '::'].includes(bindAddress) ? all.find((a) => a.address === bindAddress) : undefined) ??
    all.find((a) => !a.internal && a.family === 'IPv4') ??
    all.find((a) => !a.internal && a.family === 'IPv6') ??
    all.find((a) => a.family === 'IPv4');
  return pick ? { interface: pick.name, ip: pick.address, mac: pick.mac } : null;
}

/** RFC 5491 deviceID from a MAC (mac:00d01e123456), or null for a missing or all-zero MAC. */
export function macDeviceId(mac: string | undefined): string | null {
  const hex = (mac ?? '').replace(/[^0-9a-fA-F]/g, '').toLowerCase();
  return hex.length === 12 && !/^0+$/.test(hex) ? `mac:${hex}` : null;
}

/** Local wall-clock time with its UTC offset, e.g. 2026-11-22T08:00:00.000+01:00. */
export function localTimeWithOffset(d: Date): string {
  const offsetMin = -d.getTimezoneOffset();
  const sign = offsetMin >= 0 ? '+' : '-';
  const abs = Math.abs(offsetMin);
  const hh = String(Math.floor(abs / 60)).padStart(2, '0');
  const mm = String(abs % 60).padStart(2, '0');
  return `${new Date(d.getTime() + offsetMin * 60_000).toISOString().slice(0, -1)}${sign}${hh}:${mm}`;
}

/** A stable UUID-shaped name for a device without a MAC (for the PIDF-LO deviceID). */
export function uuidFromName(name: string): string {
  const hex = createHash('sha256').update(`e911-agent:${name}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

// The network snapshot from cheap sources: os.networkInterfaces() (a getifaddrs
// call, about 0.08 ms), a few small /proc and /sys files, resolv.conf. Only an
// IPv6 gateway's MAC needs a command (`ip -6 neigh`), and only when there is one.
//
// The files are read synchronously: /proc and /sys are made by the kernel in memory as they are
// read (microseconds each), while readFile's open/stat/read/close go one by one through libuv's
// four-thread pool. On a loaded 2-core machine that was 35-50 ms a snapshot against 0.4 ms
// (docs/performance.md), and the snapshot is on the path from a network change to its report.
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { HostPaths } from '../host.js';
import type { Gateway, InterfaceAddress, InterfaceInfo, NetworkSnapshot } from './types.js';
import { compareCodeUnits } from '../compare.js';

export type SnapshotReader = () => Promise<NetworkSnapshot>;

export interface SnapshotDeps {
  host: HostPaths;
  /** Which interfaces to report (never loopback). */
  watches: (iface: string) => boolean;
  networkInterfaces?: () => NodeJS.Dict<os.NetworkInterfaceInfo[]>;
}

function readText(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null; // absent, or EINVAL (carrier of a link that is administratively down)
  }
}

function readNames(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

export function hostSnapshotReader(deps: SnapshotDeps): SnapshotReader {
  const { host, watches } = deps;
  const nif = deps.networkInterfaces ?? os.networkInterfaces;
  const sysNet = path.join(host.sys, 'class', 'net');
  const procNet = path.join(host.proc, 'net');

  return async () => {
    const fromOs = nif();
    const sysNames = readNames(sysNet);
    const names = [...new Set([...sysNames, ...Object.keys(fromOs)])].filter((n) => n !== 'lo' && watches(n)).sort();
    const interfaces = names.map((name) => readInterface(sysNet, name, fromOs[name] ?? []));
    const route4 = readText(path.join(procNet, 'route'));
    const route6 = readText(path.join(procNet, 'ipv6_route'));
    const arp = readText(path.join(procNet, 'arp'));
    const resolv = readText(host.resolvConf);
    const gw4 = route4 ? defaultRoute4(route4, watches) : null;
    const gw6 = route6 ? defaultRoute6(route6, watches) : null;
    const gateway4: Gateway | null = gw4 ? { ...gw4, mac: arp ? arpLookup(arp, gw4.address, gw4.iface) : null } : null;
    const gateway6: Gateway | null = gw6 ? { ...gw6, mac: await neighbour6(host, gw6.address, gw6.iface) } : null;
    return { interfaces, gateway4, gateway6, dns: resolv ? parseResolvConf(resolv) : [] };
  };
}

function readInterface(sysNet: string, name: string, addrs: os.NetworkInterfaceInfo[]): InterfaceInfo {
  const dir = path.join(sysNet, name);
  const operstate = readText(path.join(dir, 'operstate'));
  const carrier = readText(path.join(dir, 'carrier')); // EINVAL while the link is administratively down
  const address = readText(path.join(dir, 'address'));
  const state = operstate?.trim() ?? (addrs.length > 0 ? 'up' : 'down');
  const up = state === 'up' || (state === 'unknown' && carrier?.trim() === '1');
  const macRaw = address?.trim() || addrs.find((a) => a.mac && a.mac !== '00:00:00:00:00:00')?.mac || null;
  const mac = macRaw && macRaw !== '00:00:00:00:00:00' ? macRaw.toLowerCase() : null;
  const addresses: InterfaceAddress[] = addrs
    .filter((a) => !a.internal)
    .map((a) => ({ family: a.family, address: a.address.toLowerCase(), prefix: Number(a.cidr?.split('/')[1] ?? 0) }))
    .sort((a, b) => (a.family === b.family ? compareCodeUnits(a.address, b.address) : a.family < b.family ? -1 : 1));
  return { name, mac, up, addresses };
}

/** /proc/net/route holds addresses as host-order hex words. */
function hexToIPv4(hex: string): string {
  const n = Number.parseInt(hex, 16);
  const bytes = [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  return (os.endianness() === 'LE' ? bytes.reverse() : bytes).join('.');
}

export function defaultRoute4(text: string, watches: (iface: string) => boolean): { address: string; iface: string } | null {
  let best: { address: string; iface: string; metric: number } | null = null;
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [iface, dest, gw, flags, , , metric, mask] = f as [string, string, string, string, string, string, string, string];
    const RTF_UP = 0x1;
    const RTF_GATEWAY = 0x2;
    const fl = Number.parseInt(flags, 16);
    if (dest !== '00000000' || mask !== '00000000' || !(fl & RTF_UP) || !(fl & RTF_GATEWAY) || !watches(iface)) continue;
    const m = Number(metric);
    if (!best || m < best.metric) best = { address: hexToIPv4(gw), iface, metric: m };
  }
  return best && { address: best.address, iface: best.iface };
}

function hexToIPv6(hex: string): string {
  const groups = hex.match(/.{4}/g)!.map((g) => Number.parseInt(g, 16).toString(16));
  // Compress the longest run of zero groups, as inet_ntop does.
  let runStart = -1;
  let runLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > runLen && j - i > 1) [runStart, runLen] = [i, j - i];
    i = j;
  }
  if (runStart < 0) return groups.join(':');
  return `${groups.slice(0, runStart).join(':')}::${groups.slice(runStart + runLen).join(':')}`;
}

export function defaultRoute6(text: string, watches: (iface: string) => boolean): { address: string; iface: string } | null {
  let best: { address: string; iface: string; metric: number } | null = null;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [dest, destLen, , , nextHop, metric, , , flags, iface] = f as string[] as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    const RTF_GATEWAY = 0x2;
    if (!/^0+$/.test(dest) || destLen !== '00' || /^0+$/.test(nextHop)) continue;
    if (!(Number.parseInt(flags, 16) & RTF_GATEWAY) || !watches(iface)) continue;
    const m = Number.parseInt(metric, 16);
    if (!best || m < best.metric) best = { address: hexToIPv6(nextHop), iface, metric: m };
  }
  return best && { address: best.address, iface: best.iface };
}

export function arpLookup(text: string, ip: string, iface: string): string | null {
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[0] !== ip || f[5] !== iface) continue;
    const ATF_COM = 0x2; // entry complete
    if (!(Number.parseInt(f[2] ?? '0', 16) & ATF_COM)) return null;
    return f[3]!.toLowerCase();
  }
  return null;
}

export function parseResolvConf(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m && !out.includes(m[1]!)) out.push(m[1]!);
  }
  return out;
}

function neighbour6(host: HostPaths, ip: string, iface: string): Promise<string | null> {
  const [cmd, ...args] = [...host.commandPrefix, host.commands.ip, '-6', 'neigh', 'show', ip, 'dev', iface];
  return new Promise((resolve) => {
    execFile(cmd!, args, { timeout: 2000 }, (err, stdout) => {
      if (err) return resolve(null);
      const m = /lladdr\s+([0-9a-f:]{17})/i.exec(stdout);
      resolve(m && !/\b(FAILED|INCOMPLETE)\b/.test(stdout) ? m[1]!.toLowerCase() : null);
    });
  });
}

// The network snapshot from cheap sources: os.networkInterfaces() (a getifaddrs
// call, about 0.08 ms), a few small /proc and /sys files, resolv.conf. Only an
// IPv6 gateway's MAC needs a command (`ip -6 neigh`), and only when there is one.
import { execFile } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { HostPaths } from '../host.js';
import type { Gateway, InterfaceAddress, InterfaceInfo, NetworkSnapshot } from './types.js';

export type SnapshotReader = () => Promise<NetworkSnapshot>;

export interface SnapshotDeps {
  host: HostPaths;
  /** Which interfaces to report (never loopback). */
  watches: (iface: string) => boolean;
  networkInterfaces?: () => NodeJS.Dict<os.NetworkInterfaceInfo[]>;
}

const readText = (file: string): Promise<string | null> => readFile(file, 'utf8').catch(() => null);

export function hostSnapshotReader(deps: SnapshotDeps): SnapshotReader {
  const { host, watches } = deps;
  const nif = deps.networkInterfaces ?? os.networkInterfaces;
  const sysNet = path.join(host.sys, 'class', 'net');
  const procNet = path.join(host.proc, 'net');

  return async () => {
    const fromOs = nif();
    const sysNames = await readdir(sysNet).catch(() => [] as string[]);
    const names = [...new Set([...sysNames, ...Object.keys(fromOs)])].filter((n) => n !== 'lo' && watches(n)).sort();
    const [interfaces, route4, route6, arp, resolv] = await Promise.all([
      Promise.all(names.map((name) => readInterface(sysNet, name, fromOs[name] ?? []))),
      readText(path.join(procNet, 'route')),
      readText(path.join(procNet, 'ipv6_route')),
      readText(path.join(procNet, 'arp')),
      readText(host.resolvConf),
    ]);
    const gw4 = route4 ? defaultRoute4(route4, watches) : null;
    const gw6 = route6 ? defaultRoute6(route6, watches) : null;
    const gateway4: Gateway | null = gw4 ? { ...gw4, mac: arp ? arpLookup(arp, gw4.address, gw4.iface) : null } : null;
    const gateway6: Gateway | null = gw6 ? { ...gw6, mac: await neighbour6(host, gw6.address, gw6.iface) } : null;
    return { interfaces, gateway4, gateway6, dns: resolv ? parseResolvConf(resolv) : [] };
  };
}

async function readInterface(sysNet: string, name: string, addrs: os.NetworkInterfaceInfo[]): Promise<InterfaceInfo> {
  const dir = path.join(sysNet, name);
  const [operstate, carrier, address] = await Promise.all([
    readText(path.join(dir, 'operstate')),
    readText(path.join(dir, 'carrier')), // EINVAL while the link is administratively down
    readText(path.join(dir, 'address')),
  ]);
  const state = operstate?.trim() ?? (addrs.length > 0 ? 'up' : 'down');
  const up = state === 'up' || (state === 'unknown' && carrier?.trim() === '1');
  const macRaw = address?.trim() || addrs.find((a) => a.mac && a.mac !== '00:00:00:00:00:00')?.mac || null;
  const mac = macRaw && macRaw !== '00:00:00:00:00:00' ? macRaw.toLowerCase() : null;
  const addresses: InterfaceAddress[] = addrs
    .filter((a) => !a.internal)
    .map((a) => ({ family: a.family, address: a.address.toLowerCase(), prefix: Number(a.cidr?.split('/')[1] ?? 0) }))
    .sort((a, b) => (a.family === b.family ? a.address.localeCompare(b.address) : a.family < b.family ? -1 : 1));
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

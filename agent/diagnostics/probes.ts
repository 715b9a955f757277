// Default probes for diagnostics when no richer service is wired: the OS's own view
// of the network, lldpcli for LLDP neighbours, timedatectl or timesyncd's flag file
// for the clock. Commands and paths come from HostPaths.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { HostPaths } from '../../hal/host.js';
import type { NetworkMonitor } from '../../hal/net/types.js';
import type { LldpAgent } from '../../hal/net/lldpd.js';
import { parseNeighbors, type LldpNeighbor } from '../../hal/net/lldp-json.js';
import type { ClockSync, LldpSighting, NetInterface, NetworkProbe } from './types.js';

export type Exec = (cmd: string, args: string[], timeoutMs: number) => Promise<{ code: number; stdout: string; stderr: string }>;

export const execCommand: Exec = (cmd, args, timeoutMs) =>
  new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr: stderr || (err ? err.message : '') });
    });
  });

/** Non-loopback interfaces from os.networkInterfaces() (about 0.1 ms; no processes). */
export function osInterfaces(read: typeof os.networkInterfaces = os.networkInterfaces): NetInterface[] {
  return Object.entries(read()).flatMap(([name, addrs]) => {
    const list = (addrs ?? []).filter((a) => !a.internal);
    if (list.length === 0) return [];
    return [
      {
        name,
        // Node lists only interfaces that are up with an address.
        up: true,
        mac: list[0]!.mac && list[0]!.mac !== '00:00:00:00:00:00' ? list[0]!.mac : null,
        addresses: list.map((a) => ({ family: a.family, address: a.address, prefix: Number(a.cidr?.split('/')[1] ?? 0) })),
      },
    ];
  });
}

/** What diagnostics say about a neighbour table (lldpd's, parsed by hal/net/lldp-json). */
export function lldpSighting(n: readonly LldpNeighbor[]): LldpSighting {
  if (n.length === 0) return { seen: false, detail: 'no LLDP neighbour on any port' };
  const location = n.some((x) => x.med?.civic || x.med?.elin || x.med?.coordinates);
  return {
    seen: true,
    detail: `${n.map((x) => `${x.iface}: ${x.sysName ?? x.chassisId} port ${x.portId}`).join('; ')}${location ? ' (LLDP-MED location received)' : ''}`,
    location,
  };
}

export class HostNetworkProbe implements NetworkProbe {
  constructor(
    private readonly host: HostPaths,
    private readonly exec: Exec = execCommand,
  ) {}

  interfaces(): NetInterface[] {
    return osInterfaces();
  }

  async lldp(): Promise<LldpSighting> {
    const [cmd, ...pre] = [...this.host.commandPrefix, this.host.commands.lldpcli];
    const r = await this.exec(cmd!, [...pre, '-f', 'json0', 'show', 'neighbors', 'details'], 3000);
    if (r.code !== 0) return { seen: null, detail: `lldpcli failed (is lldpd running?): ${r.stderr.trim().split('\n')[0] ?? ''}` };
    try {
      return lldpSighting(parseNeighbors(JSON.parse(r.stdout)));
    } catch {
      return { seen: null, detail: 'lldpcli printed something that is not JSON' };
    }
  }
}

/** systemd's view first; timesyncd's flag file when there is no systemd bus. */
export async function clockSync(host: HostPaths, exec: Exec = execCommand): Promise<ClockSync> {
  const r = await exec(host.commands.timedatectl ?? 'timedatectl', ['show', '-p', 'NTPSynchronized', '--value'], 3000);
  const v = r.stdout.trim();
  if (r.code === 0 && (v === 'yes' || v === 'no')) {
    return { synchronized: v === 'yes', source: 'timedatectl', detail: `NTPSynchronized=${v}` };
  }
  const flag = path.join(host.run, 'systemd', 'timesync', 'synchronized');
  if (existsSync(flag)) return { synchronized: true, source: 'timesyncd', detail: `${flag} present` };
  return {
    synchronized: null,
    source: 'none',
    detail: `timedatectl unavailable (${(r.stderr || v).trim().split('\n')[0] || `exit ${r.code}`}) and no ${flag}`,
  };
}

/**
 * The network service's view (netlink snapshot, lldpd's neighbour table) when the agent
 * runs one; the host probe for whatever it does not cover. `parts` is read at check time.
 */
export function serviceNetworkProbe(
  parts: () => { network: NetworkMonitor; lldp: LldpAgent | null } | null,
  fallback: NetworkProbe,
): NetworkProbe {
  return {
    interfaces: () => {
      const s = parts()?.network.current();
      return s ? s.interfaces.map((i) => ({ name: i.name, up: i.up, mac: i.mac, addresses: i.addresses })) : fallback.interfaces();
    },
    gateway: () => {
      const s = parts()?.network.current();
      return s ? (s.gateway4?.address ?? s.gateway6?.address ?? null) : (fallback.gateway?.() ?? null);
    },
    lldp: async () => {
      const lldp = parts()?.lldp;
      return lldp ? lldpSighting(lldp.neighbors()) : fallback.lldp();
    },
  };
}

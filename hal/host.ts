// Every path on the host (/sys, /proc, /dev, /run) and every external command the
// agent uses comes from here, so tests and the simulator can point them elsewhere.
import { existsSync } from 'node:fs';
import path from 'node:path';

export interface HostPaths {
  sys: string;
  proc: string;
  dev: string;
  run: string;
  etcGroup: string;
  /** DNS servers of the phone (read for the network snapshot). */
  resolvConf: string;
  /** Where the DHCP client's hook hands over location options 99 and 123 (docs/network.md). */
  dhcpLocationDir: string;
  /** The system time zone's link (/etc/localtime); optional so literal HostPaths in tests stay valid. */
  localtime?: string;
  commands: {
    ip: string;
    lldpcli: string;
    lldpd: string;
    /** Clock synchronisation status for diagnostics (`timedatectl show -p NTPSynchronized`); optional so literal HostPaths in tests stay valid. */
    timedatectl?: string;
    /**
     * util-linux setpriv, which starts long-running helpers with a parent-death signal so they
     * die with the agent even on SIGKILL; empty or absent: helpers start without it.
     */
    setpriv?: string;
  };
  /**
   * Words put before every network command (ip, lldpd, lldpcli), e.g.
   * ['ip', 'netns', 'exec', 'ns1'] so tests run them inside a namespace. Empty on a phone.
   */
  commandPrefix: string[];
}

export function hostPaths(env: NodeJS.ProcessEnv = process.env): HostPaths {
  // E911_HOST_ROOT moves /sys, /proc, /dev and /run under one folder at once.
  const root = env.E911_HOST_ROOT ?? '/';
  return {
    sys: env.E911_SYS ?? path.join(root, 'sys'),
    proc: env.E911_PROC ?? path.join(root, 'proc'),
    dev: env.E911_DEV ?? path.join(root, 'dev'),
    run: env.E911_RUN ?? path.join(root, 'run'),
    etcGroup: env.E911_ETC_GROUP ?? path.join(root, 'etc', 'group'),
    resolvConf: env.E911_RESOLV_CONF ?? path.join(root, 'etc', 'resolv.conf'),
    dhcpLocationDir: env.E911_DHCP_LOCATION_DIR ?? path.join(env.E911_RUN ?? path.join(root, 'run'), 'e911-agent', 'dhcp'),
    localtime: env.E911_LOCALTIME ?? path.join(root, 'etc', 'localtime'),
    commands: {
      ip: env.E911_CMD_IP ?? 'ip',
      lldpcli: env.E911_CMD_LLDPCLI ?? 'lldpcli',
      lldpd: env.E911_CMD_LLDPD ?? 'lldpd',
      timedatectl: env.E911_CMD_TIMEDATECTL ?? 'timedatectl',
      // E911_CMD_SETPRIV='' turns it off; by default where util-linux puts it, if it is there.
      setpriv: env.E911_CMD_SETPRIV ?? ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p)) ?? '',
    },
    commandPrefix: (env.E911_CMD_PREFIX ?? '').split(' ').filter(Boolean),
  };
}

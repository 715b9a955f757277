// Reads `ip -o monitor link address route` text (iproute2 6.1 ignores -json on
// monitor, as measured): one line per netlink message. We only need to know
// which kind of change touched which interface; the snapshot reads the state.

export type MonitorLine =
  | { kind: 'link'; deleted: boolean; iface: string }
  | { kind: 'address'; deleted: boolean; iface: string; family: 'IPv4' | 'IPv6'; address: string; scope: string }
  | { kind: 'route'; deleted: boolean; isDefault: boolean; iface: string | null };

// "2: eth0@if2: <BROADCAST,...> mtu 1500 ..."   (link)
const LINK = /^(\d+):\s+([^:@\s]+)(?:@[^:\s]+)?:\s+</;
// "2: eth0    inet 10.0.0.5/24 scope global eth0\ ..."   (address)
const ADDR = /^(\d+):\s+(\S+)\s+(inet6?)\s+([0-9a-fA-F.:]+)(?:\/\d+)?(?:\s+peer\s+\S+)?.*?\bscope\s+(\S+)/;
const DEV = /\bdev\s+(\S+)/;

export function parseMonitorLine(raw: string): MonitorLine | null {
  let line = raw.trimEnd();
  // `ip -ts monitor` puts "[2026-...]" first; tolerate it so one parser serves both.
  if (line.startsWith('[')) line = line.slice(line.indexOf(']') + 1).trimStart();
  let deleted = false;
  if (line.startsWith('Deleted ')) {
    deleted = true;
    line = line.slice(8);
  }
  const addr = ADDR.exec(line);
  if (addr) {
    return {
      kind: 'address',
      deleted,
      iface: addr[2]!,
      family: addr[3] === 'inet6' ? 'IPv6' : 'IPv4',
      address: addr[4]!,
      scope: addr[5]!,
    };
  }
  const link = LINK.exec(line);
  if (link) return { kind: 'link', deleted, iface: link[2]! };
  // Routes: anything else that names a device. The local/broadcast/multicast
  // table entries come with every address change and add nothing.
  if (/^(local|broadcast|multicast|anycast|unreachable|prohibit|blackhole)\s/.test(line)) {
    return { kind: 'route', deleted, isDefault: false, iface: DEV.exec(line)?.[1] ?? null };
  }
  if (/^(default|[0-9a-fA-F.:]+(\/\d+)?)\s/.test(line)) {
    return { kind: 'route', deleted, isDefault: line.startsWith('default'), iface: DEV.exec(line)?.[1] ?? null };
  }
  return null;
}

/** Whether a monitor line can change the snapshot of the watched interfaces. */
export function isRelevant(m: MonitorLine, watches: (iface: string) => boolean): boolean {
  switch (m.kind) {
    case 'link':
      return watches(m.iface);
    case 'address':
      return watches(m.iface);
    case 'route':
      return m.isDefault && (m.iface === null || watches(m.iface));
  }
}

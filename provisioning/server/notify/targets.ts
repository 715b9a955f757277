// Where SMS and webhook POSTs may go. An administrator (or a stolen portal session) sets the
// URL; pointed at the server's own loopback, link-local or private addresses it would make the
// server POST (with its credentials and signatures) to services only the server can reach: the
// cloud metadata endpoint, the broker's or the database's admin port, another tenant's
// internals. So those addresses are refused unless the operator names them.
//
// The check runs where the connection is made: the socket's own DNS lookup is ours, so the
// address checked is the address connected to (no check-then-connect race for a name whose
// answer changes between the two, DNS rebinding). Saving a URL checks literal addresses only.
import dns from 'node:dns';
import net from 'node:net';
import type { LookupFunction } from 'node:net';
import { ConfigError, E911Error } from '../../common/errors.js';

/** Ranges that are not the public internet, with the reason shown to the administrator. */
const REFUSED: readonly [string, number, 'ipv4' | 'ipv6', string][] = [
  ['0.0.0.0', 8, 'ipv4', 'unspecified'],
  ['10.0.0.0', 8, 'ipv4', 'private'],
  ['100.64.0.0', 10, 'ipv4', 'shared (carrier-grade NAT)'],
  ['127.0.0.0', 8, 'ipv4', 'loopback'],
  ['169.254.0.0', 16, 'ipv4', 'link-local'],
  ['172.16.0.0', 12, 'ipv4', 'private'],
  ['192.0.0.0', 24, 'ipv4', 'reserved'],
  ['192.168.0.0', 16, 'ipv4', 'private'],
  ['198.18.0.0', 15, 'ipv4', 'reserved'],
  ['224.0.0.0', 4, 'ipv4', 'multicast'],
  ['240.0.0.0', 4, 'ipv4', 'reserved'],
  ['::', 128, 'ipv6', 'unspecified'],
  ['::1', 128, 'ipv6', 'loopback'],
  ['fc00::', 7, 'ipv6', 'private (unique local)'],
  ['fe80::', 10, 'ipv6', 'link-local'],
  ['fec0::', 10, 'ipv6', 'site-local'],
  ['ff00::', 8, 'ipv6', 'multicast'],
];

/** A notification target the policy refuses; retrying cannot help (the configuration must change). */
export class TargetRefusedError extends E911Error {
  constructor(message: string) {
    super('target-refused', message);
  }
}

/** The eight 16-bit groups of an IPv6 address (an IPv4 tail included), or null. */
function groups6(address: string): number[] | null {
  if (!net.isIPv6(address)) return null;
  let text = address.replace(/%.*$/, '');
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? (text.split('::') as [string, string]) : [text, null];
  const parse = (part: string) => (part ? part.split(':').map((g) => parseInt(g, 16)) : []);
  const h = parse(head);
  const t = tail === null ? [] : parse(tail);
  return tail === null ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
}

/**
 * The IPv4 address an IPv6 address carries to an IPv4 host, else null: IPv4-mapped
 * (::ffff:a.b.c.d, however written), NAT64 (64:ff9b::/96, RFC 6052) and 6to4 (2002::/16).
 */
function mappedV4(address: string): string | null {
  const g = groups6(address);
  if (g?.length !== 8) return null;
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return v4(g[6]!, g[7]!);
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) return v4(g[6]!, g[7]!);
  if (g[0] === 0x2002) return v4(g[1]!, g[2]!);
  return null;
}

export interface TargetPolicyOptions {
  /**
   * Host names (exact, any case) and addresses or networks (`10.1.2.3`, `10.0.0.0/8`,
   * `fd00::/8`) that SMS and webhook POSTs may reach even though they are not public.
   */
  allow?: readonly string[];
  /** Name resolution (getaddrinfo, as the socket would do it). */
  lookup?: typeof dns.lookup;
}

export class TargetPolicy {
  private readonly refused = new Map<string, net.BlockList>();
  private readonly allowedNets = new net.BlockList();
  private readonly allowedHosts = new Set<string>();
  private readonly resolve: typeof dns.lookup;

  constructor(opts: TargetPolicyOptions = {}) {
    for (const [addr, prefix, type, why] of REFUSED) {
      const list = this.refused.get(why) ?? new net.BlockList();
      list.addSubnet(addr, prefix, type);
      this.refused.set(why, list);
    }
    for (const raw of opts.allow ?? []) {
      const entry = raw.trim();
      const [addr, bits] = entry.split('/');
      const type = net.isIPv4(addr!) ? 'ipv4' : net.isIPv6(addr!) ? 'ipv6' : null;
      if (type) {
        const prefix = bits === undefined ? (type === 'ipv4' ? 32 : 128) : Number(bits);
        if (!Number.isInteger(prefix) || prefix < 0 || prefix > (type === 'ipv4' ? 32 : 128))
          throw new ConfigError([{ key: 'allowTargets', reason: `${raw}: bad prefix length` }]);
        this.allowedNets.addSubnet(addr!, prefix, type);
      } else if (bits === undefined && /^[a-z0-9.-]+$/i.test(entry)) this.allowedHosts.add(hostKey(entry));
      else throw new ConfigError([{ key: 'allowTargets', reason: `${raw}: give a host name, an address or a network (CIDR)` }]);
    }
    this.resolve = opts.lookup ?? dns.lookup;
  }

  /** Why this address may not be reached from `host`'s URL, or null when it may. */
  refusal(host: string, address: string): string | null {
    if (this.allowedHosts.has(hostKey(host))) return null;
    const v4 = mappedV4(address);
    const [addr, type] = v4 ? [v4, 'ipv4' as const] : [address, net.isIPv4(address) ? ('ipv4' as const) : ('ipv6' as const)];
    if (this.allowedNets.check(addr, type)) return null;
    for (const [why, list] of this.refused) {
      if (list.check(addr, type)) {
        const what = `${/^[aeiou]/.test(why) ? 'an' : 'a'} ${why} address`;
        // A name's address is not repeated: the answer reaches the API, and would map the
        // server's internal DNS for whoever sets the URL.
        return `${host} ${host === address ? 'is' : 'resolves to'} ${what}: notifications go to the server's own networks only where the operator allows it (--allow-notify-target)`;
      }
    }
    return null;
  }

  /** For a URL being saved: refused when its host is a literal address the policy refuses (names are checked when sending). */
  urlRefusal(url: string): string | null {
    let host: string;
    try {
      host = new URL(url).hostname.replace(/^\[|\]$/g, '');
    } catch {
      return null; // the URL schema reports it
    }
    return net.isIP(host) ? this.refusal(host, host) : null;
  }

  /**
   * A `lookup` for http.request / net.connect: resolves as the socket would, keeps only the
   * addresses the policy allows, and fails with TargetRefusedError when none is left.
   * (A literal address in the URL skips lookup: check it with refusal() before connecting.)
   */
  lookupFor(host: string): LookupFunction {
    return ((
      hostname: string,
      options: dns.LookupOptions,
      callback: (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void,
    ) => {
      this.resolve(hostname, { ...options, all: true }, (err, addresses) => {
        if (err) return callback(err, []);
        const list = addresses as dns.LookupAddress[];
        const ok = list.filter((a) => this.refusal(host, a.address) === null);
        if (ok.length === 0) {
          const first = list[0];
          return callback(
            new TargetRefusedError(first ? this.refusal(host, first.address)! : `${host} has no address`) as NodeJS.ErrnoException,
            [],
          );
        }
        if (options.all) return callback(null, ok);
        return callback(null, ok[0]!.address, ok[0]!.family);
      });
    }) as LookupFunction;
  }
}

function hostKey(host: string): string {
  return host.toLowerCase().replace(/\.$/, '');
}

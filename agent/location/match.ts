// The matching primitives: a location's rules (IP groups as CIDR words, switch
// ports) compiled once, and the phone's network facts parsed once, so a check
// is a few integer compares. Used by the assessment (recommend.ts) and by the
// compact view of a pushed document (locations-view.ts).
import { isIP } from 'node:net';
import type { RecommendedLocation } from '../../provisioning/protocol/locations.js';

export interface NetworkFacts {
  /** The phone's current addresses (global and link-local alike). */
  addresses: string[];
  /** LLDP neighbours: switch chassis id and port id. */
  switches: { chassisId: string; portId: string }[];
}

export type Words = [number, number, number, number];
export interface Rule {
  v6: boolean;
  words: Words;
  prefix: number;
}
export interface Rules {
  rules: Rule[];
  switches: { chassisId: string; portId: string | undefined }[];
}

/** Parses an IPv4 or IPv6 address (a zone id is dropped); null when it is neither. */
export function parseAddress(text: string): { v6: boolean; words: Words } | null {
  const a = text.trim().replace(/%.*$/, '');
  if (isIP(a) === 4) {
    const [b0, b1, b2, b3] = a.split('.').map(Number) as [number, number, number, number];
    return { v6: false, words: [0, 0, 0, ((b0 << 24) | (b1 << 16) | (b2 << 8) | b3) >>> 0] };
  }
  if (isIP(a) !== 6) return null;
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups.
  let s = a;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (v4) {
    const [, x0, x1, x2, x3] = v4.map(Number) as [number, number, number, number, number];
    s = `${s.slice(0, v4.index)}${((x0 << 8) | x1).toString(16)}:${((x2 << 8) | x3).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? (s.split('::') as [string, string]) : [s, null];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === null ? h : [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const g = groups.map((x) => parseInt(x, 16));
  return {
    v6: true,
    words: [((g[0]! << 16) | g[1]!) >>> 0, ((g[2]! << 16) | g[3]!) >>> 0, ((g[4]! << 16) | g[5]!) >>> 0, ((g[6]! << 16) | g[7]!) >>> 0],
  };
}

function inRule(r: Rule, w: Words): boolean {
  return inPrefix(r.v6, r.prefix, (i) => r.words[i]!, w);
}

/** Whether address `w` lies in the network whose i-th word `net(i)` gives, `prefix` bits long. */
export function inPrefix(v6: boolean, prefix: number, net: (i: number) => number, w: Words): boolean {
  let bits = prefix;
  for (let i = v6 ? 0 : 3; i < 4 && bits > 0; i++, bits -= 32) {
    const mask = bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
    if ((w[i]! & mask) >>> 0 !== (net(i) & mask) >>> 0) return false;
  }
  return true;
}

/** inPrefix with the network's four words at net[at..at+3] (the compact index's rules, read in place). */
export function inPrefixAt(v6: boolean, prefix: number, net: Uint32Array, at: number, w: Words): boolean {
  let bits = prefix;
  for (let i = v6 ? 0 : 3; i < 4 && bits > 0; i++, bits -= 32) {
    const mask = bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
    if ((w[i]! & mask) >>> 0 !== (net[at + i]! & mask) >>> 0) return false;
  }
  return true;
}

// Compiled once per location (a push of 5000 locations compiles as its parts arrive):
// node:net's BlockList cost about 20 us per check, 0.1-0.3 s for one assessment of 5000.
const compiled = new WeakMap<RecommendedLocation, Rules>();

/** The location's CIDRs and switch ports, ready to match. The server validates; a bad entry just matches nothing. */
export function prepareRules(loc: RecommendedLocation): Rules {
  let c = compiled.get(loc);
  if (c) return c;
  c = compileRules(loc);
  compiled.set(loc, c);
  return c;
}

/** prepareRules without the cache: for a location parsed only to be compiled (the compact index). */
export function compileRules(loc: RecommendedLocation): Rules {
  const rules: Rule[] = [];
  for (const cidr of loc.cidrs) {
    const [net, bits] = cidr.trim().split('/');
    const addr = parseAddress(net ?? '');
    if (!addr || net!.includes('%')) continue;
    const max = addr.v6 ? 128 : 32;
    const prefix = bits === undefined ? max : Number(bits);
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (bits !== undefined && !/^\d+$/.test(bits))) continue;
    rules.push({ v6: addr.v6, words: addr.words, prefix });
  }
  const switches = (loc.switchPorts ?? []).map((sp) => ({
    chassisId: norm(sp.chassisId),
    portId: sp.portId === undefined ? undefined : norm(sp.portId),
  }));
  return { rules, switches };
}

const norm = (s: string) => s.trim().toLowerCase();

export interface ParsedFacts {
  addresses: { v6: boolean; words: Words }[];
  switches: { chassisId: string; portId: string }[];
}

export function parseFacts(facts: NetworkFacts): ParsedFacts {
  return {
    addresses: facts.addresses.flatMap((a) => parseAddress(a) ?? []),
    switches: facts.switches.map((s) => ({ chassisId: norm(s.chassisId), portId: norm(s.portId) })),
  };
}

export function matchesParsed(loc: RecommendedLocation, facts: ParsedFacts): boolean {
  const { rules, switches } = prepareRules(loc);
  for (const a of facts.addresses) for (const r of rules) if (r.v6 === a.v6 && inRule(r, a.words)) return true;
  for (const sp of switches) {
    for (const s of facts.switches) if (sp.chassisId === s.chassisId && (sp.portId === undefined || sp.portId === s.portId)) return true;
  }
  return false;
}

export function matchesNetwork(loc: RecommendedLocation, facts: NetworkFacts): boolean {
  return matchesParsed(loc, parseFacts(facts));
}

export function hasRules(loc: RecommendedLocation): boolean {
  return loc.cidrs.length > 0 || (loc.switchPorts?.length ?? 0) > 0;
}

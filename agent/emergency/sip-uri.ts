// SIP URI helpers for the emergency path: a configured route parsed once, its
// host replaced by an address resolved ahead of time, the Request-URI of a call
// on it, and the host and address forms the PSAP-callback check compares.
import { isIP } from 'node:net';

export interface RouteTarget {
  /** 'primary' | 'secondary' | 'fallback' */
  name: RouteName;
  /** The configured route, e.g. sip:192.0.2.10:5060;transport=tcp */
  uri: string;
  /** Loose-route proxy for the route's account: <route>;lr */
  proxy: string;
  /** host[:port] part of the route URI */
  hostPort: string;
  host: string;
  /** ;params of the route URI (transport=...) */
  params: string;
}

export type RouteName = 'primary' | 'secondary' | 'fallback';

const ROUTE_URI = /^(sips?):([^;?\s<>]+)((?:;[^?\s<>]*)?)$/i;

/** Parses a configured route; throws on something that is not a SIP URI without a user part. */
export function parseRoute(name: RouteName, uri: string): RouteTarget {
  const m = ROUTE_URI.exec(uri.trim());
  if (!m) throw new Error(`emergency route ${name} is not a SIP URI: ${uri}`);
  const [, scheme, hostPortRaw, params] = m as unknown as [string, string, string, string];
  const hostPort = hostPortRaw.includes('@') ? hostPortRaw.slice(hostPortRaw.indexOf('@') + 1) : hostPortRaw;
  const host = hostPort.startsWith('[') ? hostPort.slice(0, hostPort.indexOf(']') + 1) : hostPort.split(':')[0]!;
  const lr = /;lr(\W|$)/i.test(params) ? '' : ';lr';
  return { name, uri: uri.trim(), proxy: `${scheme}:${hostPort}${params}${lr}`, hostPort, host, params };
}

/** Whether a route names its host by address already (nothing to resolve), or must keep its name (TLS checks it). */
export function needsResolution(route: RouteTarget): boolean {
  const h = route.host.replace(/^\[|\]$/g, '');
  if (isIP(h) !== 0) return false;
  return !(route.uri.toLowerCase().startsWith('sips:') || /;transport=tls/i.test(route.params));
}

/** The route with its host replaced by a resolved address, so no DNS lookup happens at dial time (nothing slow between the digit and the INVITE). */
export function withAddress(route: RouteTarget, address: string): RouteTarget {
  const port = route.hostPort.slice(route.host.length); // ':5060' or ''
  const host = isIP(address) === 6 ? `[${address}]` : address;
  const scheme = route.uri.toLowerCase().startsWith('sips:') ? 'sips' : 'sip';
  const hostPort = `${host}${port}`;
  const lr = /;lr(\W|$)/i.test(route.params) ? '' : ';lr';
  return { ...route, host, hostPort, proxy: `${scheme}:${hostPort}${route.params}${lr}` };
}

/** The Request-URI/To of an emergency call on a route: sip:911@route, or the service URN. */
export function emergencyTarget(route: RouteTarget, number: string, urn: string | undefined): string {
  if (urn) return `<${urn}>`;
  const scheme = route.uri.toLowerCase().startsWith('sips:') ? 'sips' : 'sip';
  return `${scheme}:${number}@${route.hostPort}${route.params}`;
}

/** A route the phone reaches over TLS (sips:, ;transport=tls): kept by name, the certificate is checked against it. */
export function isTlsRoute(r: RouteTarget): boolean {
  return r.uri.toLowerCase().startsWith('sips:') || /;transport=tls/i.test(r.params);
}

/** host[:port] of a SIP URI or name-addr, or null. */
export function domainOf(uri: string): string | null {
  const m = /sips?:(?:[^@;>\s]*@)?(\[[^\]]+\](?::\d+)?|[^;>\s?]+)/i.exec(uri);
  return m ? m[1]! : null;
}

export function normHost(h: string): string {
  return h.replace(/^\[|\]$/g, '').toLowerCase();
}

/** An address as sockets print it: no brackets, lower case, IPv4-mapped IPv6 as IPv4. */
export function normAddress(a: string): string {
  return normHost(a).replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
}

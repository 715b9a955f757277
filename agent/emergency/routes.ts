// The emergency routes and their SIP accounts, made ready before any call: route
// names resolved ahead of time (never at dial time), one registration-less account
// per route on the route's own transport, the voice stack's transports (UDP and TCP
// always, TLS when configured), and which routes a PSAP callback may come from.
import dns from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Logger } from '../../provisioning/common/log.js';
import { transportOf, type TransportKind } from '../../hal/voice/types.js';
import type { AccountId, IncomingCallEvent, VoiceStack, VoiceStartOptions } from '../../hal/voice/types.js';
import type { Timers } from './dial-plan.js';
import type { EmergencyConfig, SipConfig } from './config.js';
import {
  isTlsRoute,
  needsResolution,
  normAddress,
  normHost,
  parseRoute,
  withAddress,
  type RouteName,
  type RouteTarget,
} from './sip-uri.js';

const ROUTE_NAMES: RouteName[] = ['primary', 'secondary', 'fallback'];
const INCOMING_HEADERS = ['From', 'To', 'Call-ID', 'Contact'];

/** What every route account shares: the phone's URI, its credentials, the account's transport. */
export interface RouteAccountBase {
  uri: string;
  credentials: { realm: string; username: string; password: string }[] | undefined;
  transportId: number | undefined;
}

export interface EmergencyRoutesDeps {
  emergency: EmergencyConfig;
  sip: SipConfig;
  log: Logger;
  timers: Timers;
  /** Resolves a route's host name ahead of time (default dns.promises.lookup): never at dial time. */
  lookup?: (host: string) => Promise<string>;
  /** How often route names are resolved again (default 5 minutes). */
  resolveEveryMs?: number;
}

export class EmergencyRoutes {
  /** The routes as configured (names unresolved). */
  readonly configured: RouteTarget[];
  /** The routes as calls use them (names resolved where they can be). */
  current: RouteTarget[];
  /** Each route's account: the call path reads this map directly. */
  readonly accounts = new Map<RouteName, AccountId>();
  private transportIds = new Map<string, number>();
  /** Addresses of TLS routes (kept by name for the certificate check), for the callback rule only. */
  private readonly tlsAddresses = new Map<RouteName, string>();
  private base: RouteAccountBase | null = null;
  private timer: unknown = null;

  constructor(private readonly deps: EmergencyRoutesDeps) {
    const r = deps.emergency.routes;
    // With no emergency route configured, 911 still goes out: to the registrar.
    const configured = ROUTE_NAMES.flatMap((n) => (r[n] ? [parseRoute(n, r[n]!)] : []));
    const registrar = deps.sip.account?.registrar;
    this.configured = configured.length > 0 || !registrar ? configured : [parseRoute('primary', registrar)];
    this.current = [...this.configured];
  }

  /** Once the voice stack runs: resolves the routes and makes their accounts. */
  async open(voice: VoiceStack, transports: readonly { kind: string; id: number }[], base: RouteAccountBase): Promise<void> {
    this.transportIds = new Map(transports.map((t) => [t.kind, t.id]));
    this.base = base;
    this.current = await this.resolve();
    for (const route of this.current) this.addAccount(voice, route);
  }

  /** Registration-less account for a route, made before any call: its route set sends the INVITE to the route whatever the target (a URN included). */
  private addAccount(voice: VoiceStack, route: RouteTarget): void {
    const b = this.base!;
    this.accounts.set(
      route.name,
      voice.addAccount({
        uri: b.uri,
        proxies: [route.proxy],
        register: false,
        ...(b.credentials ? { credentials: b.credentials } : {}),
        // The route's own transport (;transport=tcp, sips:), else the account's.
        ...((this.transportIds.get(transportOf(route.uri)) ?? b.transportId) !== undefined
          ? { transportId: (this.transportIds.get(transportOf(route.uri)) ?? b.transportId)! }
          : {}),
      }),
    );
  }

  /** The configured routes with names resolved; a name that does not resolve keeps its last address. */
  async resolve(): Promise<RouteTarget[]> {
    const lookup = this.deps.lookup ?? (async (host: string) => (await dns.lookup(host)).address);
    return Promise.all(
      this.configured.map(async (r) => {
        if (isTlsRoute(r) && isIP(normHost(r.host)) === 0) {
          // Kept by name (the certificate is checked against it); its address only tells a PSAP callback.
          await lookup(r.host).then(
            (a) => this.tlsAddresses.set(r.name, a),
            (err) =>
              this.deps.log.warn(
                { err, route: r.name, host: r.host },
                'cannot resolve the TLS emergency route: its callbacks are not recognised until it resolves',
              ),
          );
          return r;
        }
        if (!needsResolution(r)) return r;
        try {
          return withAddress(r, await lookup(r.host));
        } catch (err) {
          const known = this.current.find((x) => x.name === r.name);
          this.deps.log.warn(
            { err, route: r.name, host: r.host },
            known !== r
              ? 'cannot resolve the emergency route: keeping its last address'
              : 'cannot resolve the emergency route: pjsip will resolve it at call time',
          );
          return known ?? r;
        }
      }),
    );
  }

  /** Takes freshly resolved routes: a changed address gets a new route account. Returns whether any changed. */
  adopt(voice: VoiceStack, fresh: RouteTarget[]): boolean {
    let changed = false;
    for (const r of fresh) {
      const old = this.current.find((x) => x.name === r.name);
      if (old && old.proxy === r.proxy) continue;
      changed = true;
      const id = this.accounts.get(r.name);
      if (id !== undefined) {
        try {
          voice.removeAccount(id);
        } catch {
          // already gone
        }
      }
      this.addAccount(voice, r);
      this.deps.log.info({ route: r.name, proxy: r.proxy }, 'emergency route address changed');
    }
    this.current = fresh;
    return changed;
  }

  /** Runs refresh after the resolve interval, when some route has a name to resolve. */
  schedule(refresh: () => void): void {
    if (!this.configured.some(needsResolution)) return;
    this.timer = this.deps.timers.setTimeout(
      () => {
        this.timer = null;
        refresh();
      },
      this.deps.resolveEveryMs ?? 5 * 60_000,
    );
    (this.timer as { unref?: () => void }).unref?.();
  }

  cancel(): void {
    if (this.timer !== null) this.deps.timers.clearTimeout(this.timer);
    this.timer = null;
  }

  /**
   * The PSAP calling back: the INVITE's packet came from an emergency route's
   * address (as resolved ahead of time), or over a TLS connection the phone
   * opened to a TLS route with its certificate checked. Via, From and Contact
   * are written by whoever sends the INVITE and prove nothing.
   */
  isFromRoute(e: IncomingCallEvent): boolean {
    if (!e.sourceAddress) return false;
    const source = normAddress(e.sourceAddress);
    return this.current.some((r) => {
      if (isTlsRoute(r))
        return e.transport === 'tls' && e.tlsVerified === true && normAddress(this.tlsAddresses.get(r.name) ?? '') === source;
      return isIP(normHost(r.host)) !== 0 && normAddress(r.host) === source;
    });
  }
}

/** The voice stack's start options: transports, RTP, sound, and room for an emergency call. */
export function voiceOptions(sip: SipConfig, agentVersion: string): VoiceStartOptions {
  return {
    // The account's transport first; UDP and TCP always (a route may ask for either), TLS when configured.
    transports: transportKinds(sip).map((kind) => ({
      kind,
      port: kind === 'tls' ? (sip.port === 0 ? 0 : sip.port + 1) : sip.port,
      ...(sip.bindAddress ? { boundAddress: sip.bindAddress } : {}),
      ...(sip.publicAddress ? { publicAddress: sip.publicAddress } : {}),
      ...(kind === 'tls' && sip.tls ? { tls: sip.tls } : {}),
    })),
    rtp: {
      port: sip.rtpPort,
      ...(sip.bindAddress ? { boundAddress: sip.bindAddress } : {}),
      ...(sip.publicAddress ? { publicAddress: sip.publicAddress } : {}),
    },
    sound: sip.sound,
    autoAnswer: false,
    incomingHeaders: INCOMING_HEADERS,
    userAgent: `e911-agent/${agentVersion}`,
    // Headroom above the phone's own limit: an emergency call always finds a slot.
    maxCalls: sip.maxCalls + 2,
    logLevel: sip.logLevel,
  };
}

function transportKinds(sip: SipConfig): TransportKind[] {
  const kinds: TransportKind[] = [sip.transport];
  for (const k of ['udp', 'tcp'] as const) if (!kinds.includes(k)) kinds.push(k);
  if (sip.tls && !kinds.includes('tls')) kinds.push('tls');
  return kinds;
}

// Who a request is: a Bearer token or the portal's session cookie, checked on the route the
// router matched; and the failed-login limiter of the login route.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SESSION_COOKIE, sessionTimes, type ApiDeps } from './deps.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The request's Origin is this server's own (as the browser addressed it) or an allowed one. */
function originAllowed(req: FastifyRequest, allowed: readonly string[]): boolean {
  const origin = req.headers.origin;
  // Browsers send Origin with every POST, PUT, PATCH and DELETE; without it the request
  // did not come from a page we can vouch for.
  if (!origin || origin === 'null') return false;
  const own = `${req.protocol}://${req.headers.host ?? ''}`.toLowerCase();
  return origin.toLowerCase() === own || allowed.some((a) => a.toLowerCase() === origin.toLowerCase());
}

export function cookie(req: FastifyRequest, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined; // a malformed escape is no session
      }
    }
  }
  return undefined;
}

/**
 * Failed logins per client address in a sliding window. The tokens are 256 random bits, so
 * this is not what keeps them secret: it keeps a guessing client from costing CPU and log.
 */
export class LoginLimiter {
  private readonly failures = new Map<string, number[]>();
  constructor(private readonly opts: { max: number; windowMs: number }) {}

  /** Milliseconds until this address may try again (0: now). */
  blockedFor(ip: string): number {
    const recent = this.recent(ip);
    return recent.length >= this.opts.max ? recent[0]! + this.opts.windowMs - Date.now() : 0;
  }

  failed(ip: string): void {
    const recent = this.recent(ip);
    recent.push(Date.now());
    this.failures.set(ip, recent);
    // Bounded: addresses whose failures have all aged out are forgotten.
    if (this.failures.size > 10_000) for (const key of this.failures.keys()) if (this.recent(key).length === 0) this.failures.delete(key);
  }

  succeeded(ip: string): void {
    this.failures.delete(ip);
  }

  private recent(ip: string): number[] {
    const since = Date.now() - this.opts.windowMs;
    return (this.failures.get(ip) ?? []).filter((t) => t > since);
  }
}

/**
 * Deny by default, decided on the route the router matched, never on the URL's text: the
 * router decodes percent-escapes, accepts absolute-form targets and folds case, so a prefix
 * test on req.url let `/%61pi/users` and `http://x/api/users` in without a token.
 */
export function addAuthHook(app: FastifyInstance, deps: ApiDeps): void {
  const { records, log } = deps;
  const { idleMs } = sessionTimes(deps);
  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.config?.public === true && req.routeOptions.url !== undefined) return;
    const unauthorized = () =>
      reply
        .code(401)
        .header('www-authenticate', 'Bearer')
        .send({ error: 'unauthorized', message: 'a valid API token or portal session is required' });
    const auth = req.headers.authorization;
    if (auth !== undefined) {
      // A Bearer token: programs and the CLI. A browser never sends this header by itself,
      // so these requests need no Origin check.
      const token = auth.startsWith('Bearer ') ? auth.slice(7).trim() : '';
      const who = token ? await records.verifyToken(token) : null;
      if (!who) return unauthorized();
      req.actor = `token:${who.name}`;
      req.accountId = who.accountId;
      req.ownAccountId = who.ownAccountId;
      req.provider = who.provider;
      req.stillAuthorized = async () => (await records.verifyToken(token)) !== null;
      return providerOnly(req, reply);
    }
    const sid = cookie(req, SESSION_COOKIE);
    const who = sid ? await records.useSession(sid, idleMs) : null;
    if (!who) return unauthorized();
    // The browser sends the cookie with any request to this host, whoever made it: a change
    // must come from a page of this origin (SameSite=Strict is the first line, this the second).
    if (!SAFE_METHODS.has(req.method) && !originAllowed(req, deps.allowedOrigins ?? [])) {
      log.warn({ origin: req.headers.origin ?? null, method: req.method, url: req.url }, 'cross-origin change refused');
      return reply
        .code(403)
        .send({ error: 'forbidden', message: "a change made with the portal session must come from the portal's own origin" });
    }
    req.actor = `token:${who.name}`;
    req.accountId = who.accountId;
    req.ownAccountId = who.ownAccountId;
    req.provider = who.provider;
    req.stillAuthorized = async () => (await records.useSession(sid!, idleMs)) !== null;
    return providerOnly(req, reply);
  });
}

/** A route for the deployment's provider (accounts, the broker's files of every account's phones): 403 for an account's admin. */
function providerOnly(req: FastifyRequest, reply: FastifyReply) {
  if (req.routeOptions.config?.provider !== true || req.provider) return;
  return reply.code(403).send({ error: 'forbidden', message: 'this needs a provider token' });
}

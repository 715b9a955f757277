// Health, the OpenAPI document, and portal login and logout.
import { z } from 'zod';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { PUBLIC_ROUTE } from '../public.js';
import { API_VERSION, BODY_LIMITS, SESSION_COOKIE, sessionTimes, type ApiDeps } from '../deps.js';
import { cookie, LoginLimiter } from '../auth.js';
import { tag } from '../schemas.js';

export const metaRoutes: FastifyPluginAsyncZod<ApiDeps> = async (app, deps) => {
  const { records, log } = deps;
  const { absoluteMs } = sessionTimes(deps);
  const logins = new LoginLimiter(deps.loginLimit ?? { max: 10, windowMs: 15 * 60_000 });
  // Secure whenever the browser reached us over TLS (ours, or a proxy's that says so).
  const secureCookie = (req: FastifyRequest) => deps.secureCookies === true || deps.tls !== undefined || req.protocol === 'https';

  app.get(
    '/api/health',
    { ...PUBLIC_ROUTE, schema: { ...tag('meta'), summary: 'Liveness and the MQTT link state (no token needed)', security: [] } },
    async () => ({
      ok: true,
      mqtt: deps.mqttConnected() ? 'connected' : 'disconnected',
      schemaVersion: await records.schemaVersion(),
      version: API_VERSION,
    }),
  );
  app.get('/api/openapi.json', { ...PUBLIC_ROUTE, schema: { hide: true } }, async () => app.swagger());

  app.post(
    '/api/session',
    {
      ...PUBLIC_ROUTE,
      bodyLimit: BODY_LIMITS.login,
      schema: {
        ...tag('meta'),
        summary: 'Log in with a token: sets an HttpOnly session cookie for the portal',
        security: [],
        body: z.object({ token: z.string() }),
      },
    },
    async (req, reply) => {
      const wait = logins.blockedFor(req.ip);
      if (wait > 0) {
        log.warn({ ip: req.ip }, 'login refused: too many failed attempts');
        return reply
          .code(429)
          .header('retry-after', String(Math.ceil(wait / 1000)))
          .send({ error: 'too-many-requests', message: 'too many failed logins from this address; try again later' });
      }
      const who = await records.verifyToken(req.body.token);
      if (!who) {
        logins.failed(req.ip);
        log.warn({ ip: req.ip }, 'login failed');
        return reply.code(401).send({ error: 'unauthorized', message: 'unknown or revoked token' });
      }
      logins.succeeded(req.ip);
      // The cookie carries a session of its own, never the long-lived token: it expires, and
      // logging out (or revoking the token) ends it.
      const sid = await records.login(who, absoluteMs, req.ip);
      reply.header(
        'set-cookie',
        `${SESSION_COOKIE}=${sid}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${Math.floor(absoluteMs / 1000)}${secureCookie(req) ? '; Secure' : ''}`,
      );
      return { ok: true, name: who.name };
    },
  );
  app.delete(
    '/api/session',
    { ...PUBLIC_ROUTE, schema: { ...tag('meta'), summary: 'Log out: ends the session and clears its cookie', security: [] } },
    async (req, reply) => {
      const sid = cookie(req, SESSION_COOKIE);
      if (sid) await records.logout(sid);
      reply.header('set-cookie', `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0${secureCookie(req) ? '; Secure' : ''}`);
      return { ok: true };
    },
  );
};

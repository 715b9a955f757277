// The admin HTTP API (fastify): token authentication (a Bearer header, or a
// session cookie for the browser portal), one route per administrative
// operation, an OpenAPI 3.1 document at /api/openapi.json, and a server-sent
// event stream of live happenings at /api/stream.
import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import { z } from 'zod';
import type { Logger } from 'pino';
import { E911Error } from '../../common/errors.js';
import { PUBLIC_ROUTE } from './public.js';
import { NotFoundError, ValidationError, PreconditionError } from '../errors.js';
import type { AdminService } from '../service.js';
import type { BulkService, CsvReport } from '../bulk.js';
import type { Repo, NotificationStatus, StoredEvent } from '../db/repo.js';
import type { Bus, BusEvents } from '../bus.js';
import { NOTIFIED_EVENT_TYPES, type Notifier } from '../notify/notifier.js';
import { emergencyFacts, type EmergencyFacts } from '../notify/message.js';
import type { SignedAddress } from '../../protocol/messages.js';
import {
  accountPatchSchema,
  bulkEmailsSchema,
  locationFieldsSchema,
  locationInputSchema,
  notificationSettingsSchema,
  userInputSchema,
} from '../validation.js';

export const SESSION_COOKIE = 'e911_session';

/**
 * Request body limits. Small by default (an unauthenticated client can make the server read a
 * body before it is refused); routes whose schema allows more get a bound sized from it.
 */
export const BODY_LIMITS = {
  /** Everything not listed below. */
  default: 64 * 1024,
  /** Login: a token. */
  login: 4 * 1024,
  /** A location: up to 64 IP groups of 64 CIDRs and 256 switch ports. */
  location: 512 * 1024,
  /** Bulk email lists: up to 100,000 user ids. */
  bulk: 1024 * 1024,
} as const;
export const API_VERSION = '1.0.0';

export interface ApiDeps {
  repo: Repo;
  service: AdminService;
  bulk: BulkService;
  notifier: Notifier;
  bus: Bus;
  log: Logger;
  /** Whether the MQTT link is up, for /api/health. */
  mqttConnected: () => boolean;
  /** The Mosquitto files for the current phones. */
  brokerConfig: () => { passwd: string; acl: string; conf: string };
  /** Serve the portal's cookie as Secure even over plain HTTP (TLS terminated by a proxy in front). */
  secureCookies?: boolean;
  /** Serve HTTPS with this key and certificate (PEM); session cookies are then Secure. */
  tls?: { key: string | Buffer; cert: string | Buffer };
  /** Portal sessions: absolute lifetime and idle timeout (ms). Default 12 h and 30 min. */
  session?: { absoluteMs?: number; idleMs?: number };
  /**
   * Origins (scheme://host[:port]) allowed to make cookie-authenticated changes besides the
   * API's own (a proxy's public name). Bearer-token requests are not checked: a browser never
   * adds that header by itself.
   */
  allowedOrigins?: readonly string[];
  /** Failed logins allowed per client address within the window before 429. Default 10 per 15 min. */
  loginLimit?: { max: number; windowMs: number };
  /** How often an open event stream keeps alive and checks its token is still valid (ms). */
  streamCheckMs?: number;
}

declare module 'fastify' {
  interface FastifyInstance {
    routeTable: readonly { method: string; url: string; public: boolean }[];
  }
  interface FastifyRequest {
    actor: string;
    /** Whether the credentials this request came with are still good (the event stream asks again while open). */
    stillAuthorized: () => boolean;
  }
}

/** JSON Schema of a zod schema, for the OpenAPI document (validation itself is zod's, in the service). */
function js(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

const idParam = { type: 'object', properties: { id: { type: 'integer', minimum: 1 } }, required: ['id'] } as const;
const deviceParam = { type: 'object', properties: { deviceId: { type: 'string' } }, required: ['deviceId'] } as const;
const errorSchema = {
  type: 'object',
  properties: {
    error: { type: 'string', description: 'invalid | not-found | conflict | precondition | too-large | unauthorized | internal' },
    message: { type: 'string' },
    issues: { type: 'array', items: { type: 'object', properties: { field: { type: 'string' }, reason: { type: 'string' } } } },
    missing: { type: 'array', items: { type: 'string' } },
  },
};
const jobSchema = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    kind: { type: 'string', enum: ['bulk-emails', 'csv-apply'] },
    status: { type: 'string', enum: ['queued', 'running', 'done', 'failed'] },
    total: { type: 'integer' },
    done: { type: 'integer' },
    result: { type: 'object', properties: { updated: { type: 'integer' }, unchanged: { type: 'integer' }, missing: { type: 'integer' } } },
    error: { type: ['string', 'null'] },
    createdAt: { type: 'string' },
    startedAt: { type: ['string', 'null'] },
    finishedAt: { type: ['string', 'null'] },
  },
};
const csvReportSchema = {
  type: 'object',
  properties: {
    uploadId: { type: ['string', 'null'] },
    rows: { type: 'integer' },
    changes: { type: 'integer' },
    unchanged: { type: 'integer' },
    errorCount: { type: 'integer' },
    errors: { type: 'array', items: { type: 'object', properties: { row: { type: 'integer' }, column: { type: 'string' }, reason: { type: 'string' } } } },
  },
};
const E: Record<number, object> = { 400: errorSchema, 401: errorSchema, 404: errorSchema, 409: errorSchema };

function statusOf(err: E911Error): number {
  switch (err.code) {
    case 'invalid':
      return 400;
    case 'not-found':
      return 404;
    case 'conflict':
    case 'precondition':
      return 409;
    case 'too-large':
      return 413;
    default:
      return 500;
  }
}

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

/**
 * Failed logins per client address in a sliding window. The tokens are 256 random bits, so
 * this is not what keeps them secret: it keeps a guessing client from costing CPU and log.
 */
class LoginLimiter {
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

function cookie(req: FastifyRequest, name: string): string | undefined {
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

const intQuery = (v: unknown): number | undefined => {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new ValidationError([{ field: 'query', reason: `${JSON.stringify(v)} is not a whole number` }]);
  return n;
};


export async function buildApi(deps: ApiDeps) {
  const { repo, service, bulk, notifier, bus, log } = deps;
  const absoluteMs = deps.session?.absoluteMs ?? 12 * 3600_000;
  const idleMs = deps.session?.idleMs ?? 30 * 60_000;
  const logins = new LoginLimiter(deps.loginLimit ?? { max: 10, windowMs: 15 * 60_000 });
  const app = Fastify({
    ...(deps.tls ? { https: { key: deps.tls.key, cert: deps.tls.cert } } : {}),
    // Errors are logged by the error handler below; requests are not logged one by one.
    logger: false,
    bodyLimit: BODY_LIMITS.default,
    // Route schemas document the API; zod in the service validates (one set of rules, one error shape).
    ajv: { customOptions: { strict: false } },
  });
  app.setValidatorCompiler(() => (data) => ({ value: data }));
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  // The route table as the router holds it, for the attack suite (every route, not a hand-kept list).
  const routeTable: { method: string; url: string; public: boolean }[] = [];
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) routeTable.push({ method, url: r.url, public: r.config?.public === true });
  });
  app.decorate('routeTable', routeTable);
  app.decorateRequest('actor', '');
  app.decorateRequest('stillAuthorized', () => false);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'e911 provisioning server admin API',
        version: API_VERSION,
        description:
          'Locations, users and their phones, signed address pushes, bulk notification lists with CSV, Kari\'s Law notifications, and the audit log. ' +
          'Authenticate with `Authorization: Bearer <token>` (tokens come from `e911-server token create`), or POST /api/session to get a session cookie.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' }, session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE } } },
      security: [{ bearer: [] }, { session: [] }],
    },
  });

  app.addContentTypeParser(['text/csv', 'application/csv', 'text/plain', 'application/octet-stream'], { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err, req, reply) => {
    if (err instanceof E911Error) {
      const status = statusOf(err);
      return reply.code(status).send({
        error: err.code,
        message: err.message,
        ...(err instanceof ValidationError ? { issues: err.issues } : {}),
        ...(err instanceof PreconditionError ? { missing: err.missing } : {}),
      });
    }
    const e = err as { code?: string; statusCode?: number; message: string };
    if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      const limit = req.routeOptions.bodyLimit ?? BODY_LIMITS.default;
      const size = limit >= 1024 * 1024 ? `${(limit / 1024 / 1024).toFixed(0)} MiB` : `${(limit / 1024).toFixed(0)} KiB`;
      return reply.code(413).send({ error: 'too-large', message: `the request body is larger than the ${size} limit` });
    }
    if (e.statusCode && e.statusCode < 500) return reply.code(e.statusCode).send({ error: 'invalid', message: e.message });
    log.error({ err, url: req.url }, 'request failed');
    return reply.code(500).send({ error: 'internal', message: 'internal error (see the server log)' });
  });

  // Deny by default, decided on the route the router matched, never on the URL's text: the
  // router decodes percent-escapes, accepts absolute-form targets and folds case, so a prefix
  // test on req.url let `/%61pi/users` and `http://x/api/users` in without a token.
  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.config?.public === true && req.routeOptions.url !== undefined) return;
    const unauthorized = () => reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'unauthorized', message: 'a valid API token or portal session is required' });
    const auth = req.headers.authorization;
    if (auth !== undefined) {
      // A Bearer token: programs and the CLI. A browser never sends this header by itself,
      // so these requests need no Origin check.
      const token = auth.startsWith('Bearer ') ? auth.slice(7).trim() : '';
      const who = token ? repo.verifyToken(token) : null;
      if (!who) return unauthorized();
      req.actor = `token:${who.name}`;
      req.stillAuthorized = () => repo.verifyToken(token) !== null;
      return;
    }
    const sid = cookie(req, SESSION_COOKIE);
    const who = sid ? repo.useSession(sid, idleMs) : null;
    if (!who) return unauthorized();
    // The browser sends the cookie with any request to this host, whoever made it: a change
    // must come from a page of this origin (SameSite=Strict is the first line, this the second).
    if (!SAFE_METHODS.has(req.method) && !originAllowed(req, deps.allowedOrigins ?? [])) {
      log.warn({ origin: req.headers.origin ?? null, method: req.method, url: req.url }, 'cross-origin change refused');
      return reply.code(403).send({ error: 'forbidden', message: 'a change made with the portal session must come from the portal\'s own origin' });
    }
    req.actor = `token:${who.name}`;
    req.stillAuthorized = () => repo.useSession(sid!, idleMs) !== null;
  });

  const tag = (t: string) => ({ tags: [t] });
  // Secure whenever the browser reached us over TLS (ours, or a proxy's that says so).
  const secureCookie = (req: FastifyRequest) => deps.secureCookies === true || deps.tls !== undefined || req.protocol === 'https';

  // ---- meta ----
  app.get('/api/health', { ...PUBLIC_ROUTE, schema: { ...tag('meta'), summary: 'Liveness and the MQTT link state (no token needed)', security: [] } }, async () => ({
    ok: true,
    mqtt: deps.mqttConnected() ? 'connected' : 'disconnected',
    schemaVersion: repo.schemaVersion(),
    version: API_VERSION,
  }));
  app.get('/api/openapi.json', { ...PUBLIC_ROUTE, schema: { hide: true } }, async () => app.swagger());

  app.post(
    '/api/session',
    { ...PUBLIC_ROUTE, bodyLimit: BODY_LIMITS.login, schema: { ...tag('meta'), summary: 'Log in with a token: sets an HttpOnly session cookie for the portal', security: [], body: { type: 'object', properties: { token: { type: 'string' } }, required: ['token'] } } },
    async (req, reply) => {
      const wait = logins.blockedFor(req.ip);
      if (wait > 0) {
        log.warn({ ip: req.ip }, 'login refused: too many failed attempts');
        return reply.code(429).header('retry-after', String(Math.ceil(wait / 1000))).send({ error: 'too-many-requests', message: 'too many failed logins from this address; try again later' });
      }
      const token = (req.body as { token?: unknown } | null)?.token;
      const who = typeof token === 'string' ? repo.verifyToken(token) : null;
      if (!who) {
        logins.failed(req.ip);
        log.warn({ ip: req.ip }, 'login failed');
        return reply.code(401).send({ error: 'unauthorized', message: 'unknown or revoked token' });
      }
      logins.succeeded(req.ip);
      // The cookie carries a session of its own, never the long-lived token: it expires, and
      // logging out (or revoking the token) ends it. Only its hash is stored.
      repo.pruneSessions();
      const sid = randomBytes(32).toString('base64url');
      repo.createSession(sid, who.id, absoluteMs);
      reply.header('set-cookie', `${SESSION_COOKIE}=${sid}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${Math.floor(absoluteMs / 1000)}${secureCookie(req) ? '; Secure' : ''}`);
      repo.audit(`token:${who.name}`, 'session.login', 'session', null, { ip: req.ip });
      return { ok: true, name: who.name };
    },
  );
  app.delete('/api/session', { ...PUBLIC_ROUTE, schema: { ...tag('meta'), summary: 'Log out: ends the session and clears its cookie', security: [] } }, async (req, reply) => {
    const sid = cookie(req, SESSION_COOKIE);
    if (sid) repo.revokeSession(sid);
    reply.header('set-cookie', `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0${secureCookie(req) ? '; Secure' : ''}`);
    return { ok: true };
  });

  // ---- account ----
  app.get('/api/account', { schema: { ...tag('account'), summary: 'Account settings, E911 state and what is missing to enable it' } }, async () => service.account());
  app.patch('/api/account', { schema: { ...tag('account'), summary: 'Change the account name, contact, recommendation override or notification policy', body: js(accountPatchSchema), response: E } }, async (req) =>
    service.updateAccount(req.actor, req.body),
  );
  app.post(
    '/api/account/e911',
    { schema: { ...tag('account'), summary: 'Enable or disable E911 (enabling needs the mandatory information; 409 lists what is missing)', body: { type: 'object', properties: { enabled: { type: 'boolean' } }, required: ['enabled'] }, response: E } },
    async (req) => {
      const enabled = (req.body as { enabled?: unknown } | null)?.enabled;
      if (typeof enabled !== 'boolean') throw new ValidationError([{ field: 'enabled', reason: 'must be true or false' }]);
      return service.setE911(req.actor, enabled);
    },
  );
  app.get('/api/account/notifications', { schema: { ...tag('notifications'), summary: 'SMTP, SMS and webhook settings (secrets shown only as set or not)' } }, async () => service.notificationSettings());
  app.put(
    '/api/account/notifications',
    { schema: { ...tag('notifications'), summary: 'Set channels: each given channel replaces the stored one, null removes it, an omitted password is kept', body: js(notificationSettingsSchema), response: E } },
    async (req) => service.setNotificationSettings(req.actor, req.body),
  );
  app.post(
    '/api/account/notifications/test',
    {
      schema: {
        ...tag('notifications'),
        summary: 'Send a test notification now through one channel and report the outcome',
        body: { type: 'object', properties: { channel: { type: 'string', enum: ['email', 'sms', 'webhook'] }, to: { type: 'string' } }, required: ['channel'] },
      },
    },
    async (req) => {
      const b = (req.body ?? {}) as { channel?: unknown; to?: unknown };
      const r = z.object({ channel: z.enum(['email', 'sms', 'webhook']), to: z.string().max(254).optional() }).safeParse(b);
      if (!r.success) throw new ValidationError(r.error.issues.map((i) => ({ field: i.path.join('.'), reason: i.message })));
      repo.audit(req.actor, 'notifications.test', 'account', null, r.data);
      return notifier.testSend(r.data.channel, r.data.to);
    },
  );

  // ---- locations ----
  app.get('/api/locations', { schema: { ...tag('locations'), summary: 'All locations, with the RFC 5139 civic form and user counts' } }, async () => service.locations());
  app.post('/api/locations', { bodyLimit: BODY_LIMITS.location, schema: { ...tag('locations'), summary: 'Create a location (address validated with the phone\'s own rules)', body: js(locationInputSchema), response: E } }, async (req, reply) =>
    reply.code(201).send(service.createLocation(req.actor, req.body)),
  );
  app.post(
    '/api/locations/validate',
    { bodyLimit: BODY_LIMITS.location, schema: { ...tag('locations'), summary: 'Check a location without saving it: {ok, issues[{field, reason}]}', body: js(locationInputSchema) } },
    async (req) => service.validateLocation(req.body),
  );
  app.get('/api/locations/:id', { schema: { ...tag('locations'), params: idParam, response: E } }, async (req) => service.location(Number((req.params as { id: string }).id)));
  app.patch(
    '/api/locations/:id',
    { bodyLimit: BODY_LIMITS.location, schema: { ...tag('locations'), summary: 'Change some fields; the result is validated whole; affected phones get a new signed address', params: idParam, body: js(locationFieldsSchema.partial()), response: E } },
    async (req) => service.updateLocation(req.actor, Number((req.params as { id: string }).id), req.body),
  );
  app.delete('/api/locations/:id', { schema: { ...tag('locations'), summary: 'Delete a location that has no users', params: idParam, response: E } }, async (req, reply) => {
    service.deleteLocation(req.actor, Number((req.params as { id: string }).id));
    return reply.code(204).send();
  });

  // ---- users ----
  app.get(
    '/api/users',
    { schema: { ...tag('users'), summary: 'Users, optionally of one location, paged', querystring: { type: 'object', properties: { locationId: { type: 'integer' }, limit: { type: 'integer' }, offset: { type: 'integer' } } } } },
    async (req) => {
      const q = req.query as Record<string, unknown>;
      const locationId = intQuery(q.locationId);
      return service.users({ ...(locationId !== undefined ? { locationId } : {}), limit: intQuery(q.limit) ?? 1000, offset: intQuery(q.offset) ?? 0 });
    },
  );
  app.post('/api/users', { schema: { ...tag('users'), summary: 'Create a user with their phones and emergency information', body: js(userInputSchema), response: E } }, async (req, reply) =>
    reply.code(201).send(service.createUser(req.actor, req.body)),
  );
  app.get('/api/users/:id', { schema: { ...tag('users'), params: idParam, response: E } }, async (req) => service.user(Number((req.params as { id: string }).id)));
  app.patch(
    '/api/users/:id',
    { schema: { ...tag('users'), summary: 'Change some fields (emails and deviceIds replace the lists); their phones get a new signed address', params: idParam, body: js(userInputSchema.partial()), response: E } },
    async (req) => service.updateUser(req.actor, Number((req.params as { id: string }).id), req.body),
  );
  app.delete('/api/users/:id', { schema: { ...tag('users'), params: idParam, response: E } }, async (req, reply) => {
    service.deleteUser(req.actor, Number((req.params as { id: string }).id));
    return reply.code(204).send();
  });

  // ---- phones ----
  app.get('/api/phones', { schema: { ...tag('phones'), summary: 'Every phone: online, issued and applied address versions, last location report, mismatch' } }, async () => service.phones());
  app.get('/api/phones/:deviceId', { schema: { ...tag('phones'), params: deviceParam, response: E } }, async (req) => service.phone((req.params as { deviceId: string }).deviceId));
  app.post(
    '/api/phones/:deviceId/credentials',
    { schema: { ...tag('phones'), summary: 'Issue new MQTT credentials (user name = device id); the password is shown this once', params: deviceParam, response: E } },
    async (req) => service.issueCredentials(req.actor, (req.params as { deviceId: string }).deviceId),
  );
  app.post('/api/phones/:deviceId/push', { schema: { ...tag('phones'), summary: 'Push the phone\'s address and locations again', params: deviceParam, response: E } }, async (req, reply) => {
    service.repush(req.actor, (req.params as { deviceId: string }).deviceId);
    return reply.code(202).send({ ok: true });
  });
  app.delete('/api/phones/:deviceId', { schema: { ...tag('phones'), summary: 'Forget an unassigned phone', params: deviceParam, response: E } }, async (req, reply) => {
    service.deletePhone(req.actor, (req.params as { deviceId: string }).deviceId);
    return reply.code(204).send();
  });

  // ---- bulk and CSV ----
  app.post(
    '/api/bulk/emails',
    { bodyLimit: BODY_LIMITS.bulk, schema: { ...tag('bulk'), summary: 'Replace the notification emails of all users, one location\'s users, or selected users: a background job', body: js(bulkEmailsSchema), response: { 202: jobSchema, ...E } } },
    async (req, reply) => reply.code(202).send(bulk.queueBulkEmails(req.actor, req.body)),
  );
  app.get('/api/jobs', { schema: { ...tag('bulk'), summary: 'Recent jobs', response: { 200: { type: 'array', items: jobSchema } } } }, async () => repo.jobs());
  app.get('/api/jobs/:id', { schema: { ...tag('bulk'), summary: 'A job\'s progress and result', params: idParam, response: { 200: jobSchema, ...E } } }, async (req) => {
    const j = repo.job(Number((req.params as { id: string }).id));
    if (!j) throw new NotFoundError(`job ${(req.params as { id: string }).id}`);
    return j;
  });
  app.get('/api/csv/users', { schema: { ...tag('bulk'), summary: 'CSV of all users: reference columns and Email1..Email10 (formulas neutralised)', produces: ['text/csv'] } }, async (_req, reply) =>
    reply
      .header('content-type', 'text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="e911-users-${new Date().toISOString().slice(0, 10)}.csv"`)
      .send(bulk.exportCsv()),
  );
  app.post(
    '/api/csv/users/validate',
    {
      // The one route that takes a large body: the CSV file, bounded by the CSV limits.
      bodyLimit: bulk.limits.maxBytes,
      schema: {
        ...tag('bulk'),
        summary: 'Upload a CSV (Content-Type: text/csv) and get a validation report; nothing is applied. Only Email columns count.',
        consumes: ['text/csv'],
        response: { 200: csvReportSchema, ...E, 413: errorSchema },
      },
    },
    async (req): Promise<CsvReport> => {
      if (!Buffer.isBuffer(req.body)) throw new ValidationError([{ field: 'body', reason: 'send the CSV file as the body with Content-Type: text/csv' }]);
      return bulk.validateCsv(req.actor, req.body);
    },
  );
  app.post(
    '/api/csv/uploads/:id/apply',
    { schema: { ...tag('bulk'), summary: 'Apply a validated upload (its valid rows) as a background job', params: { type: 'object', properties: { id: { type: 'string' } } }, response: { 202: jobSchema, ...E } } },
    async (req, reply) => reply.code(202).send(bulk.queueCsvApply(req.actor, (req.params as { id: string }).id)),
  );

  // ---- events, notifications, audit ----
  app.get(
    '/api/events',
    {
      schema: {
        ...tag('events'),
        summary: 'Events from phones, newest first (type=emergency-call,test-call for the call log)',
        querystring: { type: 'object', properties: { type: { type: 'string' }, deviceId: { type: 'string' }, limit: { type: 'integer' }, before: { type: 'string' } } },
      },
    },
    async (req) => {
      const q = req.query as Record<string, string | undefined>;
      return repo.events({
        ...(q.type ? { types: q.type.split(',') } : {}),
        ...(q.deviceId ? { deviceId: q.deviceId } : {}),
        ...(q.before ? { before: q.before } : {}),
        limit: Math.min(intQuery(q.limit) ?? 100, 1000),
      });
    },
  );
  app.get(
    '/api/events/:id',
    { schema: { ...tag('events'), summary: 'One event with each recipient\'s notification delivery status (and, for a call, the facts its notices state)', response: E } },
    async (req) => {
      const id = (req.params as { id: string }).id;
      const event = repo.event(id);
      if (!event) throw new NotFoundError(`event ${id}`);
      return { ...event, facts: NOTIFIED_EVENT_TYPES.has(event.type) ? callFacts(repo, event) : null, notifications: repo.notifications({ eventId: id }) };
    },
  );
  app.get(
    '/api/notifications',
    { schema: { ...tag('events'), summary: 'Notification deliveries', querystring: { type: 'object', properties: { eventId: { type: 'string' }, status: { type: 'string' }, limit: { type: 'integer' } } } } },
    async (req) => {
      const q = req.query as Record<string, string | undefined>;
      return repo.notifications({
        ...(q.eventId ? { eventId: q.eventId } : {}),
        ...(q.status ? { status: q.status as NotificationStatus } : {}),
        limit: Math.min(intQuery(q.limit) ?? 500, 5000),
      });
    },
  );
  app.get(
    '/api/audit',
    {
      schema: {
        ...tag('events'),
        summary: 'The audit log, newest first (before=<seq> pages back)',
        querystring: { type: 'object', properties: { entity: { type: 'string' }, entityId: { type: 'string' }, limit: { type: 'integer' }, before: { type: 'integer' } } },
      },
    },
    async (req) => {
      const q = req.query as Record<string, string | undefined>;
      const before = intQuery(q.before);
      return repo.auditLog({
        ...(q.entity ? { entity: q.entity } : {}),
        ...(q.entityId ? { entityId: q.entityId } : {}),
        ...(before !== undefined ? { beforeSeq: before } : {}),
        limit: Math.min(intQuery(q.limit) ?? 100, 1000),
      });
    },
  );

  // ---- broker ----
  app.get('/api/broker/mosquitto', { schema: { ...tag('broker'), summary: 'Mosquitto password file, ACL and mosquitto.conf lines for the current phones' } }, async (req) => {
    repo.audit(req.actor, 'broker.config-read', 'broker', null);
    return deps.brokerConfig();
  });

  // ---- live stream ----
  app.get('/api/stream', { schema: { ...tag('meta'), summary: 'Server-sent events: emergency, event, phone, job, notification, change' } }, (req, reply) =>
    streamEvents(req, reply, bus, req.stillAuthorized, deps.streamCheckMs ?? 15_000),
  );

  return app;
}

/** What a call's notices state (caller, callback, address sent, location code), as the notifier builds them. */
function callFacts(repo: Repo, event: StoredEvent): EmergencyFacts {
  const user = event.userId !== null ? repo.user(event.userId) : null;
  const location = event.locationId !== null ? repo.location(event.locationId) : null;
  const issued = repo.issuedAddress(event.deviceId)?.signed;
  const provisionedCivic = issued ? (JSON.parse(issued) as SignedAddress).doc.civic : null;
  return emergencyFacts({ event, user, location, provisionedCivic });
}

/**
 * Server-sent events until the client goes or its token is revoked: a stream outlives the
 * request that opened it, so the token is checked again with every keep-alive.
 */
function streamEvents(req: FastifyRequest, reply: FastifyReply, bus: Bus, stillAllowed: () => boolean, checkMs: number): void {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  res.write(': e911 event stream\n\n');
  const kinds: (keyof BusEvents)[] = ['emergency', 'event', 'phone', 'job', 'notification', 'change'];
  const listeners = kinds.map((kind) => {
    const fn = (payload: unknown) => res.write(`event: ${kind}\ndata: ${JSON.stringify(payload)}\n\n`);
    bus.on(kind, fn as never);
    return [kind, fn] as const;
  });
  const close = () => {
    clearInterval(ping);
    for (const [kind, fn] of listeners) bus.off(kind, fn as never);
  };
  const ping = setInterval(() => {
    if (stillAllowed()) return void res.write(': ping\n\n');
    close();
    res.end('event: revoked\ndata: {}\n\n');
  }, checkMs);
  req.raw.on('close', close);
}

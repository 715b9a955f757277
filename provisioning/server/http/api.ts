// The admin HTTP API (fastify): token authentication (a Bearer header, or a session cookie
// for the browser portal), an OpenAPI 3.1 document at /api/openapi.json, and one plugin per
// resource under routes/ (each route one administrative operation, through the services).
import Fastify from 'fastify';
import swagger from '@fastify/swagger';
import {
  createJsonSchemaTransform,
  createJsonSchemaTransformObject,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { E911Error } from '../../common/errors.js';
import { ValidationError, PreconditionError } from '../errors.js';
import { addAuthHook } from './auth.js';
import { namedSchemas, requestValidationError, withoutUnusedComponents } from './schemas.js';
import { API_VERSION, BODY_LIMITS, SESSION_COOKIE, type ApiDeps } from './deps.js';
import { metaRoutes } from './routes/meta.js';
import { accountRoutes } from './routes/account.js';
import { locationRoutes } from './routes/locations.js';
import { userRoutes } from './routes/users.js';
import { phoneRoutes } from './routes/phones.js';
import { bulkRoutes } from './routes/bulk.js';
import { eventRoutes } from './routes/events.js';
import { brokerRoutes } from './routes/broker.js';
import { streamRoutes } from './routes/stream.js';
import { accountsRoutes } from './routes/accounts.js';
import { DEFAULT_ACCOUNT } from '../db/scope.js';

export { API_VERSION, BODY_LIMITS, SESSION_COOKIE, type ApiDeps } from './deps.js';

declare module 'fastify' {
  interface FastifyInstance {
    routeTable: readonly { method: string; url: string; public: boolean; provider: boolean }[];
  }
  interface FastifyRequest {
    actor: string;
    /** The account of the request's token or session ('' until authenticated): what its handler sees and changes. */
    accountId: string;
    /** The token's own account (a provider's portal session may show another: accountId). */
    ownAccountId: string;
    /** Whether the token is a provider's (may create accounts). */
    provider: boolean;
    /** Whether the credentials this request came with are still good (the event stream asks again while open). */
    stillAuthorized: () => Promise<boolean>;
  }
}

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

export async function buildApi(deps: ApiDeps) {
  const { log } = deps;
  const app = Fastify({
    ...(deps.tls ? { https: { key: deps.tls.key, cert: deps.tls.cert } } : {}),
    // Errors are logged by the error handler below; requests are not logged one by one.
    logger: false,
    bodyLimit: BODY_LIMITS.default,
  }).withTypeProvider<ZodTypeProvider>();
  // Route schemas are zod: fastify validates requests and types the handlers with them, and the
  // OpenAPI document is generated from them. The services parse with the same schemas, so a
  // request refused here and one refused there get the same answer (the error handler below).
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // The route table as the router holds it, for the attack suite (every route, not a hand-kept list).
  const routeTable: { method: string; url: string; public: boolean; provider: boolean }[] = [];
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat())
      routeTable.push({ method, url: r.url, public: r.config?.public === true, provider: r.config?.provider === true });
    // Every handler runs in its caller's account: the account comes from the token (auth.ts),
    // never from the request, and every query the handler makes is scoped to it (db/scope.ts).
    const handler = r.handler;
    r.handler = function (this: unknown, req, reply) {
      return deps.inAccount(req.accountId || DEFAULT_ACCOUNT, () => handler.call(this as never, req, reply));
    };
  });
  app.decorate('routeTable', routeTable);
  app.decorateRequest('actor', '');
  app.decorateRequest('accountId', '');
  app.decorateRequest('ownAccountId', '');
  app.decorateRequest('provider', false);
  app.decorateRequest('stillAuthorized', async () => false);

  const named = namedSchemas();
  const componentsOf = createJsonSchemaTransformObject({ schemaRegistry: named });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'e911 provisioning server admin API',
        version: API_VERSION,
        description:
          "Locations, users and their phones, signed address pushes, bulk notification lists with CSV, Kari's Law notifications, and the audit log. " +
          'Authenticate with `Authorization: Bearer <token>` (tokens come from `e911-server token create`), or POST /api/session to get a session cookie.',
      },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer' }, session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE } },
      },
      security: [{ bearer: [] }, { session: [] }],
    },
    transform: createJsonSchemaTransform({ schemaRegistry: named }),
    transformObject: (doc) => withoutUnusedComponents(componentsOf(doc)),
  });

  app.addContentTypeParser(
    ['text/csv', 'application/csv', 'text/plain', 'application/octet-stream'],
    { parseAs: 'buffer' },
    (_req, body, done) => done(null, body),
  );

  app.setErrorHandler((err, req, reply) => {
    // A request its route schema refused answers as the services' ValidationError does.
    const typed = requestValidationError(err) ?? err;
    if (typed instanceof E911Error) {
      return reply.code(statusOf(typed)).send({
        error: typed.code,
        message: typed.message,
        ...(typed instanceof ValidationError ? { issues: typed.issues } : {}),
        ...(typed instanceof PreconditionError ? { missing: typed.missing } : {}),
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

  addAuthHook(app, deps);

  // Registered in this order so that the OpenAPI document lists the paths as it always has.
  for (const routes of [
    metaRoutes,
    accountRoutes,
    locationRoutes,
    userRoutes,
    phoneRoutes,
    bulkRoutes,
    eventRoutes,
    brokerRoutes,
    streamRoutes,
    accountsRoutes,
  ]) {
    await app.register(routes, deps);
  }
  return app;
}

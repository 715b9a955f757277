// Customer accounts, for the deployment's provider: list, create, mint an account's first
// admin token, and choose the account a portal session shows. An account's own admins get
// 403 here (PROVIDER_ROUTE).
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { SESSION_COOKIE, type ApiDeps } from '../deps.js';
import { cookie } from '../auth.js';
import { E, tag } from '../schemas.js';
import { PROVIDER_ROUTE } from '../public.js';
import { ACCOUNT_ID } from '../../db/scope.js';

const accountSchema = z.object({ id: z.string(), name: z.string(), e911Enabled: z.boolean(), createdAt: z.string() });
const accountIdParam = z.object({ id: z.string().regex(ACCOUNT_ID, 'lower-case letters, digits and dashes, up to 63') });

export const accountsRoutes: FastifyPluginAsyncZod<ApiDeps> = async (app, { accounts }) => {
  app.get(
    '/api/accounts',
    {
      ...PROVIDER_ROUTE,
      schema: { ...tag('accounts'), summary: 'Every customer account (a provider token only)', response: { 200: z.array(accountSchema) } },
    },
    async () => await accounts.list(),
  );
  app.post(
    '/api/accounts',
    {
      ...PROVIDER_ROUTE,
      schema: {
        ...tag('accounts'),
        summary: 'Create a customer account (a provider token only); 409 when the id is taken',
        body: z.object({ id: accountIdParam.shape.id, name: z.string().max(200).default('') }).strict(),
        response: { 201: accountSchema, ...E },
      },
    },
    async (req, reply) => reply.code(201).send(await accounts.create(req.actor, req.body.id, req.body.name)),
  );
  app.post(
    '/api/accounts/:id/tokens',
    {
      ...PROVIDER_ROUTE,
      schema: {
        ...tag('accounts'),
        summary: 'Mint an admin token of the account (a provider token only): it sees and changes that account only; shown this once',
        params: accountIdParam,
        body: z.object({ name: z.string().min(1).max(100) }).strict(),
        response: { 201: z.object({ token: z.string() }), ...E },
      },
    },
    async (req, reply) => reply.code(201).send(await accounts.mintToken(req.actor, req.params.id, req.body.name)),
  );
  app.put(
    '/api/session/account',
    {
      ...PROVIDER_ROUTE,
      schema: {
        ...tag('accounts'),
        summary:
          "The account this portal session shows and changes from now on (a provider's session only; the portal's account picker). A token's own account is fixed",
        body: z.object({ id: accountIdParam.shape.id }).strict(),
        response: { 200: accountSchema, ...E },
      },
    },
    async (req, reply) => {
      const sid = cookie(req, SESSION_COOKIE);
      // A Bearer request has no session to change: the token's account is its own.
      if (req.headers.authorization !== undefined || !sid)
        return reply.code(400).send({
          error: 'bad-request',
          message: 'only a portal session chooses its account; a token acts in its own (mint one with POST /api/accounts/:id/tokens)',
        });
      return await accounts.show(req.actor, sid, req.ownAccountId, req.body.id);
    },
  );
};

// Users: who sits where, their phones and their notification emails.
import type { FastifyPluginAsync } from 'fastify';
import type { ApiDeps } from '../deps.js';
import { E, idOf, idParam, intQuery, js, tag } from '../schemas.js';
import { userInputSchema } from '../../validation.js';

export const userRoutes: FastifyPluginAsync<ApiDeps> = async (app, { service }) => {
  app.get(
    '/api/users',
    {
      schema: {
        ...tag('users'),
        summary: 'Users, optionally of one location, paged',
        querystring: {
          type: 'object',
          properties: { locationId: { type: 'integer' }, limit: { type: 'integer' }, offset: { type: 'integer' } },
        },
      },
    },
    async (req) => {
      const q = req.query as Record<string, unknown>;
      const locationId = intQuery(q.locationId);
      return service.users({
        ...(locationId !== undefined ? { locationId } : {}),
        limit: intQuery(q.limit) ?? 1000,
        offset: intQuery(q.offset) ?? 0,
      });
    },
  );
  app.post(
    '/api/users',
    {
      schema: {
        ...tag('users'),
        summary: 'Create a user with their phones and emergency information',
        body: js(userInputSchema),
        response: E,
      },
    },
    async (req, reply) => reply.code(201).send(service.createUser(req.actor, req.body)),
  );
  app.get('/api/users/:id', { schema: { ...tag('users'), params: idParam, response: E } }, async (req) => service.user(idOf(req.params)));
  app.patch(
    '/api/users/:id',
    {
      schema: {
        ...tag('users'),
        summary: 'Change some fields (emails and deviceIds replace the lists); their phones get a new signed address',
        params: idParam,
        body: js(userInputSchema.partial()),
        response: E,
      },
    },
    async (req) => service.updateUser(req.actor, idOf(req.params), req.body),
  );
  app.delete('/api/users/:id', { schema: { ...tag('users'), params: idParam, response: E } }, async (req, reply) => {
    service.deleteUser(req.actor, idOf(req.params));
    return reply.code(204).send();
  });
};

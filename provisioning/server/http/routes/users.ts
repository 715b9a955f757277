// Users: who sits where, their phones and their notification emails.
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ApiDeps } from '../deps.js';
import { accepted, E, OK, idParam, noContent, tag, wholeNumberQuery } from '../schemas.js';
import { userInputSchema } from '../../validation.js';
import { userPatchSchema } from '../../service.js';

export const userRoutes: FastifyPluginAsyncZod<ApiDeps> = async (app, { service }) => {
  app.get(
    '/api/users',
    {
      schema: {
        ...tag('users'),
        summary: 'Users, optionally of one location, paged',
        querystring: z.object({ locationId: wholeNumberQuery, limit: wholeNumberQuery, offset: wholeNumberQuery }),
        response: OK,
      },
    },
    async (req) => {
      const { locationId, limit, offset } = req.query;
      return await service.users({ ...(locationId !== undefined ? { locationId } : {}), limit: limit ?? 1000, offset: offset ?? 0 });
    },
  );
  app.post(
    '/api/users',
    {
      schema: {
        ...tag('users'),
        summary: 'Create a user with their phones and emergency information',
        body: userInputSchema,
        response: { 201: accepted('the user created'), ...E },
      },
    },
    async (req, reply) => reply.code(201).send(await service.createUser(req.actor, req.body)),
  );
  app.get(
    '/api/users/:id',
    { schema: { ...tag('users'), params: idParam, response: OK } },
    async (req) => await service.user(req.params.id),
  );
  app.patch(
    '/api/users/:id',
    {
      schema: {
        ...tag('users'),
        summary: 'Change some fields (emails and deviceIds replace the lists); their phones get a new signed address',
        params: idParam,
        body: userPatchSchema,
        response: OK,
      },
    },
    async (req) => await service.updateUser(req.actor, req.params.id, req.body),
  );
  app.delete('/api/users/:id', { schema: { ...tag('users'), params: idParam, response: { 204: noContent, ...E } } }, async (req, reply) => {
    await service.deleteUser(req.actor, req.params.id);
    return reply.code(204).send(null);
  });
};

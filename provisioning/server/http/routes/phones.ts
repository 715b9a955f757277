// Phones: their state, MQTT credentials and pushes of their address.
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ApiDeps } from '../deps.js';
import { deviceParam, E, OK, noContent, tag } from '../schemas.js';

export const phoneRoutes: FastifyPluginAsyncZod<ApiDeps> = async (app, { service }) => {
  app.get(
    '/api/phones',
    {
      schema: {
        ...tag('phones'),
        summary:
          'Every phone: online, issued and applied address versions, last location report, mismatch, the emergency-services notice (notice=unacknowledged: only phones whose notice for the address they hold is not acknowledged)',
        querystring: z.object({ notice: z.enum(['unacknowledged']).optional() }),
        response: OK,
      },
    },
    async (req) => await service.phones({ notice: req.query.notice }),
  );
  app.get(
    '/api/phones/:deviceId',
    { schema: { ...tag('phones'), params: deviceParam, response: OK } },
    async (req) => await service.phone(req.params.deviceId),
  );
  app.post(
    '/api/phones/:deviceId/credentials',
    {
      schema: {
        ...tag('phones'),
        summary: 'Issue new MQTT credentials (user name = device id); the password is shown this once',
        params: deviceParam,
        response: OK,
      },
    },
    async (req) => await service.issueCredentials(req.actor, req.params.deviceId),
  );
  app.post(
    '/api/phones/:deviceId/push',
    {
      schema: {
        ...tag('phones'),
        summary: "Push the phone's address and locations again",
        params: deviceParam,
        response: { 202: z.object({ ok: z.literal(true) }), ...E },
      },
    },
    async (req, reply) => {
      await service.repush(req.actor, req.params.deviceId);
      return reply.code(202).send({ ok: true });
    },
  );
  app.delete(
    '/api/phones/:deviceId',
    { schema: { ...tag('phones'), summary: 'Forget an unassigned phone', params: deviceParam, response: { 204: noContent, ...E } } },
    async (req, reply) => {
      await service.deletePhone(req.actor, req.params.deviceId);
      return reply.code(204).send(null);
    },
  );
};

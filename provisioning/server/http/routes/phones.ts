// Phones: their state, MQTT credentials and pushes of their address.
import type { FastifyPluginAsync } from 'fastify';
import type { ApiDeps } from '../deps.js';
import { deviceOf, deviceParam, E, tag } from '../schemas.js';

export const phoneRoutes: FastifyPluginAsync<ApiDeps> = async (app, { service }) => {
  app.get(
    '/api/phones',
    {
      schema: {
        ...tag('phones'),
        summary:
          'Every phone: online, issued and applied address versions, last location report, mismatch, the emergency-services notice (notice=unacknowledged: only phones whose notice for the address they hold is not acknowledged)',
        querystring: { type: 'object', properties: { notice: { type: 'string', enum: ['unacknowledged'] } } },
      },
    },
    async (req) => service.phones({ notice: (req.query as { notice?: 'unacknowledged' }).notice }),
  );
  app.get('/api/phones/:deviceId', { schema: { ...tag('phones'), params: deviceParam, response: E } }, async (req) =>
    service.phone(deviceOf(req.params)),
  );
  app.post(
    '/api/phones/:deviceId/credentials',
    {
      schema: {
        ...tag('phones'),
        summary: 'Issue new MQTT credentials (user name = device id); the password is shown this once',
        params: deviceParam,
        response: E,
      },
    },
    async (req) => service.issueCredentials(req.actor, deviceOf(req.params)),
  );
  app.post(
    '/api/phones/:deviceId/push',
    { schema: { ...tag('phones'), summary: "Push the phone's address and locations again", params: deviceParam, response: E } },
    async (req, reply) => {
      service.repush(req.actor, deviceOf(req.params));
      return reply.code(202).send({ ok: true });
    },
  );
  app.delete(
    '/api/phones/:deviceId',
    { schema: { ...tag('phones'), summary: 'Forget an unassigned phone', params: deviceParam, response: E } },
    async (req, reply) => {
      service.deletePhone(req.actor, deviceOf(req.params));
      return reply.code(204).send();
    },
  );
};

// Locations: the civic addresses users and their phones are at.
import type { FastifyPluginAsync } from 'fastify';
import { BODY_LIMITS, type ApiDeps } from '../deps.js';
import { E, idOf, idParam, js, tag } from '../schemas.js';
import { locationFieldsSchema, locationInputSchema } from '../../validation.js';

export const locationRoutes: FastifyPluginAsync<ApiDeps> = async (app, { service }) => {
  app.get(
    '/api/locations',
    { schema: { ...tag('locations'), summary: 'All locations, with the RFC 5139 civic form and user counts' } },
    async () => service.locations(),
  );
  app.post(
    '/api/locations',
    {
      bodyLimit: BODY_LIMITS.location,
      schema: {
        ...tag('locations'),
        summary: "Create a location (address validated with the phone's own rules)",
        body: js(locationInputSchema),
        response: E,
      },
    },
    async (req, reply) => reply.code(201).send(service.createLocation(req.actor, req.body)),
  );
  app.post(
    '/api/locations/validate',
    {
      bodyLimit: BODY_LIMITS.location,
      schema: {
        ...tag('locations'),
        summary: 'Check a location without saving it: {ok, issues[{field, reason}]}',
        body: js(locationInputSchema),
      },
    },
    async (req) => service.validateLocation(req.body),
  );
  app.get('/api/locations/:id', { schema: { ...tag('locations'), params: idParam, response: E } }, async (req) =>
    service.location(idOf(req.params)),
  );
  app.patch(
    '/api/locations/:id',
    {
      bodyLimit: BODY_LIMITS.location,
      schema: {
        ...tag('locations'),
        summary: 'Change some fields; the result is validated whole; affected phones get a new signed address',
        params: idParam,
        body: js(locationFieldsSchema.partial()),
        response: E,
      },
    },
    async (req) => service.updateLocation(req.actor, idOf(req.params), req.body),
  );
  app.delete(
    '/api/locations/:id',
    { schema: { ...tag('locations'), summary: 'Delete a location that has no users', params: idParam, response: E } },
    async (req, reply) => {
      service.deleteLocation(req.actor, idOf(req.params));
      return reply.code(204).send();
    },
  );
};

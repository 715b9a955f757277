// Locations: the civic addresses users and their phones are at.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { BODY_LIMITS, type ApiDeps } from '../deps.js';
import { accepted, E, OK, idParam, noContent, requestValidationError, tag } from '../schemas.js';
import { locationInputSchema } from '../../validation.js';
import { locationPatchSchema } from '../../service.js';

export const locationRoutes: FastifyPluginAsyncZod<ApiDeps> = async (app, { service }) => {
  app.get(
    '/api/locations',
    { schema: { ...tag('locations'), summary: 'All locations, with the RFC 5139 civic form and user counts' } },
    async () => await service.locations(),
  );
  app.post(
    '/api/locations',
    {
      bodyLimit: BODY_LIMITS.location,
      schema: {
        ...tag('locations'),
        summary: "Create a location (address validated with the phone's own rules)",
        body: locationInputSchema,
        response: { 201: accepted('the location created'), ...E },
      },
    },
    async (req, reply) => reply.code(201).send(await service.createLocation(req.actor, req.body)),
  );
  app.post(
    '/api/locations/validate',
    {
      bodyLimit: BODY_LIMITS.location,
      // A location that fails the schema is this route's answer, not an error.
      attachValidation: true,
      schema: {
        ...tag('locations'),
        summary: 'Check a location without saving it: {ok, issues[{field, reason}]}',
        body: locationInputSchema,
      },
    },
    async (req) => {
      const refused = requestValidationError(req.validationError);
      if (refused) return { ok: false, issues: refused.issues };
      return await service.validateLocation(req.body);
    },
  );
  app.get(
    '/api/locations/:id',
    { schema: { ...tag('locations'), params: idParam, response: OK } },
    async (req) => await service.location(req.params.id),
  );
  app.patch(
    '/api/locations/:id',
    {
      bodyLimit: BODY_LIMITS.location,
      schema: {
        ...tag('locations'),
        summary: 'Change some fields; the result is validated whole; affected phones get a new signed address',
        params: idParam,
        body: locationPatchSchema,
        response: OK,
      },
    },
    async (req) => await service.updateLocation(req.actor, req.params.id, req.body),
  );
  app.delete(
    '/api/locations/:id',
    {
      schema: { ...tag('locations'), summary: 'Delete a location that has no users', params: idParam, response: { 204: noContent, ...E } },
    },
    async (req, reply) => {
      await service.deleteLocation(req.actor, req.params.id);
      return reply.code(204).send(null);
    },
  );
};

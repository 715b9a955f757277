// What happened: phone events (the call log), notification deliveries and the audit log.
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ApiDeps } from '../deps.js';
import { NOTIFICATION_STATUSES, OK, tag, wholeNumberQuery } from '../schemas.js';

export const eventRoutes: FastifyPluginAsyncZod<ApiDeps> = async (app, { records }) => {
  app.get(
    '/api/events',
    {
      schema: {
        ...tag('events'),
        summary: 'Events from phones, newest first (type=emergency-call,test-call for the call log)',
        querystring: z.object({
          type: z.string().optional(),
          deviceId: z.string().optional(),
          limit: wholeNumberQuery,
          before: z.string().optional(),
        }),
        response: OK,
      },
    },
    async (req) => {
      const q = req.query;
      return await records.events({
        ...(q.type ? { types: q.type.split(',') } : {}),
        ...(q.deviceId ? { deviceId: q.deviceId } : {}),
        ...(q.before ? { before: q.before } : {}),
        limit: Math.min(q.limit ?? 100, 1000),
      });
    },
  );
  app.get(
    '/api/events/:id',
    {
      schema: {
        ...tag('events'),
        summary: "One event with each recipient's notification delivery status (and, for a call, the facts its notices state)",
        params: z.object({ id: z.string() }),
        response: OK,
      },
    },
    async (req) => await records.event(req.params.id),
  );
  app.get(
    '/api/notifications',
    {
      schema: {
        ...tag('events'),
        summary: 'Notification deliveries',
        querystring: z.object({
          eventId: z.string().optional(),
          status: z.enum(NOTIFICATION_STATUSES).optional(),
          limit: wholeNumberQuery,
        }),
        response: OK,
      },
    },
    async (req) => {
      const q = req.query;
      return await records.notifications({
        ...(q.eventId ? { eventId: q.eventId } : {}),
        ...(q.status ? { status: q.status } : {}),
        limit: Math.min(q.limit ?? 500, 5000),
      });
    },
  );
  app.get(
    '/api/audit',
    {
      schema: {
        ...tag('events'),
        summary: 'The audit log, newest first (before=<seq> pages back)',
        querystring: z.object({
          entity: z.string().optional(),
          entityId: z.string().optional(),
          limit: wholeNumberQuery,
          before: wholeNumberQuery,
        }),
        response: OK,
      },
    },
    async (req) => {
      const q = req.query;
      return await records.auditLog({
        ...(q.entity ? { entity: q.entity } : {}),
        ...(q.entityId ? { entityId: q.entityId } : {}),
        ...(q.before !== undefined ? { beforeSeq: q.before } : {}),
        limit: Math.min(q.limit ?? 100, 1000),
      });
    },
  );
};

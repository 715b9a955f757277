// What happened: phone events (the call log), notification deliveries and the audit log.
import type { FastifyPluginAsync } from 'fastify';
import type { ApiDeps } from '../deps.js';
import { E, intQuery, tag } from '../schemas.js';
import type { NotificationStatus } from '../../db/repo.js';

export const eventRoutes: FastifyPluginAsync<ApiDeps> = async (app, { records }) => {
  app.get(
    '/api/events',
    {
      schema: {
        ...tag('events'),
        summary: 'Events from phones, newest first (type=emergency-call,test-call for the call log)',
        querystring: {
          type: 'object',
          properties: { type: { type: 'string' }, deviceId: { type: 'string' }, limit: { type: 'integer' }, before: { type: 'string' } },
        },
      },
    },
    async (req) => {
      const q = req.query as Record<string, string | undefined>;
      return records.events({
        ...(q.type ? { types: q.type.split(',') } : {}),
        ...(q.deviceId ? { deviceId: q.deviceId } : {}),
        ...(q.before ? { before: q.before } : {}),
        limit: Math.min(intQuery(q.limit) ?? 100, 1000),
      });
    },
  );
  app.get(
    '/api/events/:id',
    {
      schema: {
        ...tag('events'),
        summary: "One event with each recipient's notification delivery status (and, for a call, the facts its notices state)",
        response: E,
      },
    },
    async (req) => records.event((req.params as { id: string }).id),
  );
  app.get(
    '/api/notifications',
    {
      schema: {
        ...tag('events'),
        summary: 'Notification deliveries',
        querystring: {
          type: 'object',
          properties: { eventId: { type: 'string' }, status: { type: 'string' }, limit: { type: 'integer' } },
        },
      },
    },
    async (req) => {
      const q = req.query as Record<string, string | undefined>;
      return records.notifications({
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
        querystring: {
          type: 'object',
          properties: { entity: { type: 'string' }, entityId: { type: 'string' }, limit: { type: 'integer' }, before: { type: 'integer' } },
        },
      },
    },
    async (req) => {
      const q = req.query as Record<string, string | undefined>;
      const before = intQuery(q.before);
      return records.auditLog({
        ...(q.entity ? { entity: q.entity } : {}),
        ...(q.entityId ? { entityId: q.entityId } : {}),
        ...(before !== undefined ? { beforeSeq: before } : {}),
        limit: Math.min(intQuery(q.limit) ?? 100, 1000),
      });
    },
  );
};
